// Package arc carries grayzone's zonal shifts out with Amazon Route 53
// Application Recovery Controller (ARC) zonal shift, through the official
// AWS SDK for Go v2: a grayzone shift of a resource is an ARC zonal shift of
// its load balancer (StartZonalShift, UpdateZonalShift, CancelZonalShift),
// and ARC's own view (ListZonalShifts) is reconciled back into grayzone's, so
// that a shift someone else started is seen and respected, and a grayzone
// shift that ARC ended is marked so.
//
// Credentials, region and endpoint come from the SDK's default chain only
// (see docs/aws.md); nothing here reads or logs a credential.
package arc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift/types"
	"github.com/aws/smithy-go"
)

// ARC's limits.
const (
	MinExpiresIn     = time.Minute
	MaxExpiresIn     = 72 * time.Hour
	MaxCommentLength = 128
)

// Retry policy for every ARC call: the SDK's standard retryer (exponential
// backoff with full jitter, retrying throttling, 5xx and broken connections),
// bounded so that a call gives up within seconds instead of holding the
// runbook; reconciliation tries again later.
const (
	MaxAttempts = 4
	MaxBackoff  = 2 * time.Second
)

// Retryer is the bounded SDK retryer every AWS actuator uses.
func Retryer() aws.Retryer {
	return retry.AddWithMaxBackoffDelay(retry.AddWithMaxAttempts(retry.NewStandard(), MaxAttempts), MaxBackoff)
}

// Shift is an ARC zonal shift as grayzone needs it.
type Shift struct {
	ID        string // ARC's zonalShiftId
	Resource  string // the managed resource's ARN
	AwayFrom  string // AZ ID
	Status    string // ACTIVE, EXPIRED, CANCELED
	Type      string // ZONAL_SHIFT, ZONAL_AUTOSHIFT, PRACTICE_RUN, FIS_EXPERIMENT
	Comment   string
	StartTime time.Time
	Expiry    time.Time
}

// Client talks to ARC about one managed resource.
type Client struct {
	api      *arczonalshift.Client
	resource string
}

// New returns a client for the resource (an ALB or NLB ARN), built from cfg
// (config.LoadDefaultConfig's, or the lab's) with the bounded retryer.
func New(cfg aws.Config, resourceARN string) *Client {
	api := arczonalshift.NewFromConfig(cfg, func(o *arczonalshift.Options) {
		if cfg.Retryer == nil { // AWS_MAX_ATTEMPTS or retry_mode set one: the operator's choice wins
			o.Retryer = Retryer()
		}
	})
	return &Client{api: api, resource: resourceARN}
}

// Resource is the managed resource's ARN.
func (c *Client) Resource() string { return c.resource }

// Start starts a zonal shift away from the AZ ID.
func (c *Client) Start(ctx context.Context, awayFrom string, expiresIn time.Duration, comment string) (Shift, error) {
	ei, err := FormatExpiresIn(expiresIn)
	if err != nil {
		return Shift{}, err
	}
	out, err := c.api.StartZonalShift(ctx, &arczonalshift.StartZonalShiftInput{ResourceIdentifier: aws.String(c.resource),
		AwayFrom: aws.String(awayFrom), ExpiresIn: aws.String(ei), Comment: aws.String(TruncateComment(comment))})
	if err != nil {
		return Shift{}, wrap("StartZonalShift", err)
	}
	return Shift{ID: aws.ToString(out.ZonalShiftId), Resource: aws.ToString(out.ResourceIdentifier), AwayFrom: aws.ToString(out.AwayFrom),
		Status: string(out.Status), Type: string(types.ShiftTypeZonalShift), Comment: aws.ToString(out.Comment),
		StartTime: aws.ToTime(out.StartTime), Expiry: aws.ToTime(out.ExpiryTime)}, nil
}

// Update changes an active shift's expiry (from now) and/or comment; nil leaves it.
func (c *Client) Update(ctx context.Context, id string, expiresIn *time.Duration, comment *string) (Shift, error) {
	in := &arczonalshift.UpdateZonalShiftInput{ZonalShiftId: aws.String(id)}
	if expiresIn != nil {
		ei, err := FormatExpiresIn(*expiresIn)
		if err != nil {
			return Shift{}, err
		}
		in.ExpiresIn = aws.String(ei)
	}
	if comment != nil {
		in.Comment = aws.String(TruncateComment(*comment))
	}
	out, err := c.api.UpdateZonalShift(ctx, in)
	if err != nil {
		return Shift{}, wrap("UpdateZonalShift", err)
	}
	return Shift{ID: aws.ToString(out.ZonalShiftId), Resource: aws.ToString(out.ResourceIdentifier), AwayFrom: aws.ToString(out.AwayFrom),
		Status: string(out.Status), Type: string(types.ShiftTypeZonalShift), Comment: aws.ToString(out.Comment),
		StartTime: aws.ToTime(out.StartTime), Expiry: aws.ToTime(out.ExpiryTime)}, nil
}

// Cancel cancels a zonal shift.
func (c *Client) Cancel(ctx context.Context, id string) error {
	if _, err := c.api.CancelZonalShift(ctx, &arczonalshift.CancelZonalShiftInput{ZonalShiftId: aws.String(id)}); err != nil {
		return wrap("CancelZonalShift", err)
	}
	return nil
}

// List returns every zonal shift ARC reports for the resource, any status.
func (c *Client) List(ctx context.Context) ([]Shift, error) {
	var out []Shift
	p := arczonalshift.NewListZonalShiftsPaginator(c.api, &arczonalshift.ListZonalShiftsInput{ResourceIdentifier: aws.String(c.resource)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("ListZonalShifts", err)
		}
		for _, it := range page.Items {
			if aws.ToString(it.ResourceIdentifier) != c.resource {
				continue
			}
			st := it.ShiftType
			if st == "" {
				st = types.ShiftTypeZonalShift
			}
			out = append(out, Shift{ID: aws.ToString(it.ZonalShiftId), Resource: c.resource, AwayFrom: aws.ToString(it.AwayFrom),
				Status: string(it.Status), Type: string(st), Comment: aws.ToString(it.Comment),
				StartTime: aws.ToTime(it.StartTime), Expiry: aws.ToTime(it.ExpiryTime)})
		}
	}
	return out, nil
}

// Applied returns the AZ ID the resource's traffic is shifted away from
// now, as GetManagedResource reports it ("" for none).
func (c *Client) Applied(ctx context.Context) (string, error) {
	out, err := c.api.GetManagedResource(ctx, &arczonalshift.GetManagedResourceInput{ResourceIdentifier: aws.String(c.resource)})
	if err != nil {
		return "", wrap("GetManagedResource", err)
	}
	for _, z := range out.ZonalShifts {
		if z.AppliedStatus == types.AppliedStatusApplied {
			return aws.ToString(z.AwayFrom), nil
		}
	}
	for _, z := range out.Autoshifts {
		if z.AppliedStatus == types.AutoshiftAppliedStatusApplied {
			return aws.ToString(z.AwayFrom), nil
		}
	}
	return "", nil
}

// FormatExpiresIn writes d in ARC's format: whole hours as "Nh", else whole
// minutes (rounded up) as "Nm"; 1m to 72h.
func FormatExpiresIn(d time.Duration) (string, error) {
	if d < MinExpiresIn || d > MaxExpiresIn {
		return "", fmt.Errorf("arc: expiresIn %s is out of ARC's range (1m..72h)", d)
	}
	m := (d + time.Minute - 1) / time.Minute
	if m%60 == 0 {
		return fmt.Sprintf("%dh", m/60), nil
	}
	return fmt.Sprintf("%dm", m), nil
}

// TruncateComment cuts a comment to ARC's 128 characters.
func TruncateComment(c string) string {
	if utf8.RuneCountInString(c) <= MaxCommentLength {
		return c
	}
	r := []rune(c)
	return string(r[:MaxCommentLength-1]) + "…"
}

// markerRe finds grayzone's mark in an ARC comment: "[grayzone gzs-…]".
var markerRe = regexp.MustCompile(`^\[grayzone ([A-Za-z0-9._-]+)\]`)

// Comment is the ARC comment of grayzone shift id: a mark that lets
// grayzone recognise its own shift in ARC (also after a crash between the
// call and the write of its id), then the shift's own comment.
func Comment(id, comment string) string {
	return TruncateComment("[grayzone " + id + "] " + comment)
}

// Owner returns the grayzone shift id marked in an ARC comment ("" if none).
func Owner(comment string) string {
	if m := markerRe.FindStringSubmatch(comment); m != nil {
		return m[1]
	}
	return ""
}

// Error is an ARC refusal that retrying cannot fix: a conflict, an invalid
// request, missing permissions, an unknown resource or shift.
type Error struct {
	Op, Code, Message string
	Err               error
}

func (e *Error) Error() string {
	return fmt.Sprintf("ARC %s refused: %s: %s", e.Op, e.Code, shortMessage(e.Code, e.Message))
}

// The audit log is readable with a read token: an AWS error reaches it as
// its code and a short message, without the ARNs (role, account, resource)
// that AccessDenied and other messages spell out.
var (
	arnRe     = regexp.MustCompile(`arn:aws[a-zA-Z-]*:[^\s,;"']*`)
	accountRe = regexp.MustCompile(`\b\d{12}\b`)
)

const maxMessage = 160

// shortMessage is what of an AWS error message grayzone shows: for a
// refused authorization a fixed sentence (the message names the principal
// and the account), else the message on one line with ARNs and account
// IDs elided, at most maxMessage bytes.
func shortMessage(code, msg string) string {
	if strings.HasPrefix(code, "AccessDenied") || code == "UnrecognizedClientException" || code == "InvalidSignatureException" || code == "MissingAuthenticationToken" {
		return "not authorized (the principal and resource are in AWS CloudTrail)"
	}
	msg = accountRe.ReplaceAllString(arnRe.ReplaceAllString(oneLine(msg), "<arn>"), "<account>")
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && msg[cut]&0xC0 == 0x80 {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// permanent are the error codes retrying cannot fix.
var permanent = map[string]bool{
	"ConflictException": true, "ValidationException": true, "AccessDeniedException": true,
	"ResourceNotFoundException": true, "UnrecognizedClientException": true, "InvalidSignatureException": true,
	"AccessDenied": true, "MissingAuthenticationToken": true,
}

// Permanent reports whether err is a refusal that retrying cannot fix.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// wrap turns an SDK error into a one-line error: an *Error for permanent
// refusals; else (throttling, 5xx, network after the retryer gave up) a
// transient error.
func wrap(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && permanent[ae.ErrorCode()] {
		return &Error{Op: op, Code: ae.ErrorCode(), Message: ae.ErrorMessage(), Err: err}
	}
	return OneLine("ARC "+op, err)
}

// OneLine turns an SDK error into one line, "op: Code: message" or, for
// network failures, "op failed after retries: cause", keeping the SDK error
// in the chain for errors.As.
func OneLine(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &lineError{msg: fmt.Sprintf("%s: %s: %s", op, ae.ErrorCode(), shortMessage(ae.ErrorCode(), ae.ErrorMessage())), err: err}
	}
	return &lineError{msg: fmt.Sprintf("%s failed after retries: %s", op, shortMessage("", lastCause(err))), err: err}
}

type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// lastCause is the innermost message of an SDK error chain.
func lastCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
