package containers

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// Top lists container c's processes as `docker top` does: the host's ps
// with psArgs (default -ef), keeping the header and the container's rows.
func Top(ctx context.Context, c containerd.Container, psArgs []string) (string, error) {
	task, running, err := runningTask(ctx, c)
	if err != nil {
		return "", err
	}
	if !running {
		return "", fmt.Errorf("container %s is not running: %w", c.ID(), ErrNotRunning)
	}
	pids, err := task.Pids(ctx)
	if err != nil {
		return "", fmt.Errorf("container %s: list its processes: %w", c.ID(), err)
	}
	inside := map[string]bool{}
	for _, p := range pids {
		inside[strconv.FormatUint(uint64(p.Pid), 10)] = true
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.CommandContext(ctx, "ps", psArgs...).Output()
	if err != nil {
		return "", fmt.Errorf("top: ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	pidCol := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return "", fmt.Errorf("top: ps %s gives no PID column", strings.Join(psArgs, " "))
	}
	var b bytes.Buffer
	b.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > pidCol && inside[f[pidCol]] {
			b.WriteString(l + "\n")
		}
	}
	return b.String(), nil
}

// Rename gives container c a new name, as `docker rename` does.
func Rename(ctx context.Context, client *containerd.Client, c containerd.Container, name, dataRoot string) error {
	lock, err := lockNames(dataRoot)
	if err != nil {
		return err
	}
	defer lock.unlock()
	name = strings.TrimPrefix(name, "/")
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := nameFree(ctx, client, name); err != nil {
		return err
	}
	return setLabels(ctx, c, map[string]string{LabelName: name})
}

// Prune removes every container that is not running, as `docker
// container prune` does, and gives the IDs removed.
func Prune(ctx context.Context, client *containerd.Client, dataRoot string) ([]string, error) {
	infos, err := client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	running, err := tasks(ctx, client)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, info := range infos {
		if s := stateOf(info, running[info.ID]); s.Running {
			continue
		}
		if err := Remove(ctx, client, info.ID, RemoveOptions{DataRoot: dataRoot}); err != nil {
			if errdefs.IsNotFound(err) {
				continue // removed meanwhile
			}
			return removed, err
		}
		removed = append(removed, info.ID)
	}
	return removed, nil
}
