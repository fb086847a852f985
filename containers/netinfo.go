package containers

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"

	"github.com/berthrt/berth/cni"
)

// attachments are the networks container info is on now, from the
// network store its plan names; none while it is stopped, or without a
// plan (--net none, host, container:X).
func attachments(info containers.Container) (*cni.Plan, []cni.Attachment, error) {
	plan, err := cni.ReadPlan(info)
	if err != nil || plan == nil {
		return nil, nil, err
	}
	as, err := cni.NewStore(plan.Store).Attachments(info.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: its networks: %w", info.ID, err)
	}
	return plan, as, nil
}

// networkSettings is inspect's .NetworkSettings.
func networkSettings(info containers.Container, mode string) (NetworkSettings, error) {
	ns := NetworkSettings{Networks: map[string]*EndpointSettings{}, Ports: map[string][]PortBinding{}}
	plan, as, err := attachments(info)
	if err != nil {
		return ns, err
	}
	if plan == nil {
		if mode != "" {
			ns.Networks[mode] = &EndpointSettings{}
		}
		return ns, nil
	}
	for _, n := range plan.Networks {
		ns.Networks[n.Name] = &EndpointSettings{Aliases: n.Aliases}
	}
	if len(as) > 0 {
		ns.SandboxKey = plan.NetNS
	}
	for _, a := range as {
		e := ns.Networks[a.Network]
		if e == nil {
			e = &EndpointSettings{Aliases: a.Aliases}
			ns.Networks[a.Network] = e
		}
		e.NetworkID, e.EndpointID, e.MacAddress = a.NetworkID, a.EndpointID, a.MAC
		if a.IP.IsValid() {
			e.IPAddress, e.IPPrefixLen = a.IP.Addr().String(), a.IP.Bits()
		}
		if a.Gateway.IsValid() {
			e.Gateway = a.Gateway.String()
		}
		if a.Network == cni.DefaultNetwork {
			ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = e.IPAddress, e.IPPrefixLen, e.Gateway, e.MacAddress
		}
		for _, p := range a.Ports {
			key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
			ns.Ports[key] = append(ns.Ports[key], PortBinding{HostIP: p.BoundIP(), HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	return ns, nil
}

// Ports are the container's published ports while it runs, sorted by
// container port.
func Ports(info containers.Container) ([]cni.PortMapping, error) {
	_, as, err := attachments(info)
	if err != nil {
		return nil, err
	}
	var out []cni.PortMapping
	for _, a := range as {
		out = append(out, a.Ports...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out, nil
}

// FormatPort is one published port as `docker port` prints it:
// "80/tcp -> 0.0.0.0:8080".
func FormatPort(p cni.PortMapping) string {
	return fmt.Sprintf("%d/%s -> %s", p.ContainerPort, p.Protocol, p.HostAddress())
}

// portsColumn is ps's PORTS: "0.0.0.0:8080->80/tcp, …".
func portsColumn(ports []cni.PortMapping) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprintf("%s->%d/%s", p.HostAddress(), p.ContainerPort, p.Protocol)
	}
	return strings.Join(parts, ", ")
}
