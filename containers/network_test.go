package containers

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/cni"
)

func TestContainerResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name, host string
		hc         HostConfig
		want       string
	}{
		{"the host's servers", "# generated\nnameserver 10.0.0.2\nsearch corp.test\noptions ndots:2\n", HostConfig{},
			"nameserver 10.0.0.2\nsearch corp.test\noptions ndots:2\n"},
		{"a loopback resolver is not copied in", "nameserver 127.0.0.53\nnameserver ::1\nsearch corp.test\n", HostConfig{},
			"nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.test\n"},
		{"--net host keeps a loopback resolver: the host's loopback is the container's", "nameserver 127.0.0.53\nsearch corp.test\n",
			HostConfig{NetworkMode: "host"}, "nameserver 127.0.0.53\nsearch corp.test\n"},
		{"loopback beside another", "nameserver 127.0.0.53\nnameserver 10.0.0.2\n", HostConfig{}, "nameserver 10.0.0.2\n"},
		{"no host file", "", HostConfig{}, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"--dns, --dns-search and --dns-option replace the host's", "nameserver 10.0.0.2\nsearch corp.test\noptions ndots:2\n",
			HostConfig{DNS: []string{"10.1.1.1"}, DNSSearch: []string{"a.test", "b.test"}, DNSOptions: []string{"timeout:1"}},
			"nameserver 10.1.1.1\nsearch a.test b.test\noptions timeout:1\n"},
		{"--dns-search . drops the search list", "nameserver 10.0.0.2\nsearch corp.test\n", HostConfig{DNSSearch: []string{"."}},
			"nameserver 10.0.0.2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := containerResolvConf(tc.host, tc.hc); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPublishedPorts(t *testing.T) {
	img := ocispec.ImageConfig{ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}}}
	for _, tc := range []struct {
		name string
		cfg  Config
		hc   HostConfig
		want []cni.PortMapping
	}{
		{"none", Config{}, HostConfig{}, nil},
		{"-p forms", Config{}, HostConfig{PortBindings: map[string][]PortBinding{
			"80/tcp": {{HostPort: "8080"}, {HostIP: "127.0.0.1", HostPort: "8081"}}, "53/udp": {{}},
		}}, []cni.PortMapping{
			{ContainerPort: 53, Protocol: "udp"},
			{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			{HostIP: "127.0.0.1", HostPort: 8081, ContainerPort: 80, Protocol: "tcp"},
		}},
		{"-P: the image's and --expose's ports, less those -p binds", Config{ExposedPorts: map[string]struct{}{"9000/tcp": {}}},
			HostConfig{PublishAllPorts: true, PortBindings: map[string][]PortBinding{"80/tcp": {{HostPort: "8080"}}}},
			[]cni.PortMapping{
				{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
				{ContainerPort: 53, Protocol: "udp"},
				{ContainerPort: 9000, Protocol: "tcp"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := publishedPorts(tc.cfg, tc.hc, img)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := publishedPorts(Config{}, HostConfig{PortBindings: map[string][]PortBinding{"80/tcp": {{HostPort: "70000"}}}}, img); err == nil {
		t.Error("host port 70000 accepted")
	}
}
