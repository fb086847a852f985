package main

// The network figure of `make bench -case berth`: `berth run --rm` on
// the default bridge network against the same with --net none, in one
// run, alternating. The difference of the medians is what the network
// costs a container: its namespace, veth, address and rules set up before
// the task and taken down after it (issue 12's target: at most 30 ms).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berthrt/berth/cni"
)

const berthNetTarget = 30 * time.Millisecond

func (b *berthBench) netCase(ctx context.Context, warmup, n int) error {
	fmt.Printf("berth run network: iterations %d per contender after %d warm-up, contenders alternate\n", n, warmup)
	labels := []string{"berth run --rm (bridge)", "berth run --rm --net none"}
	samples, err := alternate(ctx, len(labels), warmup, n, func(j, i int) (time.Duration, error) {
		name := fmt.Sprintf("bb-net-%d-%d-%d", os.Getpid(), j, i)
		net := []string{"--net", "bridge"}
		if j == 1 {
			net = []string{"--net", "none"}
		}
		args := append(append([]string{"run", "--rm", "--name", name}, net...), berthBenchImage, "true")
		d, err := timed(b.command(ctx, args...))
		if err != nil {
			b.names = append(b.names, name)
		}
		return d, err
	})
	if err != nil {
		return err
	}
	line, _ := report("run --rm network", labels, samples)
	fmt.Println(line)
	cost := quantile(samples[0], 0.5) - quantile(samples[1], 0.5)
	verdict := "met"
	if cost > berthNetTarget {
		verdict = "NOT met"
	}
	fmt.Printf("berth run network: the bridge network costs %s at the median (target <= %s: %s)\n", ms(cost), ms(berthNetTarget), verdict)
	return nil
}

// releaseNetwork takes down what the bench's default network made on the
// host (its bridge, berth's rules) and puts back what networking changed
// for good (hostNetwork).
func (b *berthBench) releaseNetwork(ctx context.Context) error {
	store := cni.NewStore(cni.Config{ConfDir: filepath.Join(b.dir, "net.d"), DataRoot: filepath.Join(b.dir, "data")})
	return errors.Join(store.ReleaseNetwork(ctx, cni.DefaultNetwork), b.host.restore())
}
