// Package shift models zonal shifts with Route 53 ARC semantics: a shift moves
// a resource's traffic away from one zone until it expires or is canceled.
//
// It is pure logic: it reads no clock (every operation is told the time) and
// does no I/O of its own; durability is the Store's job. A change is written
// through the Store before the operation returns, so an acknowledged shift
// survives a restart, and kept in memory only once the Store took it, so a
// write the Store refuses (a deposed leader's, fenced) changes nothing. The
// Manager's lock is never held while the Store writes: readers (Active, Get,
// List) never wait on the database.
package shift

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/grayzone/grayzone/internal/duration"
)

// Status is a shift's lifecycle state.
type Status string

const (
	Active   Status = "ACTIVE"
	Expired  Status = "EXPIRED"
	Canceled Status = "CANCELED"
)

// Origin says who asked for a shift.
type Origin string

const (
	Manual   Origin = "manual"   // an operator
	Auto     Origin = "auto"     // grayzone's detector (autoshift)
	Practice Origin = "practice" // a scheduled practice run
	// External is a shift started outside grayzone (the ARC console, ARC
	// zonal autoshift, another tool) that grayzone observed at the front
	// door. It counts as "a zone is already shifted" for every guard, and
	// grayzone never changes or ends it.
	External Origin = "external"
)

// Limits, as in ARC.
const (
	MinExpiresIn     = time.Minute
	MaxExpiresIn     = 72 * time.Hour
	MaxCommentLength = 128 // characters (runes), not bytes
)

// Errors returned by Manager operations, wrapped with a message naming the
// field or shift concerned; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	ErrCapacity = errors.New("insufficient capacity")
)

// Shift is one zonal shift.
type Shift struct {
	ID        string     `json:"id"`
	Resource  string     `json:"resource"`
	AwayFrom  string     `json:"away_from"`
	Status    Status     `json:"status"`
	Origin    Origin     `json:"origin"`
	Comment   string     `json:"comment"`
	StartedBy string     `json:"started_by"`
	Reason    string     `json:"reason"`
	StartedAt time.Time  `json:"started_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	UpdatedBy string     `json:"updated_by,omitempty"` // who last updated it (Update's By)
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	EndedBy   string     `json:"ended_by,omitempty"`
	// ARCZonalShiftID is the ARC zonal shift carrying this shift, when the
	// resource's front door is ARC ("" until ARC accepted it).
	ARCZonalShiftID string `json:"arc_zonal_shift_id,omitempty"`
}

// MarshalJSON writes times as RFC 3339 in UTC whatever their location.
func (s Shift) MarshalJSON() ([]byte, error) {
	type plain Shift // no methods: avoids recursion
	p := plain(s.normalized())
	return json.Marshal(p)
}

// normalized returns s with UTC times (which also drops monotonic readings,
// so == on reloaded values behaves) and its own copy of EndedAt.
func (s Shift) normalized() Shift {
	s.StartedAt = s.StartedAt.UTC()
	s.ExpiresAt = s.ExpiresAt.UTC()
	s.UpdatedAt = s.UpdatedAt.UTC()
	if s.EndedAt != nil {
		t := s.EndedAt.UTC()
		s.EndedAt = &t
	}
	return s
}

// Resource is something whose traffic can be shifted between zones.
type Resource struct {
	Name  string
	Zones []string
	// Capacity is instances per zone.
	Capacity map[string]int
	// MinCapacity is the number of instances that must remain outside the
	// shifted zone; 0 means no check.
	MinCapacity int
}

// Store persists shifts. It is deliberately small: the Manager keeps the
// working set in memory and only needs to write each change and reload all.
type Store interface {
	// SaveShift inserts or replaces the shift with s.ID; it must be durable
	// when it returns nil.
	SaveShift(ctx context.Context, s Shift) error
	// LoadShifts returns every stored shift, in any order.
	LoadShifts(ctx context.Context) ([]Shift, error)
}

// SinceStore is a Store that numbers every save (a version that only grows,
// in commit order) and reads what was saved after a version: a follower
// then reads only the shifts that changed (Manager.Follow).
type SinceStore interface {
	Store
	// LoadShiftsSince returns the shifts saved under a version above after,
	// and the highest version among them (after when none).
	LoadShiftsSince(ctx context.Context, after uint64) ([]Shift, uint64, error)
}

// StartRequest asks for a new shift.
type StartRequest struct {
	Resource  string
	AwayFrom  string
	ExpiresIn time.Duration
	Comment   string
	StartedBy string
	Reason    string
	Origin    Origin // "" means Manual
}

// UpdateRequest changes an active shift; nil fields are left alone.
type UpdateRequest struct {
	ExpiresIn *time.Duration // new expiry = now + ExpiresIn
	Comment   *string        // replaces the comment
	By        string
}

// ListFilter selects shifts; empty fields match everything.
type ListFilter struct {
	Resource string
	Status   Status
}

// Manager owns the shifts of a set of resources. Safe for concurrent use.
//
// Writes of one resource are ordered (begin/end: one in flight at a time,
// so the Store sees them in the order memory does); writes of different
// resources, and every read, go on while one waits on the Store.
type Manager struct {
	mu        sync.Mutex
	idle      *sync.Cond      // signalled when a resource's write ends
	busy      map[string]bool // resources with a write in flight
	resources map[string]Resource
	store     Store
	ids       func() string
	shifts    map[string]Shift
	// active holds the ids of the shifts in shifts whose status is Active:
	// the few that Active and Expire look at, every tick and every
	// resource, among a history that only grows (keep maintains it).
	active map[string]struct{}
	// unsaved holds ids whose latest change the store refused during Expire;
	// they are retried on the next operation. Losing one is harmless: an
	// expiry is recomputed from ExpiresAt when the shift is reloaded.
	unsaved map[string]bool
	// unreported holds shifts expired as a side effect of Start/Update/Cancel,
	// so that Expire still reports each expiry exactly once.
	unreported []Shift
	// owns, when set, says which resources' shifts this manager may change
	// on its own (expire): a replica that shares the resources with others
	// expires only the shifts of those it leads. nil: all.
	owns func(resource string) bool
	// seen is the store version Follow has read up to (SinceStore); 0:
	// its next read is of everything.
	seen uint64
}

// NewManager validates the resources and loads the store's shifts, so a
// restarted service finds the shifts it had. ids generates shift ids; nil
// means random ids like "gzs-1a2b3c4d5e6f".
func NewManager(resources []Resource, store Store, ids func() string) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("shift: store is nil: %w", ErrInvalid)
	}
	if ids == nil {
		ids = NewID
	}
	m := &Manager{
		resources: make(map[string]Resource, len(resources)),
		store:     store,
		ids:       ids,
		shifts:    make(map[string]Shift),
		active:    make(map[string]struct{}),
		unsaved:   make(map[string]bool),
		busy:      make(map[string]bool),
	}
	m.idle = sync.NewCond(&m.mu)
	for _, r := range resources {
		if err := checkResource(r, m.resources); err != nil {
			return nil, err
		}
		r.Zones = slices.Clone(r.Zones)
		cp := make(map[string]int, len(r.Capacity))
		for z, n := range r.Capacity {
			cp[z] = n
		}
		r.Capacity = cp
		m.resources[r.Name] = r
	}
	loaded, err := store.LoadShifts(context.Background())
	if err != nil {
		return nil, fmt.Errorf("shift: load shifts: %w", err)
	}
	// Shifts of resources no longer configured are kept: they are history, and
	// an active one can still be canceled.
	for _, s := range loaded {
		m.keep(s.normalized())
	}
	return m, nil
}

func checkResource(r Resource, seen map[string]Resource) error {
	if r.Name == "" {
		return fmt.Errorf("resource: name is empty: %w", ErrInvalid)
	}
	if _, dup := seen[r.Name]; dup {
		return fmt.Errorf("resource %s: defined twice: %w", r.Name, ErrInvalid)
	}
	if len(r.Zones) == 0 {
		return fmt.Errorf("resource %s: no zones: %w", r.Name, ErrInvalid)
	}
	for i, z := range r.Zones {
		if z == "" || slices.Contains(r.Zones[:i], z) {
			return fmt.Errorf("resource %s: zone %q is empty or repeated: %w", r.Name, z, ErrInvalid)
		}
	}
	for z, n := range r.Capacity {
		if !slices.Contains(r.Zones, z) || n < 0 {
			return fmt.Errorf("resource %s: capacity %s=%d is for an unknown zone or negative: %w", r.Name, z, n, ErrInvalid)
		}
	}
	if r.MinCapacity < 0 {
		return fmt.Errorf("resource %s: min_capacity %d is negative: %w", r.Name, r.MinCapacity, ErrInvalid)
	}
	return nil
}

// NewID returns a random shift id such as "gzs-1a2b3c4d5e6f".
func NewID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return "gzs-" + hex.EncodeToString(b[:])
}

// Start starts a shift away from req.AwayFrom.
func (m *Manager) Start(now time.Time, req StartRequest) (Shift, error) {
	now = now.UTC()
	if req.Origin == "" {
		req.Origin = Manual
	}
	if err := checkExpiresIn(req.ExpiresIn); err != nil {
		return Shift{}, err
	}
	if err := checkComment(req.Comment); err != nil {
		return Shift{}, err
	}
	switch req.Origin {
	case Manual, Auto, Practice:
	default:
		return Shift{}, fmt.Errorf("origin: %q is not manual, auto or practice: %w", req.Origin, ErrInvalid)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.resources[req.Resource]
	if !ok {
		return Shift{}, fmt.Errorf("resource: %q is not configured: %w", req.Resource, ErrNotFound)
	}
	m.begin(r.Name)
	defer m.end(r.Name)
	if !slices.Contains(r.Zones, req.AwayFrom) {
		return Shift{}, fmt.Errorf("away_from: zone %q is not a zone of %s (%s): %w",
			req.AwayFrom, r.Name, strings.Join(r.Zones, ", "), ErrInvalid)
	}
	// A shift past its expiry no longer blocks a new one.
	if err := m.expireLocked(now, r.Name); err != nil {
		return Shift{}, err
	}
	if cur, ok := m.activeLocked(r.Name); ok {
		// One zone at a time: shifting a second zone could leave no healthy
		// capacity, and shifting the same zone again would hide the first.
		return Shift{}, fmt.Errorf("resource %s: shift %s away from %s is already active (expires %s): %w",
			r.Name, cur.ID, cur.AwayFrom, cur.ExpiresAt.Format(time.RFC3339), ErrConflict)
	}
	if len(r.Zones) < 2 {
		return Shift{}, fmt.Errorf("resource %s: no other zone to take the traffic of %s: %w", r.Name, req.AwayFrom, ErrCapacity)
	}
	if r.MinCapacity > 0 {
		rest := 0
		for _, z := range r.Zones {
			if z != req.AwayFrom {
				rest += r.Capacity[z]
			}
		}
		if rest < r.MinCapacity {
			return Shift{}, fmt.Errorf("resource %s: shifting away from %s leaves %d instances in the other zones, below min_capacity %d: %w",
				r.Name, req.AwayFrom, rest, r.MinCapacity, ErrCapacity)
		}
	}
	id := m.ids()
	if _, dup := m.shifts[id]; dup || id == "" {
		return Shift{}, fmt.Errorf("shift id %q is empty or already used: %w", id, ErrConflict)
	}
	s := Shift{
		ID:        id,
		Resource:  r.Name,
		AwayFrom:  req.AwayFrom,
		Status:    Active,
		Origin:    req.Origin,
		Comment:   req.Comment,
		StartedBy: req.StartedBy,
		Reason:    req.Reason,
		StartedAt: now,
		ExpiresAt: now.Add(req.ExpiresIn),
		UpdatedAt: now,
	}
	if err := m.save(s); err != nil {
		return Shift{}, err
	}
	return s.normalized(), nil
}

// Update changes an active shift's expiry and/or comment.
func (m *Manager) Update(now time.Time, id string, req UpdateRequest) (Shift, error) {
	now = now.UTC()
	if req.ExpiresIn == nil && req.Comment == nil {
		return Shift{}, fmt.Errorf("shift %s: nothing to update (expires_in and comment both unset): %w", id, ErrInvalid)
	}
	if req.ExpiresIn != nil {
		if err := checkExpiresIn(*req.ExpiresIn); err != nil {
			return Shift{}, err
		}
	}
	if req.Comment != nil {
		if err := checkComment(*req.Comment); err != nil {
			return Shift{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.end(m.beginShift(id))
	s, err := m.activeByID(now, id)
	if err != nil {
		return Shift{}, err
	}
	if err := ownShift(s); err != nil {
		return Shift{}, err
	}
	if req.ExpiresIn != nil {
		s.ExpiresAt = now.Add(*req.ExpiresIn)
	}
	if req.Comment != nil {
		s.Comment = *req.Comment
	}
	s.UpdatedAt, s.UpdatedBy = now, req.By
	if err := m.save(s); err != nil {
		return Shift{}, err
	}
	return s.normalized(), nil
}

// Cancel ends an active shift now.
func (m *Manager) Cancel(now time.Time, id, by string) (Shift, error) {
	now = now.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.end(m.beginShift(id))
	s, err := m.activeByID(now, id)
	if err != nil {
		return Shift{}, err
	}
	if err := ownShift(s); err != nil {
		return Shift{}, err
	}
	end := now
	s.Status, s.EndedAt, s.EndedBy, s.UpdatedAt = Canceled, &end, by, now
	if err := m.save(s); err != nil {
		return Shift{}, err
	}
	return s.normalized(), nil
}

// ownShift refuses changes to a shift grayzone did not start.
func ownShift(s Shift) error {
	if s.Origin == External {
		return fmt.Errorf("shift %s was started outside grayzone (%s): grayzone never changes or ends it; do it where it was started: %w",
			s.ID, s.StartedBy, ErrConflict)
	}
	return nil
}

// Link records the ARC zonal shift that carries shift id.
func (m *Manager) Link(id, arcID string) (Shift, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.end(m.beginShift(id))
	s, ok := m.shifts[id]
	if !ok {
		return Shift{}, fmt.Errorf("shift %q: %w", id, ErrNotFound)
	}
	if s.ARCZonalShiftID == arcID {
		return s.normalized(), nil
	}
	s.ARCZonalShiftID = arcID
	if err := m.save(s); err != nil {
		return Shift{}, err
	}
	return s.normalized(), nil
}

// Observe records a shift started outside grayzone (Origin External), or
// its latest state: it is a fact reported by the front door, so it is not
// checked against the one-active-shift rule that guards grayzone's own.
// changed reports whether anything was new.
func (m *Manager) Observe(now time.Time, s Shift) (out Shift, changed bool, err error) {
	if s.Origin != External || s.ID == "" {
		return Shift{}, false, fmt.Errorf("shift %q: only external shifts with an id are observed: %w", s.ID, ErrInvalid)
	}
	s.UpdatedAt = now
	s = s.normalized()
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.end(m.beginShift(s.ID, s.Resource))
	if old, ok := m.shifts[s.ID]; ok {
		if old.Origin != External {
			return Shift{}, false, fmt.Errorf("shift %s is grayzone's own: %w", s.ID, ErrConflict)
		}
		s.UpdatedAt = old.UpdatedAt
		if sameShift(old, s) {
			return old.normalized(), false, nil
		}
		s.UpdatedAt = now.UTC()
	}
	if err := m.save(s); err != nil {
		return Shift{}, false, err
	}
	return s, true, nil
}

// sameShift compares two shifts field by field (EndedAt by value).
func sameShift(a, b Shift) bool {
	ae, be := a.EndedAt, b.EndedAt
	a.EndedAt, b.EndedAt = nil, nil
	if a != b {
		return false
	}
	return (ae == nil) == (be == nil) && (ae == nil || ae.Equal(*be))
}

// EndOutside records that an active shift ended outside grayzone's own
// calls (cancelled or expired in ARC): status is Canceled or Expired, at is
// when, by says who or why.
func (m *Manager) EndOutside(id string, status Status, at time.Time, by string) (Shift, error) {
	if status != Canceled && status != Expired {
		return Shift{}, fmt.Errorf("shift %s: status %s is not an end: %w", id, status, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.end(m.beginShift(id))
	s, ok := m.shifts[id]
	if !ok {
		return Shift{}, fmt.Errorf("shift %q: %w", id, ErrNotFound)
	}
	if s.Status != Active {
		return s.normalized(), nil
	}
	at = at.UTC()
	s.Status, s.EndedAt, s.EndedBy, s.UpdatedAt = status, &at, by, at
	if err := m.save(s); err != nil {
		return Shift{}, err
	}
	return s.normalized(), nil
}

// Expire marks every active shift whose expiry is at or before now EXPIRED
// and returns them (including any that Start, Update or Cancel found expired
// since the last call), oldest expiry first. EndedAt is the shift's ExpiresAt,
// not now: an expiry that passed while the service was down happened at its
// time. A store failure does not stop the expiry; the write is retried on the
// next operation (and, if the process dies first, recomputed on reload).
func (m *Manager) Expire(now time.Time) []Shift {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireInMemory(now.UTC())
	// Written one resource at a time, each in its turn among its writers.
	var pending []string
	for id := range m.unsaved {
		if r := m.shifts[id].Resource; !slices.Contains(pending, r) {
			pending = append(pending, r)
		}
	}
	for _, r := range pending {
		m.begin(r)
		_ = m.flush(r)
		m.end(r)
	}
	out := m.unreported
	m.unreported = nil
	slices.SortFunc(out, func(a, b Shift) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	for i := range out {
		out[i] = out[i].normalized()
	}
	return out
}

// expireLocked expires overdue shifts in memory, queues them for Expire, and
// writes resource's (and any earlier unsaved ones of it) to the store; the
// caller has claimed resource. The in-memory change stands even when the
// write fails, since expiry is a fact of time.
func (m *Manager) expireLocked(now time.Time, resource string) error {
	m.expireInMemory(now)
	return m.flush(resource)
}

// expireInMemory marks overdue shifts expired and queues them to be written
// and reported.
func (m *Manager) expireInMemory(now time.Time) {
	for id := range m.active {
		s := m.shifts[id]
		if m.owns != nil && !m.owns(s.Resource) {
			continue // another replica leads it, and expires it
		}
		if s.Status == Active && !s.ExpiresAt.After(now) {
			end := s.ExpiresAt
			s.Status, s.EndedAt, s.UpdatedAt = Expired, &end, end
			m.keep(s)
			m.unsaved[id] = true
			m.unreported = append(m.unreported, s)
		}
	}
}

// flush writes resource's unsaved shifts to the store, with the lock
// released; the caller has claimed resource, so nothing changes them
// meanwhile.
func (m *Manager) flush(resource string) error {
	var todo []Shift
	for id := range m.unsaved {
		if s := m.shifts[id]; s.Resource == resource {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	m.mu.Unlock()
	var errs []error
	var saved []string
	for _, s := range todo {
		if err := m.store.SaveShift(context.Background(), s); err != nil {
			errs = append(errs, fmt.Errorf("shift %s: save: %w", s.ID, err))
			continue
		}
		saved = append(saved, s.ID)
	}
	m.mu.Lock()
	for _, id := range saved {
		delete(m.unsaved, id)
	}
	return errors.Join(errs...)
}

// begin waits until no write of resource is in flight, then claims it for
// the caller's; end releases it. Both are called with m.mu held (Wait
// releases it while waiting).
func (m *Manager) begin(resource string) {
	for m.busy[resource] {
		m.idle.Wait()
	}
	m.busy[resource] = true
}

func (m *Manager) end(resource string) {
	delete(m.busy, resource)
	m.idle.Broadcast()
}

// beginShift claims the resource of shift id (or, for a shift not known
// yet, of orElse) and returns it, for end.
func (m *Manager) beginShift(id string, orElse ...string) string {
	for {
		r := m.shifts[id].Resource
		if r == "" && len(orElse) > 0 {
			r = orElse[0]
		}
		m.begin(r)
		if m.shifts[id].Resource == r || m.shifts[id].Resource == "" {
			return r
		}
		m.end(r) // the shift changed hands while this waited (a reload): claim again
	}
}

// activeByID returns the shift if it is active at now; the caller has
// claimed its resource.
func (m *Manager) activeByID(now time.Time, id string) (Shift, error) {
	if err := m.expireLocked(now, m.shifts[id].Resource); err != nil {
		return Shift{}, err
	}
	s, ok := m.shifts[id]
	if !ok {
		return Shift{}, fmt.Errorf("shift %q: %w", id, ErrNotFound)
	}
	if s.Status != Active {
		return Shift{}, fmt.Errorf("shift %s: is %s, not ACTIVE: %w", id, s.Status, ErrConflict)
	}
	return s, nil
}

// save writes s through the store with the lock released, then (only then)
// keeps it in memory: a write the store refuses changes nothing. The caller
// has claimed s's resource (begin), so no other write of it interleaves.
func (m *Manager) save(s Shift) error {
	m.mu.Unlock()
	err := m.store.SaveShift(context.Background(), s)
	m.mu.Lock()
	if err != nil {
		return fmt.Errorf("shift %s: save: %w", s.ID, err)
	}
	m.keep(s)
	delete(m.unsaved, s.ID)
	return nil
}

// keep puts s in memory, in active while its status is Active.
func (m *Manager) keep(s Shift) {
	m.shifts[s.ID] = s
	if s.Status == Active {
		m.active[s.ID] = struct{}{}
	} else {
		delete(m.active, s.ID)
	}
}

// Get returns one shift.
func (m *Manager) Get(id string) (Shift, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.shifts[id]
	if !ok {
		return Shift{}, fmt.Errorf("shift %q: %w", id, ErrNotFound)
	}
	return s.normalized(), nil
}

// List returns the shifts matching f, newest (latest StartedAt) first.
func (m *Manager) List(f ListFilter) []Shift {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Shift
	for _, s := range m.shifts {
		if (f.Resource == "" || s.Resource == f.Resource) && (f.Status == "" || s.Status == f.Status) {
			out = append(out, s.normalized())
		}
	}
	slices.SortFunc(out, newestFirst)
	return out
}

// Active returns the resource's active shift, if any. Status changes only in
// Expire, Cancel and the like, so a shift past its expiry is returned until
// Expire runs; call Expire first for an exact answer.
func (m *Manager) Active(resource string) (Shift, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.activeLocked(resource)
	return s.normalized(), ok
}

// activeLocked returns the newest active shift of the resource. There is at
// most one unless an expiry failed to reach the store before a restart.
func (m *Manager) activeLocked(resource string) (Shift, bool) {
	var best Shift
	found := false
	for id := range m.active {
		s := m.shifts[id]
		if s.Resource == resource && s.Status == Active && (!found || newestFirst(s, best) < 0) {
			best, found = s, true
		}
	}
	return best, found
}

func newestFirst(a, b Shift) int {
	if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

func checkExpiresIn(d time.Duration) error {
	if d < MinExpiresIn || d > MaxExpiresIn {
		return fmt.Errorf("expires_in: %s is out of range (1m..72h): %w", duration.Format(d), ErrInvalid)
	}
	return nil
}

func checkComment(c string) error {
	if n := utf8.RuneCountInString(c); n > MaxCommentLength {
		return fmt.Errorf("comment: %d characters is over the limit of %d: %w", n, MaxCommentLength, ErrInvalid)
	}
	return nil
}

// MemoryStore is an in-memory Store for tests and dry runs.
type MemoryStore struct {
	mu     sync.Mutex
	shifts map[string]Shift
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{shifts: make(map[string]Shift)} }

// SaveShift implements Store.
func (s *MemoryStore) SaveShift(ctx context.Context, sh Shift) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shifts == nil {
		s.shifts = make(map[string]Shift)
	}
	s.shifts[sh.ID] = sh.normalized()
	return nil
}

// LoadShifts implements Store.
func (s *MemoryStore) LoadShifts(ctx context.Context) ([]Shift, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Shift, 0, len(s.shifts))
	for _, sh := range s.shifts {
		out = append(out, sh.normalized())
	}
	return out, nil
}
