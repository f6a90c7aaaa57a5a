package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/awsstandin"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
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
	aws := exampleAWS(t, alb, "AKIDPROCESSTEST00000", secret)
	foreign := aws.StartOutside(alb, "use2-az3", awsstandin.ZonalAutoshiftType, "ARC zonal autoshift", time.Hour)

	example, err := os.ReadFile("../../examples/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "aws.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(example), "tokens_file: tokens.txt", "tokens_file: "+filepath.Join(mustAbs(t, "../../examples"), "tokens.txt"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := awsEnv(aws.URL(), "AKIDPROCESSTEST00000", secret)
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

// exampleAWS starts the AWS stand-in with what examples/aws.yaml names:
// the load balancer alb managed by ARC in three zones, their subnets, and
// the group web-asg. It stops when the test ends.
func exampleAWS(t *testing.T, alb, keyID, secret string) *awsstandin.Server {
	t.Helper()
	aws := awsstandin.New(awsstandin.Options{AccessKeyID: keyID, SecretAccessKey: secret})
	if err := aws.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aws.Close() })
	aws.AddManagedResource(alb, "use2-az1", "use2-az2", "use2-az3")
	for i, z := range []string{"use2-az1", "use2-az2", "use2-az3"} {
		aws.AddSubnet(awsstandin.Subnet{ID: "subnet-" + z, VPC: "vpc-1", AZ: fmt.Sprintf("us-east-2%c", 'a'+i), AZID: z})
	}
	aws.AddGroup(awsstandin.GroupSpec{Name: "web-asg", MinSize: 1, MaxSize: 9, Desired: 3, Subnets: []string{"subnet-use2-az1", "subnet-use2-az2", "subnet-use2-az3"}})
	return aws
}

// awsEnv is serve's environment: the SDK's default chain finds only these
// credentials and the stand-in at url (no profile, no instance role).
func awsEnv(url, keyID, secret string) []string {
	return []string{"AWS_REGION=us-east-2", "AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_ENDPOINT_URL=" + url, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=", "AWS_SESSION_TOKEN="}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// observeSecond posts a second of observations over z1..z3: the failing
// zone's instances and its canary fail (none when failing is "").
func observeSecond(t *testing.T, c *api.Client, failing string) {
	t.Helper()
	observeZones(t, c, []string{"z1", "z2", "z3"}, failing)
}

// kill -9 in the middle of an exclusion: the subnets to remove are on disk,
// UpdateAutoScalingGroup is in flight. The restarted serve finishes the
// exclusion, and on recovery puts back exactly the subnets it took out.
func TestServeKill9MidExclusion(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve as a process for about a minute")
	}
	t.Parallel()
	const alb = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"
	aws := awsstandin.New(awsstandin.Options{AccessKeyID: "AKIDPROCESSTEST00001", SecretAccessKey: "process-test-secret-key-1"})
	if err := aws.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer aws.Close()
	aws.AddManagedResource(alb, "z1", "z2", "z3")
	all := []string{"subnet-z1a", "subnet-z2", "subnet-z1b", "subnet-z3"}
	for _, id := range all {
		aws.AddSubnet(awsstandin.Subnet{ID: id, VPC: "vpc-1", AZ: "name-" + id[7:9], AZID: id[7:9]})
	}
	aws.AddGroup(awsstandin.GroupSpec{Name: "web-asg", MinSize: 1, MaxSize: 12, Desired: 6, Subnets: all})
	cfg := filepath.Join(t.TempDir(), "aws.yaml")
	y := fmt.Sprintf(`auth: {tokens: [test-token-0123456789abcdef], open_reads: true}
resources:
  - name: web
    zones: [z1, z2, z3]
    frontdoor: {type: arc, resource_identifier: %s}
    autoshift: {control_plane_after: 1s, recovery_hold: 5s}
    control_plane: {type: autoscaling, groups: [web-asg]}
`, alb)
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	env := awsEnv(aws.URL(), "AKIDPROCESSTEST00001", "process-test-secret-key-1")
	data := t.TempDir()
	// The exclusion's call hangs, as an impaired control plane's would.
	aws.SetActionDelay(awsstandin.AutoScaling, "UpdateAutoScalingGroup", time.Hour)
	s := startServeEnv(t, env, "--config", cfg, "--data-dir", data)
	c := api.NewClient(s.url(), "test-token-0123456789abcdef")
	eventually(t, 30*time.Second, "the shift in ARC", func() bool {
		observeSecond(t, c, "z1")
		return aws.ShiftedAway(alb) == "z1"
	})
	db, err := store.Open(context.Background(), data) // serve's store, read beside it
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, 30*time.Second, "the exclusion record on disk", func() bool {
		observeSecond(t, c, "z1")
		v, ok, _ := db.GetState(context.Background(), "autoscaling/web-asg/z1")
		return ok && strings.Contains(string(v), `"removed":["subnet-z1a","subnet-z1b"]`)
	})
	s.kill() // UpdateAutoScalingGroup is in flight
	if g, _ := aws.Group("web-asg"); len(g.Subnets) != 4 {
		t.Fatalf("the group changed before the kill: %+v", g)
	}
	aws.SetActionDelay(awsstandin.AutoScaling, "UpdateAutoScalingGroup", 0)
	s = startServeEnv(t, env, "--config", cfg, "--data-dir", data)
	c = api.NewClient(s.url(), "test-token-0123456789abcdef")
	eventually(t, 30*time.Second, "the exclusion to finish after the restart", func() bool {
		observeSecond(t, c, "z1")
		g, _ := aws.Group("web-asg")
		return strings.Join(g.Subnets, ",") == "subnet-z2,subnet-z3"
	})
	if g, _ := aws.Group("web-asg"); g.PerZone["z1"] != 0 || g.PerZone["z2"]+g.PerZone["z3"] != 6 {
		t.Fatalf("capacity not kept: %+v", g)
	}
	eventually(t, 60*time.Second, "recovery: subnets back, shift ended", func() bool {
		observeSecond(t, c, "")
		g, _ := aws.Group("web-asg")
		return len(g.Subnets) == 4 && aws.ShiftedAway(alb) == ""
	})
	g, _ := aws.Group("web-asg")
	got := append([]string(nil), g.Subnets...)
	slices.Sort(got)
	if strings.Join(got, ",") != "subnet-z1a,subnet-z1b,subnet-z2,subnet-z3" {
		t.Fatalf("subnets after recovery: %v", g.Subnets)
	}
}
