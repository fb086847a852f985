package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthrt/berth/libcontainer"
)

// resourcesHelp is runc's description of the -r format.
const resourcesHelp = `path to a JSON file with the resources to update, or '-' for stdin.
The format is the runtime spec's linux.resources; unchanged values can be
omitted, for example:
  {"memory": {"limit": 0, "reservation": 0, "swap": 0, "checkBeforeUpdate": true},
   "cpu": {"shares": 0, "quota": 0, "burst": 0, "period": 0, "realtimeRuntime": 0,
           "realtimePeriod": 0, "cpus": "", "mems": "", "idle": 0},
   "blockIO": {"weight": 0}, "pids": {"limit": 0}}
With --resources, every other resource flag is ignored (as in runc).`

// updateFlags are runc update's flags. Values are strings so that "not
// given" and each flag's own parsing (units, -1) stay under our control.
type updateFlags struct {
	resources string
	values    map[string]*string
}

// updateFlagSpecs lists every flag but --resources, in runc's order, with
// its help text. Hidden ones are runc's obsolete kernel memory flags.
var updateFlagSpecs = []struct{ name, usage string }{
	{"blkio-weight", "block IO weight (10 to 1000)"},
	{"cpu-period", "CPU CFS period in µs, 0 for the system default"},
	{"cpu-quota", "CPU CFS quota in µs per period, -1 for none"},
	{"cpu-burst", "CPU CFS burst in µs: quota a period may borrow from idle ones"},
	{"cpu-share", "CPU shares (relative weight)"},
	{"cpu-rt-period", "CPU realtime period in µs (cgroup v1)"},
	{"cpu-rt-runtime", "CPU realtime runtime in µs per period (cgroup v1)"},
	{"cpuset-cpus", "CPUs to run on, e.g. 0-3,6"},
	{"cpuset-mems", "memory nodes to use, e.g. 0"},
	{"cpu-idle", "1 to make the cgroup SCHED_IDLE, 0 for the default"},
	{"kernel-memory", "obsolete and not supported"},
	{"kernel-memory-tcp", "kernel TCP buffer memory limit (cgroup v1)"},
	{"memory", "memory limit in bytes, units allowed (100m, 1g); -1 for none"},
	{"memory-reservation", "memory soft limit in bytes, units allowed"},
	{"memory-swap", "memory+swap limit in bytes, units allowed; -1 for unlimited swap"},
	{"pids-limit", "maximum number of tasks, 0 or -1 for none"},
	{"l3-cache-schema", "Intel RDT/CAT L3 cache schema (not supported)"},
	{"mem-bw-schema", "Intel RDT/MBA memory bandwidth schema (not supported)"},
}

func (f *updateFlags) register(fl *pflag.FlagSet) {
	fl.StringVarP(&f.resources, "resources", "r", "", resourcesHelp)
	f.values = map[string]*string{}
	for _, s := range updateFlagSpecs {
		f.values[s.name] = fl.String(s.name, "", s.usage)
	}
	fl.MarkHidden("kernel-memory")
	fl.MarkHidden("kernel-memory-tcp")
}

func updateCmd(g *globals) *cobra.Command {
	f := &updateFlags{}
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "change the resource limits of a container",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := f.toResources(cmd.Flags(), os.Stdin, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			return c.Update(res)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// toResources turns the flags (or the --resources JSON) into the resources
// to change; fields left nil keep their current value. Warnings (flags
// ignored because --resources is given) go to warn.
func (f *updateFlags) toResources(fl *pflag.FlagSet, stdin io.Reader, warn io.Writer) (*specs.LinuxResources, error) {
	// Berth does not manage Intel RDT at all: accepting a schema would
	// report success for a limit that is never applied.
	for _, name := range []string{"l3-cache-schema", "mem-bw-schema"} {
		if fl.Changed(name) {
			return nil, fmt.Errorf("--%s: Intel RDT is not supported by berth-runtime", name)
		}
	}
	if fl.Changed("resources") {
		var ignored []string
		for _, s := range updateFlagSpecs {
			if fl.Changed(s.name) {
				ignored = append(ignored, "--"+s.name)
			}
		}
		if len(ignored) > 0 {
			fmt.Fprintf(warn, "warning: %s ignored: --resources gives all the values\n", strings.Join(ignored, ", "))
		}
		return readResources(f.resources, stdin)
	}
	return f.fromFlags(fl)
}

// readResources decodes -r's JSON from a file or, for "-", stdin. Unknown
// fields are errors: a misspelt key would otherwise update nothing and
// still succeed.
func readResources(path string, stdin io.Reader) (*specs.LinuxResources, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("--resources: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var res specs.LinuxResources
	if err := d.Decode(&res); err != nil {
		return nil, fmt.Errorf("--resources %s: not linux.resources JSON: %w", path, err)
	}
	return &res, nil
}

// fromFlags converts each given flag the way runc does.
func (f *updateFlags) fromFlags(fl *pflag.FlagSet) (*specs.LinuxResources, error) {
	res := &specs.LinuxResources{}
	cpu, mem := &specs.LinuxCPU{}, &specs.LinuxMemory{}
	set := func(name string) (string, bool) { return *f.values[name], fl.Changed(name) }
	var err error
	for _, u := range []struct {
		name string
		dst  **uint64
	}{{"cpu-period", &cpu.Period}, {"cpu-share", &cpu.Shares}, {"cpu-rt-period", &cpu.RealtimePeriod}, {"cpu-burst", &cpu.Burst}} {
		if v, ok := set(u.name); ok {
			if *u.dst, err = flagUint(u.name, v); err != nil {
				return nil, err
			}
		}
	}
	for _, i := range []struct {
		name string
		dst  **int64
	}{{"cpu-quota", &cpu.Quota}, {"cpu-rt-runtime", &cpu.RealtimeRuntime}, {"cpu-idle", &cpu.Idle}} {
		if v, ok := set(i.name); ok {
			if *i.dst, err = flagInt(i.name, v); err != nil {
				return nil, err
			}
		}
	}
	cpu.Cpus, _ = set("cpuset-cpus")
	cpu.Mems, _ = set("cpuset-mems")
	for _, m := range []struct {
		name string
		dst  **int64
	}{{"memory", &mem.Limit}, {"memory-reservation", &mem.Reservation}, {"memory-swap", &mem.Swap},
		{"kernel-memory", &mem.Kernel}, {"kernel-memory-tcp", &mem.KernelTCP}} { //nolint:staticcheck // Kernel is refused by Update, with a reason
		if v, ok := set(m.name); ok {
			if *m.dst, err = flagBytes(m.name, v); err != nil {
				return nil, err
			}
		}
	}
	if v, ok := set("pids-limit"); ok {
		limit, err := flagInt("pids-limit", v)
		if err != nil {
			return nil, err
		}
		res.Pids = &specs.LinuxPids{Limit: limit}
	}
	if v, ok := set("blkio-weight"); ok {
		w, err := strconv.ParseUint(v, 10, 16)
		if err != nil || w < 10 || w > 1000 {
			return nil, fmt.Errorf("invalid value %q for --blkio-weight: want a number from 10 to 1000", v)
		}
		res.BlockIO = &specs.LinuxBlockIO{Weight: updPtr(uint16(w))}
	}
	if *cpu != (specs.LinuxCPU{}) {
		res.CPU = cpu
	}
	if *mem != (specs.LinuxMemory{}) {
		res.Memory = mem
	}
	return res, nil
}

func updPtr[T any](v T) *T { return &v }

func flagUint(flag, v string) (*uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for --%s: %w", v, flag, errors.Unwrap(err))
	}
	return &n, nil
}

func flagInt(flag, v string) (*int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for --%s: %w", v, flag, errors.Unwrap(err))
	}
	return &n, nil
}

// flagBytes takes a byte count with an optional binary unit ("512k",
// "100m", "1g", as docker and runc do) or -1 for unlimited.
func flagBytes(flag, v string) (*int64, error) {
	if v == "-1" {
		return updPtr(int64(-1)), nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for --%s: %w", v, flag, err)
	}
	return &n, nil
}
