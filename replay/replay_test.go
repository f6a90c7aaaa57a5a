package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/emf"
)

var t0 = time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC)

// incident is an EMF log as the workshop's application writes it: 20
// requests a second per instance; from 60s to 150s both of z2's instances
// fail a third of their requests.
func incident() string {
	var b strings.Builder
	for ms := 0; ms < 200_000; ms += 50 {
		at := t0.Add(time.Duration(ms) * time.Millisecond)
		for i, z := range []string{"z1", "z1", "z2", "z2", "z3", "z3"} {
			fault := 0
			if z == "z2" && ms >= 60_000 && ms < 150_000 && (ms/50+i)%3 == 0 {
				fault = 1
			}
			fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ws","Dimensions":[["AZ-ID","Operation"]],"Metrics":[{"Name":"SuccessLatency","Unit":"Milliseconds"},{"Name":"Success","Unit":"Count"},{"Name":"Fault","Unit":"Count"}]}]},"AZ-ID":%q,"InstanceId":"i-%d","Operation":"ride","SuccessLatency":%d,"Success":%d,"Fault":%d}`+"\n",
				at.UnixMilli(), z, i, 5+i, 1-fault, fault)
		}
	}
	return b.String()
}

func resource(t *testing.T) *config.Resource {
	c, err := config.Load("testdata/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &c.Resources[0]
}

func replayJSON(t *testing.T, in Input, rc *config.Resource, profile string) []byte {
	t.Helper()
	dc := rc.DetectConfig()
	if profile != "" {
		dc.Profile = profile
	}
	r, err := Run(context.Background(), in, Options{Detect: dc, Runbook: rc.RunbookPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplayEMFIncident(t *testing.T) {
	rc := resource(t)
	log := incident()
	in, err := ReadEMF(strings.NewReader(log), "incident.log", emf.WorkshopNames(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := replayJSON(t, in, rc, "")
	var r struct {
		Detections []struct {
			Alarm string  `json:"alarm"`
			At    float64 `json:"at_s"`
			Why   string  `json:"why"`
		} `json:"detections"`
		Shifts []struct {
			AwayFrom string   `json:"away_from"`
			Start    float64  `json:"start_s"`
			End      *float64 `json:"end_s"`
		} `json:"shifts"`
	}
	if err := json.Unmarshal(got, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Detections) != 1 || r.Detections[0].Alarm != "z2-isolated-impact" || r.Detections[0].At < 60 || r.Detections[0].At > 75 || r.Detections[0].Why == "" {
		t.Fatalf("detections %+v, want z2 soon after 60s with an explanation", r.Detections)
	}
	// The log has no zonal canaries, whose health ends a shift, so the shift
	// is still in force at the end, as it would be in serve.
	if len(r.Shifts) != 1 || r.Shifts[0].AwayFrom != "z2" || r.Shifts[0].Start < r.Detections[0].At || (r.Shifts[0].End != nil && *r.Shifts[0].End < 150) {
		t.Fatalf("shifts %+v, want one away from z2 from its detection on", r.Shifts)
	}
	// Deterministic: the same input, the same report, byte for byte.
	in2, _ := ReadEMF(strings.NewReader(log), "incident.log", emf.WorkshopNames(), time.Second)
	if again := replayJSON(t, in2, rc, ""); !bytes.Equal(got, again) {
		t.Error("two replays of one input differ")
	}

	// The batch format serve records: the same records decide the same.
	var lines strings.Builder
	for i := 0; i < len(in.Aggregates); i += 100 {
		var w []batch.AggregateIn
		for _, a := range in.Aggregates[i:min(i+100, len(in.Aggregates))] {
			w = append(w, batch.EncodeAggregate(a))
		}
		line, _ := json.Marshal(map[string]any{"resource": "web", "aggregates": w})
		lines.Write(append(line, '\n'))
	}
	bin, err := ReadBatches(strings.NewReader(lines.String()), "incident.log", "web")
	if err != nil {
		t.Fatal(err)
	}
	viaBatch := replayJSON(t, bin, rc, "")
	if !bytes.Equal(bytes.ReplaceAll(viaBatch, []byte(`"replay of incident.log"`), nil), bytes.ReplaceAll(got, []byte(`"replay of incident.log"`), nil)) {
		t.Error("the batch format decided differently from the EMF log it was made from")
	}

	// Another detector over the same incident.
	if cw := replayJSON(t, in, rc, "cloudwatch"); !strings.Contains(string(cw), `"detector": "cloudwatch"`) {
		t.Error("--detector override not applied")
	}
}

func TestReadErrorsNameTheLine(t *testing.T) {
	_, err := ReadEMF(strings.NewReader(incident()[:10]+"\n"), "x.log", emf.WorkshopNames(), time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "x.log:1: not a JSON object") {
		t.Errorf("err = %v", err)
	}
	_, err = ReadBatches(strings.NewReader(`{"resource":"web","aggregates":[{"zone":"z1"}]}`+"\n"), "b.jsonl", "web")
	if err == nil || !strings.HasPrefix(err.Error(), "b.jsonl:1: aggregates[0].source: is required") {
		t.Errorf("err = %v", err)
	}
}
