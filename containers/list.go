package containers

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/docker/go-units"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/health"
)

// Summary is one row of `ps`, with the field names of docker's ps
// --format, so that templates written for docker work. ID and Command are
// full; ShortID and Ellipsis give docker's truncated columns.
type Summary struct {
	ID         string
	Image      string
	Command    string
	CreatedAt  time.Time
	RunningFor string
	Status     string
	State      string
	Names      string
	Labels     map[string]string
	Mounts     string
	Ports      string
	Networks   string
}

// Label is one label's value, for --format '{{.Label "key"}}'.
func (s Summary) Label(key string) string { return s.Labels[key] }

// ListOptions are ps's flags.
type ListOptions struct {
	// All lists stopped containers too.
	All bool
	// Last lists the n newest containers (any state); 0: all.
	Last int
	// Filters are KEY=VALUE: status, name, id, label, exited, health.
	Filters []string
}

// List gives the containers ps shows, newest first.
func List(ctx context.Context, client *containerd.Client, opts ListOptions) ([]Summary, error) {
	match, err := parseFilters(opts.Filters)
	if err != nil {
		return nil, err
	}
	infos, err := client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	running, err := tasks(ctx, client)
	if err != nil {
		return nil, err
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].CreatedAt.After(infos[j].CreatedAt) })
	now := time.Now()
	var rows []Summary
	for _, info := range infos {
		if opts.Last > 0 && len(rows) >= opts.Last {
			break
		}
		state := stateOf(info, running[info.ID])
		if !opts.All && opts.Last == 0 && !state.Running && !match.statusGiven {
			continue
		}
		if !match.keep(info, state) {
			continue
		}
		rows = append(rows, summarize(info, state, now))
	}
	return rows, nil
}

func summarize(info containers.Container, state State, now time.Time) Summary {
	var rec stored
	_ = readStored(info, &rec) // a container berth did not make shows what containerd knows
	image := rec.Config.Image
	if image == "" {
		image = info.Image
	}
	name := info.Labels[LabelName]
	if name == "" {
		name = info.ID
	}
	var mounts []string
	for _, b := range rec.HostConfig.Binds {
		if m, err := parseBind(b); err == nil {
			mounts = append(mounts, m.Source)
		}
	}
	return Summary{
		ID: info.ID, Image: image, Command: strings.Join(rec.command(), " "),
		CreatedAt: info.CreatedAt, RunningFor: units.HumanDuration(now.Sub(info.CreatedAt)) + " ago",
		Status: statusLine(state, now), State: state.Status, Names: name, Labels: userLabels(info.Labels),
		Mounts: strings.Join(mounts, ","), Networks: networksColumn(info, rec.HostConfig.NetworkMode), Ports: psPorts(info, state),
	}
}

// networksColumn is ps's NETWORKS: the plan's networks, else the mode.
func networksColumn(info containers.Container, mode string) string {
	if names := info.Labels[cni.ContainerLabel]; names != "" {
		return names
	}
	return mode
}

// psPorts is ps's PORTS of a running container.
func psPorts(info containers.Container, state State) string {
	if !state.Running {
		return ""
	}
	ports, err := Ports(info)
	if err != nil {
		return ""
	}
	return portsColumn(ports)
}

// userLabels are a container's labels less berth's and containerd's own.
func userLabels(all map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if !strings.HasPrefix(k, "berth/") && !strings.HasPrefix(k, "io.containerd.") {
			out[k] = v
		}
	}
	return out
}

// filters is ps --filter, parsed.
type filters struct {
	status, names, ids []string
	labels             []string
	exited             []int
	health             []string
	statusGiven        bool
}

func parseFilters(values []string) (*filters, error) {
	f := &filters{}
	for _, v := range values {
		key, val, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("invalid --filter %q: want KEY=VALUE (status, name, id, label, exited, health)", v)
		}
		switch key {
		case "status":
			switch val {
			case "created", "running", "paused", "restarting", "exited", "removing", "dead":
			default:
				return nil, fmt.Errorf("invalid --filter status=%s: want created, restarting, running, removing, paused, exited or dead", val)
			}
			f.status, f.statusGiven = append(f.status, val), true
		case "name":
			if _, err := regexp.Compile(val); err != nil {
				return nil, fmt.Errorf("invalid --filter name=%s: %w", val, err)
			}
			f.names = append(f.names, val)
		case "id":
			f.ids = append(f.ids, val)
		case "label":
			f.labels = append(f.labels, val)
		case "exited":
			code, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("invalid --filter exited=%s: want an exit code", val)
			}
			f.exited, f.statusGiven = append(f.exited, code), true
		case "health":
			switch val {
			case health.Starting, health.Healthy, health.Unhealthy, health.None:
			default:
				return nil, fmt.Errorf("invalid --filter health=%s: want starting, healthy, unhealthy or none", val)
			}
			f.health = append(f.health, val)
		default:
			return nil, fmt.Errorf("invalid --filter %q: berth filters by status, name, id, label, exited and health", v)
		}
	}
	return f, nil
}

// keep says whether a container passes every filter: values of one key
// are alternatives, different keys must all match, as in docker.
func (f *filters) keep(info containers.Container, s State) bool {
	anyOf := func(values []string, match func(string) bool) bool {
		if len(values) == 0 {
			return true
		}
		for _, v := range values {
			if match(v) {
				return true
			}
		}
		return false
	}
	name := info.Labels[LabelName]
	ok := anyOf(f.status, func(v string) bool { return v == s.Status }) &&
		anyOf(f.names, func(v string) bool { return regexp.MustCompile(v).MatchString(name) }) &&
		anyOf(f.ids, func(v string) bool { return strings.HasPrefix(info.ID, v) }) &&
		anyOf(f.health, func(v string) bool { return v == healthStatus(s) })
	for _, l := range f.labels {
		k, v, hasValue := strings.Cut(l, "=")
		got, present := info.Labels[k]
		if !present || (hasValue && got != v) {
			return false
		}
	}
	if len(f.exited) > 0 {
		ok = ok && s.Status == "exited" && anyOf(toStrings(f.exited), func(v string) bool { return v == strconv.Itoa(s.ExitCode) })
	}
	return ok
}

// healthStatus is the container's health for ps --filter health: its
// status, or none without a check.
func healthStatus(s State) string {
	if s.Health == nil {
		return health.None
	}
	return s.Health.Status
}

func toStrings(ns []int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, strconv.Itoa(n))
	}
	return out
}

// ShortID is docker's 12-digit container ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Ellipsis cuts s to n characters, the last an ellipsis, as docker's
// columns do.
func Ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
