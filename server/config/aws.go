package config

import (
	"regexp"
	"slices"

	"github.com/grayzone/grayzone/internal/yamlfield"
)

const (
	// FrontDoorARC is a load balancer shifted by Route 53 ARC zonal shift.
	FrontDoorARC = "arc"
	// ControlPlaneAutoScaling is EC2 Auto Scaling groups.
	ControlPlaneAutoScaling = "autoscaling"
)

var (
	// lbARNRe matches the ARN of an Application or Network Load Balancer,
	// the resources ARC zonal shift manages.
	lbARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:loadbalancer/(app|net)/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}$`)
	// groupRe matches an Auto Scaling group name.
	groupRe = regexp.MustCompile(`^[\x20-\x7e]{1,255}$`)
)

// arcFrontDoor reads a front door of type arc: the managed resource's ARN
// and nothing of the embedded proxy's. Credentials, region and endpoint are
// the AWS SDK's (environment, profile, instance role), never configuration.
func (p *parser) arcFrontDoor(m *yamlfield.Mapping, fd *FrontDoor) {
	if rf, ok := p.Require(m, "resource_identifier"); ok {
		if v, ok := p.Str(rf); ok {
			if !lbARNRe.MatchString(v) {
				p.Errorf(rf, "%s is not the ARN of an Application or Network Load Balancer (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID)", yamlfield.Quote(v))
			}
			fd.ResourceIdentifier = v
		}
	}
}

// autoScalingGroups reads control_plane.groups (type autoscaling only).
func (p *parser) autoScalingGroups(m *yamlfield.Mapping, cp *ControlPlane) {
	gf, has := m.Get("groups")
	if cp.Type != ControlPlaneAutoScaling {
		if has {
			p.Errorf(gf, "only for type %s", yamlfield.Quote(ControlPlaneAutoScaling))
		}
		return
	}
	if !has {
		p.Require(m, "groups")
		return
	}
	items, ok := p.List(gf, "a list of Auto Scaling group names")
	if !ok {
		return
	}
	if len(items) == 0 {
		p.Errorf(gf, "no groups")
		return
	}
	for _, it := range items {
		v, ok := p.Str(it)
		switch {
		case !ok:
		case !groupRe.MatchString(v):
			p.Errorf(it, "%s is not an Auto Scaling group name (1 to 255 printable characters)", yamlfield.Quote(v))
		case slices.Contains(cp.Groups, v):
			p.Errorf(it, "duplicate group %s", yamlfield.Quote(v))
		default:
			cp.Groups = append(cp.Groups, v)
		}
	}
}
