package report

// Scene is what a report's page tells about where the run happened, beyond
// the report itself: for a lab run, its scenario in words (lab/report builds
// it); a replay has none.
type Scene struct {
	Description string
	File        string // where the scenario came from
	Source      string // its text, shown on the page
	// Meta are the setting's facts, e.g. "3 zones × 2 instances", "20 req/s".
	Meta []string
	// Start says how the run starts, in words.
	Start string
	// Faults say, in the order of the report's faults, which zone each hits
	// and what it does.
	Faults []FaultScene
}

// FaultScene is one fault in words.
type FaultScene struct {
	Zone string // the zone it hits; "" for the region or the control plane
	What string // what it does, e.g. "30% packet loss between use2-az1 and the database"
}
