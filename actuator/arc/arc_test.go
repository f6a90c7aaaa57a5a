package arc_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift"
	"github.com/aws/smithy-go"

	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/lab/awsstandin"
)

const albARN = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"

var zones = []string{"use2-az1", "use2-az2", "use2-az3"}

// standin starts the AWS stand-in on a fake clock with the ALB registered.
func standin(t *testing.T) (*awsstandin.Server, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	s := awsstandin.New(awsstandin.Options{Clock: clk})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddManagedResource(albARN, zones...)
	return s, clk
}

// fastRetries keeps the SDK's standard retry decisions but with
// millisecond backoff, for tests that exhaust them.
func fastRetries(cfg aws.Config) aws.Config {
	cfg.Retryer = awsstandin.LoopbackRetryer(arc.MaxAttempts)
	return cfg
}

func TestStartUpdateCancelList(t *testing.T) {
	s, clk := standin(t)
	c := arc.New(s.Config(), albARN)
	ctx := context.Background()
	sh, err := c.Start(ctx, "use2-az1", 30*time.Minute, arc.Comment("gzs-1", "maintenance"))
	if err != nil {
		t.Fatal(err)
	}
	if sh.AwayFrom != "use2-az1" || sh.Status != "ACTIVE" || sh.Expiry.Sub(sh.StartTime) != 30*time.Minute || arc.Owner(sh.Comment) != "gzs-1" {
		t.Fatalf("started %+v", sh)
	}
	if got := s.ShiftedAway(albARN); got != "use2-az1" {
		t.Fatalf("stand-in shifted away from %q", got)
	}
	if z, err := c.Applied(ctx); err != nil || z != "use2-az1" {
		t.Fatalf("applied = %q, %v", z, err)
	}
	two := 2 * time.Hour
	up, err := c.Update(ctx, sh.ID, &two, nil)
	if err != nil || !up.Expiry.Equal(clk.Now().Add(two)) {
		t.Fatalf("update: %+v, %v", up, err)
	}
	// A second shift on the resource is ARC's ConflictException: permanent, one line.
	_, err = c.Start(ctx, "use2-az2", time.Hour, "second")
	var ae *arc.Error
	if !errors.As(err, &ae) || ae.Code != "ConflictException" || !arc.Permanent(err) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second start: %v", err)
	}
	if err := c.Cancel(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Status != "CANCELED" || list[0].Type != "ZONAL_SHIFT" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	// Expiry is ARC's: past it, ARC lists the shift EXPIRED.
	sh2, err := c.Start(ctx, "use2-az2", time.Minute, "short")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	list, _ = c.List(ctx)
	for _, x := range list {
		if x.ID == sh2.ID && x.Status != "EXPIRED" {
			t.Fatalf("after expiry: %+v", x)
		}
	}
}

func TestFormatExpiresIn(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 30 * time.Minute: "30m", 2 * time.Hour: "2h", 90 * time.Minute: "90m",
		72 * time.Hour: "72h", 61*time.Second + time.Minute: "3m"} {
		if got, err := arc.FormatExpiresIn(d); err != nil || got != want {
			t.Errorf("FormatExpiresIn(%s) = %q, %v; want %q", d, got, err, want)
		}
	}
	for _, d := range []time.Duration{59 * time.Second, 72*time.Hour + time.Minute} {
		if _, err := arc.FormatExpiresIn(d); err == nil {
			t.Errorf("FormatExpiresIn(%s) accepted", d)
		}
	}
}

// The stand-in rejects what ARC rejects, seen through the raw SDK client.
func TestStandinValidatesLikeARC(t *testing.T) {
	s, _ := standin(t)
	api := arczonalshift.NewFromConfig(s.Config())
	ctx := context.Background()
	start := func(away, exp, comment string) error {
		_, err := api.StartZonalShift(ctx, &arczonalshift.StartZonalShiftInput{ResourceIdentifier: aws.String(albARN),
			AwayFrom: aws.String(away), ExpiresIn: aws.String(exp), Comment: aws.String(comment)})
		return err
	}
	for _, tc := range []struct {
		name, away, exp, comment, code string
	}{
		{"expiresIn above 72h", "use2-az1", "73h", "x", "ValidationException"},
		{"expiresIn in seconds", "use2-az1", "90s", "x", "ValidationException"},
		{"expiresIn zero", "use2-az1", "0m", "x", "ValidationException"},
		{"comment over 128", "use2-az1", "1h", strings.Repeat("c", 129), "ValidationException"},
		{"unknown AZ", "use1-az9", "1h", "x", "ValidationException"},
	} {
		var ae smithy.APIError
		if err := start(tc.away, tc.exp, tc.comment); !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if err := start("use2-az1", "72h", strings.Repeat("é", 128)); err != nil {
		t.Fatalf("72h and 128 characters are within the limits: %v", err)
	}
	_, err := api.GetManagedResource(ctx, &arczonalshift.GetManagedResourceInput{ResourceIdentifier: aws.String(albARN + "x")})
	if !arc.Permanent(arcWrap(err)) {
		t.Fatalf("unknown resource: %v", err)
	}
}

// arcWrap classifies a raw SDK error the way the client does.
func arcWrap(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException" {
		return &arc.Error{Code: ae.ErrorCode(), Err: err}
	}
	return err
}

// Every request's SigV4 signature is checked: a wrong secret or an unknown
// key is refused as AWS refuses it, and never retried.
func TestSignatureVerified(t *testing.T) {
	s, _ := standin(t)
	ctx := context.Background()
	cfg := s.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDSTANDIN000000000", "wrong-secret", "")
	_, err := arc.New(cfg, albARN).List(ctx)
	var ae *arc.Error
	if !errors.As(err, &ae) || ae.Code != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDSOMEONEELSE00000", "x", "")
	if _, err := arc.New(cfg, albARN).List(ctx); !errors.As(err, &ae) || ae.Code != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[0].Status != 403 || calls[1].Status != 403 {
		t.Fatalf("calls = %+v (want two 403s, no retries)", calls)
	}
	// The right credentials pass.
	if _, err := arc.New(s.Config(), albARN).List(ctx); err != nil {
		t.Fatal(err)
	}
	s.Deny(awsstandin.ARC, "StartZonalShift")
	_, err = arc.New(s.Config(), albARN).Start(ctx, "use2-az1", time.Hour, "x")
	if !errors.As(err, &ae) || ae.Code != "AccessDeniedException" || !strings.HasPrefix(err.Error(), "ARC StartZonalShift refused: AccessDeniedException:") {
		t.Fatalf("denied: %v", err)
	}
	// What reaches the audit log names no principal, account or resource.
	if msg := err.Error(); strings.Contains(msg, "arn:") || regexp.MustCompile(`\d{12}`).MatchString(msg) {
		t.Errorf("the error shows ARNs or an account: %s", msg)
	}
}

// TestErrorTextShort: an AWS message reaches grayzone's errors (and so the
// audit log) on one line, ARNs and account IDs elided, cut short.
func TestErrorTextShort(t *testing.T) {
	e := &arc.Error{Op: "StartZonalShift", Code: "ValidationException",
		Message: "Resource arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/x/1 of account 123456789012\nis bad " + strings.Repeat("x", 400)}
	msg := e.Error()
	if strings.Contains(msg, "arn:") || strings.Contains(msg, "123456789012") || strings.Contains(msg, "\n") || len(msg) > 250 {
		t.Errorf("%q", msg)
	}
	if !strings.Contains(msg, "ValidationException: Resource <arn> of account <account> is bad") {
		t.Errorf("%q", msg)
	}
	denied := &arc.Error{Op: "StartZonalShift", Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/ops/i is not authorized"}
	if msg := denied.Error(); msg != "ARC StartZonalShift refused: AccessDeniedException: not authorized (the principal and resource are in AWS CloudTrail)" {
		t.Errorf("%q", msg)
	}
}

// Throttling, 500s and dropped connections are retried by the SDK's
// standard retryer (the production one, bounded), and the call succeeds.
func TestTransientFaultsRetried(t *testing.T) {
	s, _ := standin(t)
	c := arc.New(s.Config(), albARN)
	s.Inject(awsstandin.ARC, awsstandin.Throttle, 1)
	s.Inject(awsstandin.ARC, awsstandin.ServerError, 1)
	s.Inject(awsstandin.ARC, awsstandin.Drop, 1)
	if _, err := c.Start(context.Background(), "use2-az1", time.Hour, "x"); err != nil {
		t.Fatalf("start through faults: %v", err)
	}
	var got []string
	for _, c := range s.Calls() {
		got = append(got, c.Error)
	}
	if strings.Join(got, ",") != "ThrottlingException,InternalServerException,dropped," {
		t.Fatalf("calls = %q", got)
	}
	if len(s.Shifts(albARN)) != 1 {
		t.Fatalf("a retried start made %d shifts", len(s.Shifts(albARN)))
	}
}

// Retries are bounded: a service that keeps throttling fails the call after
// MaxAttempts with a transient (not permanent) error.
func TestRetriesBounded(t *testing.T) {
	s, _ := standin(t)
	c := arc.New(fastRetries(s.Config()), albARN)
	s.Inject(awsstandin.ARC, awsstandin.Throttle, 100)
	_, err := c.List(context.Background())
	if err == nil || arc.Permanent(err) || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Fatalf("err = %v", err)
	}
	if n := len(s.Calls()); n != arc.MaxAttempts {
		t.Fatalf("%d attempts, want %d", n, arc.MaxAttempts)
	}
}

// A slow answer within the caller's deadline is waited for; past it, the
// call gives up at the deadline.
func TestSlowAnswers(t *testing.T) {
	s, _ := standin(t)
	c := arc.New(fastRetries(s.Config()), albARN)
	s.SetDelay(awsstandin.ARC, 50*time.Millisecond)
	if _, err := c.List(context.Background()); err != nil {
		t.Fatalf("slow answer: %v", err)
	}
	s.SetDelay(awsstandin.ARC, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.List(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past the deadline: %v", err)
	}
}
