package lab

import (
	"fmt"

	"github.com/grayzone/grayzone/actuator/haproxy"
)

// The lab's data planes (--frontdoor) and control planes (--control-plane).
// Every one of them is driven through the same runbook and controller; only
// the adapter at the end differs.
const (
	FrontDoorEmbedded = "embedded" // grayzone's own proxy, set directly
	FrontDoorHAProxy  = "haproxy"  // a real HAProxy, driven through its runtime API (haproxy.go)
	FrontDoorARC      = "arc"      // ARC zonal shifts through the AWS SDK, against the stand-in (aws.go)

	ControlPlaneGroup = "instancegroup" // the lab's instance group, set directly
	ControlPlaneASG   = "autoscaling"   // Auto Scaling subnets through the AWS SDK, against the stand-in (aws.go)
)

// validatePlanes checks Options.FrontDoor and Options.ControlPlane and fills
// in their defaults.
func (o *Options) validatePlanes() error {
	switch o.FrontDoor {
	case "", FrontDoorEmbedded:
		o.FrontDoor = FrontDoorEmbedded
	case FrontDoorARC:
		if o.Scenario != nil && len(o.Scenario.Policy.Ramp) > 0 {
			return fmt.Errorf("%w: --frontdoor arc: scenario %s asks for policy.ramp, but ARC shifts all or nothing (a gradual return needs --frontdoor embedded or haproxy)", ErrUsage, o.Scenario.Name)
		}
	case FrontDoorHAProxy:
		if o.Mode != ModeReal {
			return fmt.Errorf("%w: --frontdoor haproxy needs --mode real", ErrUsage)
		}
		if _, err := haproxy.Binary(); err != nil {
			return fmt.Errorf("%w: --frontdoor haproxy: %v", ErrUsage, err)
		}
	default:
		return fmt.Errorf("%w: --frontdoor %q: want %s, %s or %s", ErrUsage, o.FrontDoor, FrontDoorEmbedded, FrontDoorHAProxy, FrontDoorARC)
	}
	switch o.ControlPlane {
	case "", ControlPlaneGroup:
		o.ControlPlane = ControlPlaneGroup
	case ControlPlaneASG:
	default:
		return fmt.Errorf("%w: --control-plane %q: want %s or %s", ErrUsage, o.ControlPlane, ControlPlaneGroup, ControlPlaneASG)
	}
	return nil
}
