package aws

import (
	"strconv"
	"strings"
)

// hourlyUSD are on-demand Linux prices in us-east-1 (USD per hour) of the
// instance types a cluster is likely made of. They are for an estimate
// only: prices differ between regions and change; EBS storage and traffic
// are not counted.
var hourlyUSD = map[string]float64{
	"t3.medium": 0.0416, "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
	"c4.large": 0.10, "c4.xlarge": 0.199, "c4.2xlarge": 0.398, "c4.4xlarge": 0.796, "c4.8xlarge": 1.591,
	"c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68, "c5.9xlarge": 1.53, "c5.12xlarge": 2.04, "c5.18xlarge": 3.06, "c5.24xlarge": 4.08,
	"c6i.large": 0.085, "c6i.xlarge": 0.17, "c6i.2xlarge": 0.34, "c6i.4xlarge": 0.68, "c6i.8xlarge": 1.36, "c6i.16xlarge": 2.72,
	"c6a.large": 0.0765, "c6a.xlarge": 0.153, "c6a.2xlarge": 0.306, "c6a.4xlarge": 0.612, "c6a.8xlarge": 1.224,
	"c7i.large": 0.08925, "c7i.xlarge": 0.1785, "c7i.2xlarge": 0.357, "c7i.4xlarge": 0.714, "c7i.8xlarge": 1.428,
	"c7g.large": 0.0725, "c7g.xlarge": 0.145, "c7g.2xlarge": 0.29, "c7g.4xlarge": 0.58, "c7g.8xlarge": 1.16,
	"m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384, "m5.4xlarge": 0.768,
	"m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384, "m6i.4xlarge": 0.768,
	"m7i.large": 0.1008, "m7i.xlarge": 0.2016, "m7i.2xlarge": 0.4032, "m7i.4xlarge": 0.8064,
}

// HourlyPrice is the estimated on-demand price of an instance type, and
// whether the built-in table knows it.
func HourlyPrice(instanceType string) (float64, bool) {
	p, ok := hourlyUSD[instanceType]
	return p, ok
}

// VCPUs is how many vCPUs (run slots) an instance type has, read from its
// size as EC2 names them (large 2, xlarge 4, 8xlarge 32, medium 2), and
// whether the size is one of those.
func VCPUs(instanceType string) (int, bool) {
	_, size, ok := strings.Cut(instanceType, ".")
	if !ok {
		return 0, false
	}
	switch size {
	case "medium", "large":
		return 2, true
	case "xlarge":
		return 4, true
	}
	n, err := strconv.Atoi(strings.TrimSuffix(size, "xlarge"))
	if err != nil || !strings.HasSuffix(size, "xlarge") || n < 2 {
		return 0, false
	}
	return 4 * n, true
}
