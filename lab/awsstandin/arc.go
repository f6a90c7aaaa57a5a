package awsstandin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ARC's limits.
const (
	minExpiresIn     = time.Minute
	maxExpiresIn     = 72 * time.Hour
	maxCommentLength = 128
)

// Shift types, as ARC reports them.
const (
	ZonalShiftType     = "ZONAL_SHIFT"
	ZonalAutoshiftType = "ZONAL_AUTOSHIFT"
	PracticeRunType    = "PRACTICE_RUN"
)

type managedResource struct {
	arn, name string
	zones     []string // AZ IDs
}

type zonalShift struct {
	id, resource, awayFrom, comment, shiftType string
	start, expiry                              time.Time
	canceled                                   bool
}

func (z *zonalShift) status(now time.Time) string {
	switch {
	case z.canceled:
		return "CANCELED"
	case !now.Before(z.expiry):
		return "EXPIRED"
	}
	return "ACTIVE"
}

// Shift is a zonal shift as the server holds it.
type Shift struct {
	ID, Resource, AwayFrom, Comment, Type, Status string
	Start, Expiry                                 time.Time
}

// AddManagedResource registers a load balancer ARC can shift, with the AZ
// IDs it spans.
func (s *Server) AddManagedResource(arn string, zoneIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := arn
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		name = arn[i+1:]
	}
	s.resources[arn] = &managedResource{arn: arn, name: name, zones: slices.Clone(zoneIDs)}
}

// Shifts lists the resource's shifts ("" for all), oldest first.
func (s *Server) Shifts(resource string) []Shift {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Clock.Now()
	var out []Shift
	for _, z := range s.shifts {
		if resource == "" || z.resource == resource {
			out = append(out, Shift{ID: z.id, Resource: z.resource, AwayFrom: z.awayFrom, Comment: z.comment, Type: z.shiftType,
				Status: z.status(now), Start: z.start, Expiry: z.expiry})
		}
	}
	return out
}

// ShiftedAway returns the zone the resource's traffic is shifted away from
// now ("" for none): a customer zonal shift wins over an autoshift, as in ARC.
func (s *Server) ShiftedAway(resource string) string {
	best := ""
	for _, z := range s.Shifts(resource) {
		if z.Status != "ACTIVE" {
			continue
		}
		if z.Type == ZonalShiftType {
			return z.AwayFrom
		}
		best = z.AwayFrom
	}
	return best
}

// StartOutside starts a shift as something other than grayzone would (the
// console, ARC zonal autoshift, a practice run) and returns its id.
func (s *Server) StartOutside(resource, awayFrom, shiftType, comment string, expiresIn time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Clock.Now()
	z := &zonalShift{id: s.newShiftID(), resource: resource, awayFrom: awayFrom, comment: comment, shiftType: shiftType, start: now, expiry: now.Add(expiresIn)}
	s.shifts = append(s.shifts, z)
	return z.id
}

// CancelOutside cancels a shift as an operator in the console would.
func (s *Server) CancelOutside(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.shifts {
		if z.id == id {
			z.canceled = true
		}
	}
}

func (s *Server) newShiftID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var expiresInPattern = regexp.MustCompile(`^([1-9][0-9]*)(m|h)$`)

// parseExpiresIn reads ARC's expiresIn ("30m", "2h") and checks its range.
func parseExpiresIn(v string) (time.Duration, *apiError) {
	m := expiresInPattern.FindStringSubmatch(v)
	bad := &apiError{status: 400, code: "ValidationException", reason: "InvalidExpiresIn",
		msg: fmt.Sprintf("expiresIn %q must be a whole number of minutes (m) or hours (h) between 1m and 72h", v)}
	if m == nil {
		return 0, bad
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, bad
	}
	d := time.Duration(n) * time.Minute
	if m[2] == "h" {
		d = time.Duration(n) * time.Hour
	}
	if d < minExpiresIn || d > maxExpiresIn {
		return 0, bad
	}
	return d, nil
}

func checkComment(c string) *apiError {
	if utf8.RuneCountInString(c) > maxCommentLength {
		return &apiError{status: 400, code: "ValidationException",
			msg: fmt.Sprintf("1 validation error detected: Value at 'comment' failed to satisfy constraint: Member must have length less than or equal to %d", maxCommentLength)}
	}
	return nil
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (s *Server) shiftJSON(z *zonalShift, now time.Time) map[string]any {
	return map[string]any{"zonalShiftId": z.id, "resourceIdentifier": z.resource, "awayFrom": z.awayFrom, "comment": z.comment,
		"startTime": epoch(z.start), "expiryTime": epoch(z.expiry), "status": z.status(now), "shiftType": z.shiftType}
}

func (s *Server) serveARC(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Clock.Now()
	fail := func(e *apiError) { writeError(w, ARC, e) }
	var in struct {
		ResourceIdentifier string  `json:"resourceIdentifier"`
		AwayFrom           string  `json:"awayFrom"`
		ExpiresIn          *string `json:"expiresIn"`
		Comment            *string `json:"comment"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			fail(&apiError{status: 400, code: "SerializationException", msg: err.Error()})
			return
		}
	}
	findShift := func(id string) *zonalShift {
		for _, z := range s.shifts {
			if z.id == id {
				return z
			}
		}
		return nil
	}
	notFound := func(what string) *apiError {
		return &apiError{status: 404, code: "ResourceNotFoundException", msg: what + " not found"}
	}
	switch action := actionOf(ARC, r, nil); action {
	case "StartZonalShift":
		res := s.resources[in.ResourceIdentifier]
		if res == nil {
			fail(notFound("The resource " + in.ResourceIdentifier + " was"))
			return
		}
		if in.ExpiresIn == nil || in.Comment == nil || in.AwayFrom == "" {
			fail(&apiError{status: 400, code: "ValidationException", reason: "MissingValue", msg: "awayFrom, expiresIn and comment are required"})
			return
		}
		d, e := parseExpiresIn(*in.ExpiresIn)
		if e != nil {
			fail(e)
			return
		}
		if e := checkComment(*in.Comment); e != nil {
			fail(e)
			return
		}
		if !slices.Contains(res.zones, in.AwayFrom) {
			fail(&apiError{status: 400, code: "ValidationException", reason: "InvalidAz",
				msg: fmt.Sprintf("%s is not an Availability Zone ID of %s (%s)", in.AwayFrom, res.arn, strings.Join(res.zones, ", "))})
			return
		}
		for _, z := range s.shifts {
			if z.resource == res.arn && z.shiftType == ZonalShiftType && z.status(now) == "ACTIVE" {
				fail(&apiError{status: 409, code: "ConflictException", reason: "ZonalShiftAlreadyExists", zonalShiftID: z.id,
					msg: fmt.Sprintf("A zonal shift (%s) is already active for the resource %s", z.id, res.arn)})
				return
			}
		}
		z := &zonalShift{id: s.newShiftID(), resource: res.arn, awayFrom: in.AwayFrom, comment: *in.Comment, shiftType: ZonalShiftType, start: now, expiry: now.Add(d)}
		s.shifts = append(s.shifts, z)
		out := s.shiftJSON(z, now)
		delete(out, "shiftType")
		writeJSON(w, 200, out)
	case "UpdateZonalShift", "CancelZonalShift":
		z := findShift(strings.TrimPrefix(r.URL.Path, "/zonalshifts/"))
		if z == nil {
			fail(notFound("The zonal shift " + strings.TrimPrefix(r.URL.Path, "/zonalshifts/") + " was"))
			return
		}
		if st := z.status(now); st != "ACTIVE" {
			fail(&apiError{status: 409, code: "ConflictException", reason: "ZonalShiftStatusNotActive", zonalShiftID: z.id,
				msg: fmt.Sprintf("The zonal shift %s is %s, not ACTIVE", z.id, st)})
			return
		}
		if z.shiftType != ZonalShiftType {
			fail(&apiError{status: 409, code: "ConflictException", reason: "AutoShiftEnabled", zonalShiftID: z.id,
				msg: fmt.Sprintf("The %s %s can only be changed by ARC", z.shiftType, z.id)})
			return
		}
		if action == "CancelZonalShift" {
			z.canceled = true
		} else {
			if in.ExpiresIn == nil && in.Comment == nil {
				fail(&apiError{status: 400, code: "ValidationException", reason: "MissingValue", msg: "expiresIn or comment is required"})
				return
			}
			if in.ExpiresIn != nil {
				d, e := parseExpiresIn(*in.ExpiresIn)
				if e != nil {
					fail(e)
					return
				}
				z.expiry = now.Add(d)
			}
			if in.Comment != nil {
				if e := checkComment(*in.Comment); e != nil {
					fail(e)
					return
				}
				z.comment = *in.Comment
			}
		}
		out := s.shiftJSON(z, now)
		delete(out, "shiftType")
		writeJSON(w, 200, out)
	case "ListZonalShifts":
		q := r.URL.Query()
		status, res := q.Get("status"), q.Get("resourceIdentifier")
		if status != "" && status != "ACTIVE" && status != "EXPIRED" && status != "CANCELED" {
			fail(&apiError{status: 400, code: "ValidationException", reason: "InvalidStatus", msg: "status must be ACTIVE, EXPIRED or CANCELED"})
			return
		}
		limit := 100
		if v := q.Get("maxResults"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				fail(&apiError{status: 400, code: "ValidationException", msg: "maxResults must be 1..100"})
				return
			}
			limit = n
		}
		from := 0
		if t := q.Get("nextToken"); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 {
				fail(&apiError{status: 400, code: "ValidationException", reason: "InvalidToken", msg: "nextToken is invalid"})
				return
			}
			from = n
		}
		var items []map[string]any
		for _, z := range s.shifts {
			if (res == "" || z.resource == res) && (status == "" || z.status(now) == status) {
				items = append(items, s.shiftJSON(z, now))
			}
		}
		out := map[string]any{}
		if from < len(items) {
			items = items[from:]
		} else {
			items = nil
		}
		if len(items) > limit {
			items = items[:limit]
			out["nextToken"] = strconv.Itoa(from + limit)
		}
		out["items"] = append([]map[string]any{}, items...)
		writeJSON(w, 200, out)
	case "GetManagedResource":
		id := strings.TrimPrefix(r.URL.Path, "/managedresources/")
		res := s.resources[id]
		if res == nil {
			fail(notFound("The resource " + id + " was"))
			return
		}
		weights := map[string]float64{}
		for _, z := range res.zones {
			weights[z] = 1
		}
		shifted := ""
		for _, z := range s.shifts {
			if z.resource == res.arn && z.status(now) == "ACTIVE" && (shifted == "" || z.shiftType == ZonalShiftType) {
				shifted = z.awayFrom
			}
		}
		shifts := []map[string]any{}
		for _, z := range s.shifts {
			if z.resource == res.arn && z.status(now) == "ACTIVE" {
				m := s.shiftJSON(z, now)
				delete(m, "status")
				m["appliedStatus"] = "NOT_APPLIED"
				if z.awayFrom == shifted {
					m["appliedStatus"] = "APPLIED"
				}
				shifts = append(shifts, m)
			}
		}
		if shifted != "" {
			weights[shifted] = 0
		}
		writeJSON(w, 200, map[string]any{"arn": res.arn, "name": res.name, "appliedWeights": weights, "zonalShifts": shifts,
			"autoshifts": []any{}, "zonalAutoshiftStatus": "DISABLED"})
	default:
		fail(&apiError{status: 404, code: "UnknownOperationException", msg: "unknown operation " + action})
	}
}
