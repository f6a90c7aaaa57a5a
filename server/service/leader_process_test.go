package service_test

// Only the leader acts (issue 19): two grayzone serve processes on one
// PostgreSQL and one ARC stand-in, configured with the SAME replica.name.
// One leads; the other follows (it does not take the lease from the first,
// whose epoch stays put) and makes no call to ARC at all, while the leader
// mirrors.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/awsstandin"
)

func TestReplicasWithOneNameOneLeadsFollowerNeverCallsARC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two grayzone serve processes on PostgreSQL")
	}
	storeURL := throwawayPostgres(t)
	const alb = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"
	const secret = "leader-test-secret-key-00000000000000000"
	aws := exampleAWS(t, alb, "AKIDLEADERTEST000000", secret)

	example, err := os.ReadFile("../../examples/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), "tokens_file: tokens.txt", "tokens_file: "+filepath.Join(mustAbs(t, "../../examples"), "tokens.txt"), 1)
	// Both replicas are named "web-0": a copy-pasted configuration.
	cfg = fmt.Sprintf("store: %s\nreplica: {name: web-0, lease: %s}\n", storeURL, failoverLease) + cfg
	cfgPath := filepath.Join(t.TempDir(), "aws.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(app string) []string { // the stand-in tells the replicas apart by User-Agent
		return append(awsEnv(aws.URL(), "AKIDLEADERTEST000000", secret), "AWS_SDK_UA_APP_ID="+app)
	}
	a := startServeEnv(t, env("replica-a"), "--config", cfgPath, "--data-dir", t.TempDir())
	epochA, _ := waitLeading(t, a, 10*time.Second)
	b := startServeEnv(t, env("replica-b"), "--config", cfgPath, "--data-dir", t.TempDir())
	eventually(t, 10*time.Second, "b to say why it follows", func() bool {
		return strings.Contains(b.logs.String(), "another live process holds the lease under this replica's name")
	})
	// Several lease periods: b keeps trying to acquire every lease/10, and
	// before the nonce it took the lease (same holder) at its first try.
	time.Sleep(2 * failoverLease)
	va, _ := a.leader(t)
	vb, _ := b.leader(t)
	if !va.Leading || va.Epoch != epochA {
		t.Fatalf("a no longer leads under epoch %d: %+v\nb's log:\n%s", epochA, va, b.logs)
	}
	if vb.Leading || vb.Epoch != epochA || vb.Address != a.addr {
		t.Fatalf("b should follow a (epoch %d at %s): %+v", epochA, a.addr, vb)
	}
	eventually(t, 10*time.Second, "the leader to mirror ARC", func() bool { return arcCalls(aws, "app/replica-a") > 0 })
	if n := arcCalls(aws, "app/replica-b"); n != 0 {
		t.Fatalf("the follower made %d call(s) to ARC: %+v", n, aws.Calls())
	}
}

// arcCalls counts the ARC requests whose User-Agent contains ua.
func arcCalls(aws *awsstandin.Server, ua string) int {
	n := 0
	for _, c := range aws.Calls() {
		if c.Service == awsstandin.ARC && strings.Contains(c.UserAgent, ua) {
			n++
		}
	}
	return n
}
