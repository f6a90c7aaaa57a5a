package awsstandin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/grayzone/grayzone/lab/awsstandin"
)

func server(t *testing.T) *awsstandin.Server {
	t.Helper()
	s := awsstandin.New(awsstandin.Options{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddSubnet(awsstandin.Subnet{ID: "subnet-1", VPC: "vpc-1", AZ: "us-east-2a", AZID: "use2-az1"})
	s.AddSubnet(awsstandin.Subnet{ID: "subnet-2", VPC: "vpc-1", AZ: "us-east-2b", AZID: "use2-az2"})
	s.AddSubnet(awsstandin.Subnet{ID: "subnet-9", VPC: "vpc-9", AZ: "us-east-2c", AZID: "use2-az3"})
	s.AddGroup(awsstandin.GroupSpec{Name: "web", MinSize: 1, MaxSize: 4, Desired: 2, Subnets: []string{"subnet-1", "subnet-2"}})
	return s
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// The Query protocols (Auto Scaling, EC2) answer in XML the SDK decodes,
// with AWS's validation and error codes.
func TestQueryProtocols(t *testing.T) {
	s := server(t)
	ctx := context.Background()
	as := autoscaling.NewFromConfig(s.Config())
	out, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"web", "nope"}})
	if err != nil || len(out.AutoScalingGroups) != 1 || aws.ToString(out.AutoScalingGroups[0].VPCZoneIdentifier) != "subnet-1,subnet-2" ||
		len(out.AutoScalingGroups[0].Instances) != 2 || aws.ToInt32(out.AutoScalingGroups[0].DesiredCapacity) != 2 {
		t.Fatalf("describe: %+v, %v", out, err)
	}
	for _, tc := range []struct{ subnets, code string }{
		{"subnet-1,subnet-404", "ValidationError"}, // unknown subnet
		{"", "ValidationError"},                    // none
		{"subnet-1,subnet-9", "ValidationError"},   // two VPCs
	} {
		_, err := as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("web"), VPCZoneIdentifier: aws.String(tc.subnets)})
		if code(err) != tc.code {
			t.Errorf("VPCZoneIdentifier %q: %v", tc.subnets, err)
		}
	}
	if _, err := as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("nope")}); code(err) != "ValidationError" {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := as.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("web"), ScalingProcesses: []string{"AZRebalance"}}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Group("web"); len(g.Suspended) != 1 || g.Suspended[0] != "AZRebalance" {
		t.Fatalf("suspended %v", g.Suspended)
	}
	e := ec2.NewFromConfig(s.Config())
	sn, err := e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-2"}})
	if err != nil || len(sn.Subnets) != 1 || aws.ToString(sn.Subnets[0].AvailabilityZoneId) != "use2-az2" || aws.ToString(sn.Subnets[0].VpcId) != "vpc-1" {
		t.Fatalf("describe subnets: %+v, %v", sn, err)
	}
	if _, err := e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-404"}}); code(err) != "InvalidSubnetID.NotFound" {
		t.Errorf("unknown subnet: %v", err)
	}
	// Throttled EC2 (RequestLimitExceeded) is retried by the SDK.
	s.Inject(awsstandin.EC2, awsstandin.Throttle, 1)
	if _, err := e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("after a throttle: %v", err)
	}
}

// A bad signature on the Query protocols is AWS's SignatureDoesNotMatch.
func TestQuerySignatureVerified(t *testing.T) {
	s := server(t)
	cfg := s.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDSTANDIN000000000", "wrong", "")
	ctx := context.Background()
	if _, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); code(err) != "SignatureDoesNotMatch" {
		t.Errorf("autoscaling: %v", err)
	}
	if _, err := ec2.NewFromConfig(cfg).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); code(err) != "SignatureDoesNotMatch" {
		t.Errorf("ec2: %v", err)
	}
	for _, c := range s.Calls() {
		if c.Status != 403 {
			t.Errorf("call %+v", c)
		}
	}
}
