package config

import (
	"strings"
	"testing"
	"time"
)

// The embedded front door's connection cap and backend response timeout.
func TestFrontDoorConnectionCapAndResponseTimeout(t *testing.T) {
	doc := strings.Replace(base, "      type: embedded\n", "      type: embedded\n      max_connections: 500\n      response_timeout: 15s\n", 1)
	c, err := Parse("serve.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Resources[0].FrontDoor.Limits; l.MaxConnections != 500 || l.ResponseTimeout != 15*time.Second {
		t.Fatalf("limits: %+v", l)
	}
	for _, bad := range []struct{ key, want string }{
		{"max_connections: 0", "max_connections: 0 is out of range"},
		{"response_timeout: 10ms", "response_timeout:"},
	} {
		doc := strings.Replace(base, "      type: embedded\n", "      type: embedded\n      "+bad.key+"\n", 1)
		if _, err := Parse("serve.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got %v, want %q", bad.key, err, bad.want)
		}
	}
}
