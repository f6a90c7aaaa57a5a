package config

import (
	"regexp"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// commandEnv reads control_plane.env (type command): the names of serve's
// environment variables its commands get. Nothing else of serve's
// environment reaches them (AWS credentials included), besides the
// GRAYZONE_ variables that describe the action.
func (p *parser) commandEnv(m *yamlfield.Mapping, cp *ControlPlane) {
	f, ok := m.Get("env")
	if !ok {
		return
	}
	if cp.Type != ControlPlaneCommand {
		p.Errorf(f, "only for type %s", yamlfield.Quote(ControlPlaneCommand))
		return
	}
	items, ok := p.List(f, "a list of environment variable names, e.g. [PATH, HOME, AWS_PROFILE]")
	if !ok {
		return
	}
	cp.Env = []string{}
	for _, it := range items {
		v, ok := p.Str(it)
		if !ok {
			continue
		}
		if !envNameRe.MatchString(v) {
			p.Errorf(it, "%s is not an environment variable name (name it, not NAME=value)", yamlfield.Quote(v))
			continue
		}
		cp.Env = append(cp.Env, v)
	}
}
