package observation

import "testing"

func TestFromStatus(t *testing.T) {
	for code, want := range map[int]Outcome{
		0: Fault, 200: Success, 204: Success, 301: Success, 304: Success, 399: Success,
		400: Error, 404: Error, 429: Error, 499: Error, 500: Fault, 502: Fault, 503: Fault, 599: Fault,
	} {
		if got := FromStatus(code); got != want {
			t.Errorf("FromStatus(%d) = %s, want %s", code, got, want)
		}
	}
}

func TestOutcomeRoundTrip(t *testing.T) {
	for _, o := range []Outcome{Success, Error, Fault} {
		got, err := ParseOutcome(o.String())
		if err != nil || got != o {
			t.Errorf("ParseOutcome(%q) = %v, %v", o.String(), got, err)
		}
	}
	for _, s := range []string{"", "Success", "FAULT", "ok", "5xx"} {
		if _, err := ParseOutcome(s); err == nil {
			t.Errorf("ParseOutcome(%q) accepted", s)
		}
	}
	if s := Outcome(9).String(); s != "outcome(9)" {
		t.Errorf("unknown outcome prints %q", s)
	}
}

func TestSourceRoundTrip(t *testing.T) {
	for _, s := range []Source{Server, Canary} {
		got, err := ParseSource(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSource(%q) = %v, %v", s.String(), got, err)
		}
	}
	for _, s := range []string{"", "Server", "client", "canaries"} {
		if _, err := ParseSource(s); err == nil {
			t.Errorf("ParseSource(%q) accepted", s)
		}
	}
	if got := Server.String() + "," + Canary.String(); got != "server,canary" {
		t.Errorf("names %q: the API and metrics depend on them", got)
	}
}
