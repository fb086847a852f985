package restart

import (
	"context"
	"errors"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/plugins"
)

// PluginID is the monitor's id among containerd's plugins (of type
// plugins.ContainerMonitorPlugin): Berth's containerd (bin/containerd)
// has it, any other containerd does not.
const PluginID = "berth-restart"

// Available says whether the containerd client talks to runs Berth's
// restart monitor (its plugin list, from the introspection service).
func Available(ctx context.Context, client *containerd.Client) (bool, error) {
	resp, err := client.IntrospectionService().Plugins(ctx, fmt.Sprintf("type==%q,id==%q", plugins.ContainerMonitorPlugin, PluginID))
	if err != nil {
		return false, fmt.Errorf("ask containerd for its plugins: %w", err)
	}
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			return true, nil
		}
	}
	return false, nil
}

// ErrNoMonitor: the containerd has no Berth restart monitor.
var ErrNoMonitor = errors.New("this containerd does not run Berth's restart monitor")

// CheckPolicy refuses a policy that needs the monitor (anything but "no")
// when the containerd at address, which client talks to, lacks it. The
// error says what to do.
func CheckPolicy(ctx context.Context, client *containerd.Client, address string, p Policy) error {
	if p.Mode == No || p.Mode == "" {
		return nil
	}
	ok, err := Available(ctx, client)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("--restart %s: the containerd at %s is not Berth's (%w): use the containerd berth manages (no --address), or --restart no", p, address, ErrNoMonitor)
	}
	return nil
}

// CheckAutoRemove refuses --rm with a restart policy, as docker does.
func CheckAutoRemove(p Policy, autoRemove bool) error {
	if autoRemove && p.Mode != No && p.Mode != "" {
		return fmt.Errorf("conflicting options: --restart %s and --rm: a container removed when it exits cannot be restarted", p)
	}
	return nil
}

// CreateLabels are the labels berth create and run give a container for
// its policy and --rm.
func CreateLabels(p Policy, autoRemove bool) map[string]string {
	labels := map[string]string{LabelPolicy: p.String()}
	if autoRemove {
		labels[LabelAutoRemove] = "true"
	}
	return labels
}

// MarkStoppedByUser records that the user stops or kills c (berth stop,
// kill, rm -f): called before the signal is sent, so that the monitor
// never restarts the task that signal ends.
func MarkStoppedByUser(ctx context.Context, c containerd.Container) error {
	if _, err := c.SetLabels(ctx, map[string]string{LabelStoppedByUser: "true"}); err != nil {
		return fmt.Errorf("mark container %s as stopped by the user: %w", c.ID(), err)
	}
	return nil
}

// UserStartLabels are the label changes of a start by the user (berth
// start, restart, run): the user's stop and the restart count forgotten,
// as docker resets both at each start. The caller sets them in the update
// that records the start.
func UserStartLabels() map[string]string {
	return map[string]string{LabelStoppedByUser: "", LabelCount: ""}
}
