package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAWSExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := c.Resource("web")
	if !ok {
		t.Fatal("no resource web")
	}
	if r.FrontDoor.Type != FrontDoorARC || !strings.HasSuffix(r.FrontDoor.ResourceIdentifier, ":loadbalancer/app/web/0123456789abcdef") ||
		len(r.FrontDoor.Targets) != 0 {
		t.Fatalf("frontdoor %+v", r.FrontDoor)
	}
	if r.ControlPlane.Type != ControlPlaneAutoScaling || strings.Join(r.ControlPlane.Groups, ",") != "web-asg" {
		t.Fatalf("control plane %+v", r.ControlPlane)
	}
}

func TestAWSErrors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := string(data)
	arn := "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"
	for _, tc := range []struct{ name, old, new, want string }{
		{"not an ARN", arn, "my-alb", `:33: resources[0].frontdoor.resource_identifier: "my-alb" is not the ARN of an Application or Network Load Balancer`},
		{"a target group ARN", arn, "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/web/0123456789abcdef", "resources[0].frontdoor.resource_identifier: "},
		{"missing ARN", "      resource_identifier: " + arn, "", ":29: resources[0].frontdoor.resource_identifier: required"},
		{"embedded key with arc", "      type: arc\n", "      type: arc\n      regional: 127.0.0.1:8081\n", `:31: resources[0].frontdoor.regional: not a key of front door type "arc"`},
		{"ARN with embedded", "      type: arc\n", "      type: embedded\n", `resources[0].frontdoor.resource_identifier: not a key of front door type "embedded"`},
		{"groups missing", "      groups: [web-asg]\n", "", "resources[0].control_plane.groups: required"},
		{"groups empty", "groups: [web-asg]", "groups: []", "resources[0].control_plane.groups: no groups"},
		{"duplicate group", "groups: [web-asg]", "groups: [web-asg, web-asg]", `resources[0].control_plane.groups[1]: duplicate group "web-asg"`},
		{"groups for command", "type: autoscaling", "type: none", `resources[0].control_plane.groups: only for type "autoscaling"`},
		{"unknown type", "type: autoscaling", "type: asg", `resources[0].control_plane.type: unknown control plane type "asg" (known: none, command, autoscaling, kubernetes)`},
	} {
		doc := strings.Replace(base, tc.old, tc.new, 1)
		if doc == base {
			t.Fatalf("%s: edit did not apply", tc.name)
		}
		_, err := Parse("aws.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v\nwant it to contain %s", tc.name, err, tc.want)
		}
	}
}
