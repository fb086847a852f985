package cni

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

func TestClash(t *testing.T) {
	pm := func(ip string, port uint16, proto string) PortMapping {
		return PortMapping{HostIP: ip, HostPort: port, ContainerPort: 80, Protocol: proto}
	}
	for _, tc := range []struct {
		a, b PortMapping
		want bool
	}{
		{pm("", 8080, "tcp"), pm("", 8080, "tcp"), true},
		{pm("127.0.0.1", 8080, "tcp"), pm("", 8080, "tcp"), true},
		{pm("0.0.0.0", 8080, "tcp"), pm("127.0.0.1", 8080, "tcp"), true},
		{pm("127.0.0.1", 8080, "tcp"), pm("127.0.0.2", 8080, "tcp"), false},
		{pm("", 8080, "tcp"), pm("", 8080, "udp"), false},
		{pm("", 8080, "tcp"), pm("", 8081, "tcp"), false},
	} {
		if got := clash(tc.a, tc.b); got != tc.want {
			t.Errorf("clash(%+v, %+v) = %v", tc.a, tc.b, got)
		}
	}
}

func TestRecordWithPorts(t *testing.T) {
	s, _ := newTestStore(t)
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	hostPort := uint16(held.Addr().(*net.TCPAddr).Port)

	first := Attachment{ContainerID: "c1", ContainerName: "web", Network: "n",
		Ports: []PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}}}
	if err := s.recordWithPorts(&first); err != nil {
		t.Fatal(err)
	}
	picked := first.Ports[0].HostPort
	if picked == 0 {
		t.Fatal("host port 0 was not given a port")
	}
	if rec, err := s.readEndpoint("n", "c1"); err != nil || rec.Ports[0].HostPort != picked {
		t.Fatalf("record: %+v, %v", rec, err)
	}

	for _, tc := range []struct {
		name  string
		ports []PortMapping
		by    string
	}{
		{name: "published by another container", ports: []PortMapping{{HostPort: picked, ContainerPort: 80, Protocol: "tcp"}}, by: "(by web)"},
		{name: "bound by a process", ports: []PortMapping{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 80, Protocol: "tcp"}}, by: "(by a process on the host)"},
		{name: "twice in one container", ports: []PortMapping{
			{HostIP: "127.0.0.1", HostPort: picked + 1, ContainerPort: 80, Protocol: "udp"},
			{HostIP: "127.0.0.1", HostPort: picked + 1, ContainerPort: 81, Protocol: "udp"}}, by: "(by db (twice))"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Attachment{ContainerID: "c2", ContainerName: "db", Network: "m", Ports: tc.ports}
			err := s.recordWithPorts(&a)
			var inUse *PortInUseError
			if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "port is already allocated "+tc.by) {
				t.Fatalf("record: %v; want the port refused %s", err, tc.by)
			}
			if _, err := os.Stat(s.endpointPath("m", "c2")); !os.IsNotExist(err) {
				t.Fatalf("a refused endpoint was recorded: %v", err)
			}
		})
	}
	bad := Attachment{ContainerID: "c3", Network: "m", Ports: []PortMapping{{HostPort: 1, ContainerPort: 1, Protocol: "sctp"}}}
	if err := s.recordWithPorts(&bad); err == nil || !strings.Contains(err.Error(), "want tcp or udp") {
		t.Fatalf("sctp: %v", err)
	}
}
