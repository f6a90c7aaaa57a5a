package kubelease_test

// Two real `grayzone serve` replicas elect a leader on a Lease of a real
// API server; kill -9 of the leader hands over within the lease duration.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/grayzone/grayzone/internal/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	os.Exit(code)
}

const (
	leaseDuration = 4 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

func serveConfig(dir string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
auth: {open_reads: true}
leader_election:
  type: kubernetes-lease
  namespace: default
  name: grayzone-test
  lease_duration: %s
  renew_deadline: 3s
  retry_period: %s
resources:
  - name: web
    zones: [az1, az2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {az1: 127.0.0.1:0, az2: 127.0.0.1:0}
      targets:
        - {id: a1, zone: az1, addr: 127.0.0.1:9}
        - {id: a2, zone: az1, addr: 127.0.0.1:19}
        - {id: b1, zone: az2, addr: 127.0.0.1:29}
        - {id: b2, zone: az2, addr: 127.0.0.1:39}
`, dir, leaseDuration, retryPeriod)
}

type replica struct {
	cmd  *exec.Cmd
	addr string
}

var upLine = regexp.MustCompile(`API and dashboard on http://(\S+)`)

func start(t *testing.T, bin, kubeconfig, name string) *replica {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfg, []byte(serveConfig(filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAME="+name)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return &replica{cmd: cmd, addr: m[1]}
		}
	}
	t.Fatalf("%s never came up", name)
	return nil
}

// leader reads grayzone_leader from the replica's /metrics.
func (r *replica) leader(t *testing.T) bool {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "\ngrayzone_leader 1\n")
}

func holder(ctx context.Context, admin k8s.Interface) string {
	l, err := admin.CoordinationV1().Leases("default").Get(ctx, "grayzone-test", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestKillLeaderHandsOverWithinLeaseDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grayzone and runs two replicas")
	}
	cl := kubetest.Shared(t)
	ctx := context.Background()
	admin := k8s.NewForConfigOrDie(cl.Config(kubetest.Admin))
	// The chart's Lease role, bound to the grayzone user.
	_, err := admin.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "grayzone-lease"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) { // -count=N shares the cluster
		t.Fatal(err)
	}
	_, err = admin.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "grayzone-lease"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "grayzone-lease"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.Grayzone}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "grayzone")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/grayzone").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	kc, err := cl.Kubeconfig(tmp, kubetest.Grayzone)
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, bin, kc, "replica-a")
	waitFor(t, "replica-a to lead", func() bool { return holder(ctx, admin) == "replica-a" && a.leader(t) })
	b := start(t, bin, kc, "replica-b")
	// b is up and warm (its API answers) but follows.
	waitFor(t, "replica-b to report", func() bool { return !b.leader(t) })
	if !a.leader(t) || holder(ctx, admin) != "replica-a" {
		t.Fatal("leadership moved when a second replica started")
	}

	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica-b to take the lease", func() bool { return holder(ctx, admin) == "replica-b" })
	took := time.Since(killed)
	waitFor(t, "replica-b to lead", func() bool { return b.leader(t) })
	// client-go: a follower may take the lease LeaseDuration after it last
	// saw it renewed (up to a RetryPeriod after the renewal), and it looks
	// every RetryPeriod with up to 20 % jitter.
	if limit := leaseDuration + 3*retryPeriod; took > limit {
		t.Errorf("took over %s after kill -9, want within %s (lease duration %s)", took.Round(time.Millisecond), limit, leaseDuration)
	}
	t.Logf("replica-b took the lease %s after kill -9 of replica-a (lease duration %s)", took.Round(time.Millisecond), leaseDuration)
	var lease *coordinationv1.Lease
	lease, err = admin.CoordinationV1().Leases("default").Get(ctx, "grayzone-test", metav1.GetOptions{})
	if err != nil || lease.Spec.LeaseTransitions == nil || *lease.Spec.LeaseTransitions < 1 {
		t.Errorf("lease after hand-over: %+v %v, want a transition recorded", lease, err)
	}
}

// waitFor polls a condition on external processes, with a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
