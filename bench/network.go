package main

// The network case: what a container's network costs berth, in-process,
// as `berth run` spends it — a network namespace made, attached to a user
// network, released (Store.Release: the namespace removed, then
// detached) — against the namespace alone (what a container on --net
// none has too, made by the runtime). Beside it: the older order (Detach,
// then RemoveNetNS), and a container publishing a port. Each step's
// median is printed, so that a regression can be pinned on one. It runs
// on a store of its own in a temp dir under /run, with a network on a
// bridge of its own, and puts back what the plugins change host-wide
// (net.ipv4.ip_forward, berth's shared chains).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berthrt/berth/cni"
)

const (
	// networkBudget is issue 12's: the network may cost `run --rm` at
	// most this much at the median.
	networkBudget = 30 * time.Millisecond
	// The bench's network, clear of the integration tests' 10.213.x.
	benchNetwork = "berth-bench"
	benchBridge  = "bbench0"
	benchSubnet  = "10.214.77.0/24"
)

// networkSteps are the steps of one container's network life, in the
// order a contender takes them; each contender times some of them.
var networkSteps = []string{"NewNetNS", "Attach", "Detach", "RemoveNetNS", "Release"}

const (
	stepNew = iota
	stepAttach
	stepDetach
	stepRemove
	stepRelease
)

// networkBench is the bench's store and network, for cleanup.
type networkBench struct {
	dir   string
	store *cni.Store
	host  hostNetwork
}

// hostNetwork is what a network's first use changes on the host for good,
// as a bench found it: net.ipv4.ip_forward, which the bridge turns on,
// and whether berth's shared chains were there.
type hostNetwork struct {
	ipForward []byte
	chains    bool
}

const ipForwardKey = "/proc/sys/net/ipv4/ip_forward"

func saveHostNetwork() (hostNetwork, error) {
	was, err := os.ReadFile(ipForwardKey)
	if err != nil {
		return hostNetwork{}, err
	}
	chains, err := cni.SharedChainsExist()
	return hostNetwork{ipForward: was, chains: chains}, err
}

// restore puts ip_forward back and removes berth's shared chains if the
// bench made them.
func (h hostNetwork) restore() error {
	var errs []error
	if !h.chains {
		errs = append(errs, cni.RemoveSharedChains())
	}
	if h.ipForward != nil {
		errs = append(errs, os.WriteFile(ipForwardKey, h.ipForward, 0o644))
	}
	return errors.Join(errs...)
}

func startNetworkBench(ctx context.Context, bin string) (*networkBench, error) {
	plugins := filepath.Join(bin, "cni")
	if _, err := os.Stat(filepath.Join(plugins, "bridge")); err != nil {
		return nil, fmt.Errorf("%w (run `make build`, or pass -bin DIR)", err)
	}
	host, err := saveHostNetwork()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/run", "bn-bench-")
	if err != nil {
		return nil, err
	}
	b := &networkBench{dir: dir, host: host, store: cni.NewStore(cni.Config{
		ConfDir: filepath.Join(dir, "net.d"), PluginDirs: []string{plugins}, DataRoot: filepath.Join(dir, "data"),
	})}
	_, err = b.store.Create(ctx, cni.CreateOptions{Name: benchNetwork, Subnet: benchSubnet,
		Options: map[string]string{cni.BridgeNameOption: benchBridge}})
	return b, err
}

// close removes the network (its bridge and rules), the store, and puts
// ip_forward and berth's chains back as they were.
func (b *networkBench) close() error {
	ctx := context.Background()
	var errs []error
	if _, err := b.store.DetachStale(ctx, func(string) bool { return false }); err != nil {
		errs = append(errs, err)
	}
	if err := b.store.Remove(ctx, benchNetwork, noNetworkUsers{}); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, b.host.restore())
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type noNetworkUsers struct{}

func (noNetworkUsers) NetworkUsers(context.Context) (map[string][]string, error) {
	return map[string][]string{}, nil
}

// networkContender is one way of a container's network life: the steps
// it takes, on network ("" for none), publishing ports.
type networkContender struct {
	label, network string
	ports          []cni.PortMapping
	steps          []int
}

// once runs one container's network life and returns each step's time.
func (b *networkBench) once(ctx context.Context, c networkContender, id string) ([]time.Duration, error) {
	path := filepath.Join(b.dir, "ns-"+id)
	do := map[int]func() error{
		stepNew: func() error { return cni.NewNetNS(path) },
		stepAttach: func() error {
			_, err := b.store.Attach(ctx, path, id, c.network, cni.AttachOptions{ContainerName: id, Ports: c.ports})
			return err
		},
		stepDetach:  func() error { return b.store.Detach(ctx, id, c.network) },
		stepRemove:  func() error { return cni.RemoveNetNS(path) },
		stepRelease: func() error { return b.store.Release(ctx, id, path) },
	}
	took := make([]time.Duration, len(networkSteps))
	for _, step := range c.steps {
		start := time.Now()
		err := do[step]()
		took[step] = time.Since(start)
		if err != nil {
			// What is left goes with close: a recorded endpoint with
			// DetachStale, the namespace here.
			cni.RemoveNetNS(path)
			return nil, fmt.Errorf("%s of %s: %w", networkSteps[step], id, err)
		}
	}
	return took, nil
}

// networkCase times the network life of a container without ports, with
// one published port, and the bare namespace, alternating, and prints
// each step's median; the summary gets the cost without ports against
// issue 12's budget.
func networkCase(ctx context.Context, o options, sum *summary) (err error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	b, err := startNetworkBench(ctx, bin)
	if b != nil {
		defer func() {
			if cerr := b.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup of the network bench: %w", cerr))
			}
		}()
	}
	if err != nil {
		return fmt.Errorf("network case: %w", err)
	}
	onePort := []cni.PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80}}
	contenders := []networkContender{
		{label: "user network", network: benchNetwork, steps: []int{stepNew, stepAttach, stepRelease}},
		{label: "  Detach first", network: benchNetwork, steps: []int{stepNew, stepAttach, stepDetach, stepRemove}},
		{label: "user network -p", network: benchNetwork, ports: onePort, steps: []int{stepNew, stepAttach, stepRelease}},
		{label: "netns only", steps: []int{stepNew, stepRemove}},
	}
	fmt.Printf("network: %s on bridge %s (%s), in-process; iterations %d per contender after %d warm-up, contenders alternate\n",
		benchNetwork, benchBridge, benchSubnet, o.n, o.warmup)
	steps := make([][][]time.Duration, len(contenders)) // contender, step, sample
	for j := range steps {
		steps[j] = make([][]time.Duration, len(networkSteps))
	}
	totals, err := alternate(ctx, len(contenders), o.warmup, o.n, func(j, i int) (time.Duration, error) {
		took, err := b.once(ctx, contenders[j], fmt.Sprintf("bench-%d-%d", j, i))
		var total time.Duration
		for k, d := range took {
			total += d
			if i >= o.warmup {
				steps[j][k] = append(steps[j][k], d)
			}
		}
		return total, err
	})
	if err != nil {
		return err
	}
	for j, c := range contenders {
		line := fmt.Sprintf("%-16s total median %s p90 %s |", c.label, ms(quantile(totals[j], 0.5)), ms(quantile(totals[j], 0.9)))
		for _, k := range c.steps {
			line += fmt.Sprintf(" %s %s", networkSteps[k], ms(quantile(steps[j][k], 0.5)))
		}
		fmt.Println(line)
	}
	cost := quantile(totals[0], 0.5) - quantile(totals[len(totals)-1], 0.5)
	fmt.Printf("network cost (user network - netns only, medians): %s, budget %s\n", ms(cost), ms(networkBudget))
	sum.add("network attach+detach, median time", "cost/30ms budget", float64(cost)/float64(networkBudget), 1)
	return nil
}
