package lab

import (
	"context"
	"testing"

	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/server/resource"
)

// The lab runs grayzone serve's signal path: customer requests are counted
// by the front door's recorder and reach the engine through the ingest gate,
// as do the canaries' calls. A lab whose front door records nothing would
// say nothing about serve.
func TestLabFrontDoorRecordsThroughTheGate(t *testing.T) {
	sc, err := scenario.Builtin("smoke")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Scenario: sc, Mode: ModeSim}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	c, run, err := simulate(context.Background(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, st := range c.in.Gate.Stats() {
		got[st.Source] = st.Requests
	}
	if got[resource.SourceFrontDoor] == 0 || got[resource.SourceCanary] == 0 {
		t.Fatalf("requests through the gate by source %v: want the front door's and the canaries'", got)
	}
	if total := run.Requests.Total; got[resource.SourceFrontDoor] < uint64(total)/2 {
		t.Errorf("the front door recorded %d requests of %d customers'", got[resource.SourceFrontDoor], total)
	}
	if len(run.Detections) == 0 {
		t.Errorf("smoke: nothing detected on the front door's counts")
	}
}
