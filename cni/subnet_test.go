package cni

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAddressing(t *testing.T) {
	for _, tc := range []struct {
		name, subnet, gateway, ipRange  string
		wantGateway, wantStart, wantEnd string
		wantErr                         string
	}{
		{name: "subnet only", subnet: "10.213.0.0/24", wantGateway: "10.213.0.1", wantStart: "10.213.0.1", wantEnd: "10.213.0.254"},
		{name: "gateway given", subnet: "10.213.0.0/24", gateway: "10.213.0.254", wantGateway: "10.213.0.254", wantStart: "10.213.0.1", wantEnd: "10.213.0.254"},
		{name: "ip range in the upper half", subnet: "10.213.0.0/24", ipRange: "10.213.0.128/25", wantGateway: "10.213.0.1", wantStart: "10.213.0.128", wantEnd: "10.213.0.254"},
		{name: "ip range in the lower half", subnet: "10.213.0.0/16", ipRange: "10.213.0.0/25", wantGateway: "10.213.0.1", wantStart: "10.213.0.1", wantEnd: "10.213.0.127"},
		{name: "ip range written with host bits", subnet: "10.213.0.0/24", ipRange: "10.213.0.130/25", wantGateway: "10.213.0.1", wantStart: "10.213.0.128", wantEnd: "10.213.0.254"},
		{name: "smallest subnet", subnet: "10.213.0.0/30", wantGateway: "10.213.0.1", wantStart: "10.213.0.1", wantEnd: "10.213.0.2"},
		{name: "not a CIDR", subnet: "10.213.0.0", wantErr: "is not a CIDR"},
		{name: "host bits", subnet: "10.213.0.5/24", wantErr: "did you mean 10.213.0.0/24"},
		{name: "IPv6", subnet: "fd00::/64", wantErr: "IPv6 networks are not supported yet"},
		{name: "too small", subnet: "10.213.0.0/31", wantErr: "leaves no room"},
		{name: "gateway outside", subnet: "10.213.0.0/24", gateway: "10.213.1.1", wantErr: "--gateway 10.213.1.1 is not a host address"},
		{name: "gateway is the subnet", subnet: "10.213.0.0/24", gateway: "10.213.0.0", wantErr: "is not a host address"},
		{name: "gateway is the broadcast", subnet: "10.213.0.0/24", gateway: "10.213.0.255", wantErr: "is not a host address"},
		{name: "gateway not an address", subnet: "10.213.0.0/24", gateway: "gw", wantErr: "is not an IP address"},
		{name: "range outside", subnet: "10.213.0.0/24", ipRange: "10.213.1.0/25", wantErr: "is not inside --subnet"},
		{name: "range larger than the subnet", subnet: "10.213.0.0/24", ipRange: "10.213.0.0/23", wantErr: "is not inside --subnet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseAddressing("n", tc.subnet, tc.gateway, tc.ipRange)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			start, end := a.allocationRange()
			if a.gateway.String() != tc.wantGateway || start.String() != tc.wantStart || end.String() != tc.wantEnd {
				t.Fatalf("gateway %s, range %s-%s; want %s, %s-%s", a.gateway, start, end, tc.wantGateway, tc.wantStart, tc.wantEnd)
			}
		})
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.88.0.0/16": "10.88.255.255", "10.213.4.0/24": "10.213.4.255", "10.213.4.128/25": "10.213.4.255",
		"10.0.0.0/8": "10.255.255.255", "192.168.16.0/20": "192.168.31.255", "10.1.2.3/32": "10.1.2.3",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPickSubnet(t *testing.T) {
	prefixes := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		used []netip.Prefix
		want string
	}{
		{name: "nothing in use", want: "172.18.0.0/16"},
		{name: "first pool taken", used: prefixes("172.18.0.0/16"), want: "172.19.0.0/16"},
		{name: "a smaller network inside the first pool", used: prefixes("172.18.5.0/24"), want: "172.19.0.0/16"},
		{name: "a host route over all of 172.16/12", used: prefixes("172.16.0.0/12"), want: "192.168.0.0/20"},
		{name: "a host route over 192.168.0/24 too", used: prefixes("172.16.0.0/12", "192.168.0.0/24"), want: "192.168.16.0/20"},
		{name: "all taken", used: prefixes("172.16.0.0/12", "192.168.0.0/16"), want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := pickSubnet(defaultPools(), tc.used)
			if (tc.want == "") == ok || (ok && got.String() != tc.want) {
				t.Fatalf("pickSubnet = %s, %v; want %q", got, ok, tc.want)
			}
		})
	}
}
