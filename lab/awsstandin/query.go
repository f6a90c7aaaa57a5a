package awsstandin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	autoScalingVersion = "2011-01-01"
	ec2Version         = "2016-11-15"
	autoScalingXMLNS   = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
	ec2XMLNS           = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// processNames are Auto Scaling's scaling processes.
var processNames = []string{"Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
	"HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions"}

// Subnet is a VPC subnet in one Availability Zone.
type Subnet struct {
	ID, VPC, AZ, AZID, CIDR string
}

// AddSubnet registers a subnet.
func (s *Server) AddSubnet(sn Subnet) {
	s.mu.Lock()
	s.subnets[sn.ID] = sn
	s.mu.Unlock()
}

// GroupSpec creates an Auto Scaling group.
type GroupSpec struct {
	Name                      string
	MinSize, MaxSize, Desired int
	Subnets                   []string
	// ZonalShiftEnabled is AvailabilityZoneImpairmentPolicy.ZonalShiftEnabled:
	// the group follows ARC zonal shifts by itself.
	ZonalShiftEnabled bool
}

type group struct {
	spec      GroupSpec
	subnets   []string
	suspended map[string]bool
	instances []instance
	created   time.Time
}

type instance struct{ id, azID string }

// GroupState is a group as the server holds it.
type GroupState struct {
	Subnets   []string
	PerZone   map[string]int // in-service instances per AZ ID
	Suspended []string
}

// AddGroup creates a group and launches its desired capacity.
func (s *Server) AddGroup(g GroupSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gr := &group{spec: g, subnets: slices.Clone(g.Subnets), suspended: map[string]bool{}, created: s.o.Clock.Now()}
	s.groups[g.Name] = gr
	s.rebalanceLocked(gr)
}

// Group returns a group's state.
func (s *Server) Group(name string) (GroupState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	if g == nil {
		return GroupState{}, false
	}
	st := GroupState{Subnets: slices.Clone(g.subnets), PerZone: map[string]int{}}
	for _, in := range g.instances {
		st.PerZone[in.azID]++
	}
	for p := range g.suspended {
		st.Suspended = append(st.Suspended, p)
	}
	sort.Strings(st.Suspended)
	return st, true
}

// ZoneIDsOf returns the AZ IDs of the group's subnets.
func (s *Server) zoneIDsLocked(g *group) []string {
	var out []string
	for _, id := range g.subnets {
		if z := s.subnets[id].AZID; z != "" && !slices.Contains(out, z) {
			out = append(out, z)
		}
	}
	return out
}

// rebalanceLocked does what Auto Scaling does after a change: keep the
// desired capacity, launching before terminating; with AZRebalance running,
// move instances out of zones the group left and even out the zones.
func (s *Server) rebalanceLocked(g *group) {
	zones := s.zoneIDsLocked(g)
	if len(zones) == 0 {
		return
	}
	count := func() map[string]int {
		c := map[string]int{}
		for _, z := range zones {
			c[z] = 0
		}
		for _, in := range g.instances {
			c[in.azID]++
		}
		return c
	}
	least := func(c map[string]int) string {
		best := zones[0]
		for _, z := range zones {
			if c[z] < c[best] {
				best = z
			}
		}
		return best
	}
	most := func(c map[string]int) string {
		best := ""
		for z, n := range c {
			if best == "" || n > c[best] || (n == c[best] && z > best) {
				best = z
			}
		}
		return best
	}
	launch := func(z string) { g.instances = append(g.instances, instance{id: "i-" + randomHex(8), azID: z}) }
	terminate := func(z string) {
		for i, in := range g.instances {
			if in.azID == z {
				g.instances = slices.Delete(g.instances, i, i+1)
				return
			}
		}
	}
	rebalance := !g.suspended["AZRebalance"]
	if rebalance {
		for _, in := range slices.Clone(g.instances) {
			if !slices.Contains(zones, in.azID) {
				launch(least(count()))
				terminate(in.azID)
			}
		}
	}
	for len(g.instances) < g.spec.Desired && !g.suspended["Launch"] {
		launch(least(count()))
	}
	for len(g.instances) > g.spec.Desired && !g.suspended["Terminate"] {
		terminate(most(count()))
	}
	for rebalance {
		c := count()
		hi, lo := most(c), least(c)
		if c[hi]-c[lo] <= 1 || !slices.Contains(zones, hi) {
			break
		}
		launch(lo)
		terminate(hi)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func requestID() string {
	h := randomHex(32)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// members reads a Query list (Prefix.member.1, Prefix.member.2, ...).
func members(v url.Values, prefix, sep string) []string {
	var out []string
	for i := 1; ; i++ {
		x, ok := v[fmt.Sprintf("%s%s%d", prefix, sep, i)]
		if !ok {
			return out
		}
		out = append(out, x[0])
	}
}

type xmlMembers struct {
	Member []string `xml:"member"`
}

type asgXML struct {
	AutoScalingGroupName   string
	AutoScalingGroupARN    string
	MinSize                int
	MaxSize                int
	DesiredCapacity        int
	DefaultCooldown        int
	AvailabilityZones      xmlMembers
	AvailabilityZoneIds    xmlMembers
	HealthCheckType        string
	HealthCheckGracePeriod int
	VPCZoneIdentifier      string
	CreatedTime            string
	Instances              struct {
		Member []instanceXML `xml:"member"`
	}
	SuspendedProcesses struct {
		Member []suspendedXML `xml:"member"`
	}
	AvailabilityZoneImpairmentPolicy struct {
		ZonalShiftEnabled               bool
		ImpairedZoneHealthCheckBehavior string
	}
}

type instanceXML struct {
	InstanceId         string
	AvailabilityZone   string
	AvailabilityZoneId string
	LifecycleState     string
	HealthStatus       string
}

type suspendedXML struct {
	ProcessName      string
	SuspensionReason string
}

func (s *Server) serveAutoScaling(w http.ResponseWriter, r *http.Request, body []byte) {
	v, err := url.ParseQuery(string(body))
	fail := func(status int, code, msg string) {
		writeError(w, AutoScaling, &apiError{status: status, code: code, msg: msg})
	}
	if err != nil || v.Get("Version") != autoScalingVersion {
		fail(400, "InvalidParameterValue", "malformed AWS Query request or wrong Version")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	action := v.Get("Action")
	ok := func(groups []asgXML) {
		type result struct {
			XMLName xml.Name
			Groups  *struct {
				Member []asgXML `xml:"member"`
			} `xml:"AutoScalingGroups,omitempty"`
		}
		type response struct {
			XMLName   xml.Name
			Xmlns     string `xml:"xmlns,attr"`
			Result    result
			RequestID string `xml:"ResponseMetadata>RequestId"`
		}
		res := response{XMLName: xml.Name{Local: action + "Response"}, Xmlns: autoScalingXMLNS, RequestID: requestID(),
			Result: result{XMLName: xml.Name{Local: action + "Result"}}}
		if action == "DescribeAutoScalingGroups" {
			res.Result.Groups = &struct {
				Member []asgXML `xml:"member"`
			}{Member: groups}
		}
		writeXML(w, 200, res)
	}
	groupOf := func() *group {
		name := v.Get("AutoScalingGroupName")
		g := s.groups[name]
		if g == nil {
			fail(400, "ValidationError", "AutoScalingGroup name not found - no such group: "+name)
		}
		return g
	}
	switch action {
	case "DescribeAutoScalingGroups":
		names := members(v, "AutoScalingGroupNames", ".member.")
		if len(names) == 0 {
			for n := range s.groups {
				names = append(names, n)
			}
			sort.Strings(names)
		}
		var out []asgXML
		for _, n := range names {
			g := s.groups[n]
			if g == nil {
				continue // as AWS: unknown names are left out, not an error
			}
			out = append(out, s.groupXMLLocked(g))
		}
		ok(out)
	case "UpdateAutoScalingGroup":
		g := groupOf()
		if g == nil {
			return
		}
		spec := g.spec
		for _, f := range []struct {
			key string
			dst *int
		}{{"MinSize", &spec.MinSize}, {"MaxSize", &spec.MaxSize}, {"DesiredCapacity", &spec.Desired}} {
			if x := v.Get(f.key); x != "" {
				n, err := strconv.Atoi(x)
				if err != nil || n < 0 {
					fail(400, "ValidationError", fmt.Sprintf("%s %q is not a non-negative integer", f.key, x))
					return
				}
				*f.dst = n
			}
		}
		if _, set := v["DesiredCapacity"]; !set {
			spec.Desired = min(max(spec.Desired, spec.MinSize), spec.MaxSize)
		}
		if spec.MinSize > spec.MaxSize || spec.Desired < spec.MinSize || spec.Desired > spec.MaxSize {
			fail(400, "ValidationError", fmt.Sprintf("Desired capacity:%d must be between the specified min size:%d and max size:%d", spec.Desired, spec.MinSize, spec.MaxSize))
			return
		}
		subnets := g.subnets
		if x, set := v["VPCZoneIdentifier"]; set {
			subnets = nil
			for _, id := range strings.Split(x[0], ",") {
				id = strings.TrimSpace(id)
				if id == "" {
					continue
				}
				sn, known := s.subnets[id]
				if !known {
					fail(400, "ValidationError", fmt.Sprintf("The subnet ID '%s' does not exist", id))
					return
				}
				if len(subnets) > 0 && s.subnets[subnets[0]].VPC != sn.VPC {
					fail(400, "ValidationError", "The subnets must all be in the same VPC")
					return
				}
				if !slices.Contains(subnets, id) {
					subnets = append(subnets, id)
				}
			}
			if len(subnets) == 0 {
				fail(400, "ValidationError", "At least one subnet must be given in VPCZoneIdentifier")
				return
			}
		}
		if x := v.Get("AvailabilityZoneImpairmentPolicy.ZonalShiftEnabled"); x != "" {
			spec.ZonalShiftEnabled = x == "true"
		}
		g.spec, g.subnets = spec, subnets
		s.rebalanceLocked(g)
		ok(nil)
	case "SuspendProcesses", "ResumeProcesses":
		g := groupOf()
		if g == nil {
			return
		}
		procs := members(v, "ScalingProcesses", ".member.")
		for _, p := range procs {
			if !slices.Contains(processNames, p) {
				fail(400, "ValidationError", fmt.Sprintf("Process '%s' is not a valid scaling process", p))
				return
			}
		}
		if len(procs) == 0 {
			procs = processNames
		}
		for _, p := range procs {
			if action == "SuspendProcesses" {
				g.suspended[p] = true
			} else {
				delete(g.suspended, p)
			}
		}
		s.rebalanceLocked(g)
		ok(nil)
	default:
		fail(400, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service (the stand-in implements DescribeAutoScalingGroups, UpdateAutoScalingGroup, SuspendProcesses, ResumeProcesses)", action))
	}
}

func (s *Server) groupXMLLocked(g *group) asgXML {
	x := asgXML{AutoScalingGroupName: g.spec.Name, MinSize: g.spec.MinSize, MaxSize: g.spec.MaxSize, DesiredCapacity: g.spec.Desired,
		AutoScalingGroupARN: fmt.Sprintf("arn:aws:autoscaling:%s:123456789012:autoScalingGroup:%s:autoScalingGroupName/%s", s.o.Region, requestID(), g.spec.Name),
		DefaultCooldown:     300, HealthCheckType: "ELB", HealthCheckGracePeriod: 300, VPCZoneIdentifier: strings.Join(g.subnets, ","),
		CreatedTime: g.created.UTC().Format(time.RFC3339)}
	x.AvailabilityZoneImpairmentPolicy.ZonalShiftEnabled = g.spec.ZonalShiftEnabled
	x.AvailabilityZoneImpairmentPolicy.ImpairedZoneHealthCheckBehavior = "IgnoreUnhealthy"
	for _, id := range g.subnets {
		sn := s.subnets[id]
		if !slices.Contains(x.AvailabilityZones.Member, sn.AZ) {
			x.AvailabilityZones.Member = append(x.AvailabilityZones.Member, sn.AZ)
			x.AvailabilityZoneIds.Member = append(x.AvailabilityZoneIds.Member, sn.AZID)
		}
	}
	for _, in := range g.instances {
		x.Instances.Member = append(x.Instances.Member, instanceXML{InstanceId: in.id, AvailabilityZone: s.azName(in.azID), AvailabilityZoneId: in.azID,
			LifecycleState: "InService", HealthStatus: "Healthy"})
	}
	procs := make([]string, 0, len(g.suspended))
	for p := range g.suspended {
		procs = append(procs, p)
	}
	sort.Strings(procs)
	for _, p := range procs {
		x.SuspendedProcesses.Member = append(x.SuspendedProcesses.Member, suspendedXML{ProcessName: p, SuspensionReason: "User suspended"})
	}
	return x
}

func (s *Server) azName(azID string) string {
	for _, sn := range s.subnets {
		if sn.AZID == azID {
			return sn.AZ
		}
	}
	return ""
}

func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, body []byte) {
	v, err := url.ParseQuery(string(body))
	fail := func(status int, code, msg string) {
		writeError(w, EC2, &apiError{status: status, code: code, msg: msg})
	}
	if err != nil || v.Get("Version") != ec2Version {
		fail(400, "InvalidParameterValue", "malformed EC2 Query request or wrong Version")
		return
	}
	if v.Get("Action") != "DescribeSubnets" {
		fail(400, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service (the stand-in implements DescribeSubnets)", v.Get("Action")))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := members(v, "SubnetId", ".")
	var found []Subnet
	if len(ids) == 0 {
		for _, sn := range s.subnets {
			found = append(found, sn)
		}
		sort.Slice(found, func(i, j int) bool { return found[i].ID < found[j].ID })
	}
	for _, id := range ids {
		sn, ok := s.subnets[id]
		if !ok {
			fail(400, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", id))
			return
		}
		found = append(found, sn)
	}
	type item struct {
		SubnetID           string `xml:"subnetId"`
		State              string `xml:"state"`
		VpcID              string `xml:"vpcId"`
		CidrBlock          string `xml:"cidrBlock"`
		AvailabilityZone   string `xml:"availabilityZone"`
		AvailabilityZoneID string `xml:"availabilityZoneId"`
	}
	type resp struct {
		XMLName   xml.Name `xml:"DescribeSubnetsResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Items     []item   `xml:"subnetSet>item"`
	}
	out := resp{Xmlns: ec2XMLNS, RequestID: requestID()}
	for _, sn := range found {
		out.Items = append(out.Items, item{SubnetID: sn.ID, State: "available", VpcID: sn.VPC, CidrBlock: sn.CIDR, AvailabilityZone: sn.AZ, AvailabilityZoneID: sn.AZID})
	}
	writeXML(w, 200, out)
}
