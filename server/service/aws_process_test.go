package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/awsstandin"
)

// grayzone serve as a real process against the AWS stand-in, configured
// only the way a user configures the AWS SDK: AWS_REGION, credentials in the
// environment, AWS_ENDPOINT_URL (which config.LoadDefaultConfig honours for
// every service). A shift someone else started is seen at start; a manual
// shift is an ARC zonal shift; after kill -9, a shift cancelled in ARC
// meanwhile is marked so, with the reason. No credential reaches the logs.
func TestServeWithARCThroughSDKEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve as a process")
	}
	t.Parallel()
	const alb = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"
	const secret = "process-test-secret-key-0000000000000000"
	aws := awsstandin.New(awsstandin.Options{AccessKeyID: "AKIDPROCESSTEST00000", SecretAccessKey: secret})
	if err := aws.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer aws.Close()
	aws.AddManagedResource(alb, "use2-az1", "use2-az2", "use2-az3")
	for i, z := range []string{"use2-az1", "use2-az2", "use2-az3"} {
		aws.AddSubnet(awsstandin.Subnet{ID: "subnet-" + z, VPC: "vpc-1", AZ: fmt.Sprintf("us-east-2%c", 'a'+i), AZID: z})
	}
	aws.AddGroup(awsstandin.GroupSpec{Name: "web-asg", MinSize: 1, MaxSize: 9, Desired: 3, Subnets: []string{"subnet-use2-az1", "subnet-use2-az2", "subnet-use2-az3"}})
	foreign := aws.StartOutside(alb, "use2-az3", awsstandin.ZonalAutoshiftType, "ARC zonal autoshift", time.Hour)

	example, err := os.ReadFile("../../examples/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "aws.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(example), "tokens_file: tokens.txt", "tokens_file: "+filepath.Join(mustAbs(t, "../../examples"), "tokens.txt"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"AWS_REGION=us-east-2", "AWS_ACCESS_KEY_ID=AKIDPROCESSTEST00000", "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_ENDPOINT_URL=" + aws.URL(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=", "AWS_SESSION_TOKEN="}
	data := t.TempDir()
	token := exampleToken(t)
	s := startServeEnv(t, env, "--config", cfgPath, "--data-dir", data)

	list := s.shifts(t)
	if len(list) != 1 || list[0]["origin"] != "external" || list[0]["started_by"] != "arc:ZONAL_AUTOSHIFT" || list[0]["arc_zonal_shift_id"] != foreign {
		t.Fatalf("the foreign shift is not listed at start: %v\n%s", list, s.logs)
	}
	out, code := s.cli(t, token, "shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "30m", "--comment", "process test")
	if code == 0 || !strings.Contains(out, "already active") {
		t.Fatalf("a shift over the foreign one: exit %d: %s", code, out)
	}
	aws.CancelOutside(foreign)
	out, code = s.cli(t, token, "shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "30m", "--comment", "process test")
	if code != 0 {
		t.Fatalf("shift start: exit %d: %s\n%s", code, out, s.logs)
	}
	var arcID string
	for _, sh := range aws.Shifts(alb) {
		if sh.Status == "ACTIVE" && sh.AwayFrom == "use2-az1" && strings.Contains(sh.Comment, "process test") {
			arcID = sh.ID
		}
	}
	if arcID == "" {
		t.Fatalf("no ARC zonal shift for the manual shift: %+v", aws.Shifts(alb))
	}

	s.kill()
	aws.CancelOutside(arcID)
	s = startServeEnv(t, env, "--config", cfgPath, "--data-dir", data)
	var ours map[string]any
	for _, sh := range s.shifts(t) {
		if sh["arc_zonal_shift_id"] == arcID {
			ours = sh
		}
	}
	if ours == nil || ours["status"] != "CANCELED" || ours["ended_by"] != "arc: cancelled in ARC, outside grayzone" {
		t.Fatalf("after kill -9 and a cancel in ARC: %v", ours)
	}
	if audit := get(t, s.url()+"/v1/audit?resource=web"); !strings.Contains(audit, "cancelled in ARC, outside grayzone") {
		t.Errorf("audit lacks the reason:\n%s", audit)
	}
	if strings.Contains(s.logs.String(), secret) {
		t.Error("the secret key is in serve's logs")
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
