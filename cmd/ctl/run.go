package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthrt/berth/containers"
)

// addCreateFlags binds docker's run/create flags to f.
func addCreateFlags(fs *pflag.FlagSet, f *containers.Flags) {
	fs.SetInterspersed(false) // flags after the image are the command's
	// -h is docker's --hostname here, so --help has no shorthand.
	fs.Bool("help", false, "print usage")
	fs.BoolVarP(&f.Interactive, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&f.TTY, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVar(&f.AutoRemove, "rm", false, "remove the container when it exits")
	fs.StringVar(&f.Name, "name", "", "assign a name to the container")
	fs.StringArrayVarP(&f.Env, "env", "e", nil, "set environment variables (NAME=VALUE, or NAME to take berth's)")
	fs.StringArrayVar(&f.EnvFile, "env-file", nil, "read environment variables from a file")
	fs.StringVarP(&f.Workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.User, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&f.Entrypoint, "entrypoint", "", "overwrite the image's ENTRYPOINT")
	fs.StringVarP(&f.Hostname, "hostname", "h", "", "container host name")
	fs.StringArrayVarP(&f.Labels, "label", "l", nil, "set metadata on the container (KEY=VALUE)")
	fs.StringArrayVarP(&f.Volumes, "volume", "v", nil, "bind mount a volume or a host directory (VOLUME:CONTAINER[:ro|rw], /HOST:CONTAINER[:ro|rw] or CONTAINER)")
	fs.StringArrayVar(&f.Mounts, "mount", nil, "attach a filesystem mount (type=bind|volume|tmpfs,...)")
	fs.StringArrayVar(&f.Tmpfs, "tmpfs", nil, "mount a tmpfs directory (PATH[:OPTIONS])")
	fs.BoolVar(&f.ReadOnly, "read-only", false, "mount the container's root filesystem read-only")
	fs.StringVarP(&f.Memory, "memory", "m", "", "memory limit")
	fs.StringVar(&f.MemorySwap, "memory-swap", "", "memory plus swap limit (-1: unlimited swap)")
	fs.StringVar(&f.MemoryReservation, "memory-reservation", "", "memory soft limit")
	fs.BoolVar(&f.OomKillDisable, "oom-kill-disable", false, "disable the OOM killer")
	fs.Int64VarP(&f.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&f.CPUs, "cpus", "", "number of CPUs")
	fs.Int64Var(&f.CPUQuota, "cpu-quota", 0, "limit CPU CFS quota (microseconds)")
	fs.Int64Var(&f.CPUPeriod, "cpu-period", 0, "limit CPU CFS period (microseconds)")
	fs.StringVar(&f.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.Uint16Var(&f.BlkioWeight, "blkio-weight", 0, "block IO relative weight, 10 to 1000")
	fs.StringArrayVar(&f.DeviceReadBps, "device-read-bps", nil, "limit read rate from a device (DEVICE:RATE)")
	fs.StringArrayVar(&f.DeviceWriteBps, "device-write-bps", nil, "limit write rate to a device (DEVICE:RATE)")
	fs.Int64Var(&f.PidsLimit, "pids-limit", 0, "tune the container's pids limit (-1: unlimited)")
	fs.StringArrayVar(&f.Ulimits, "ulimit", nil, "ulimit options (NAME=SOFT[:HARD])")
	fs.StringArrayVar(&f.CapAdd, "cap-add", nil, "add Linux capabilities")
	fs.StringArrayVar(&f.CapDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.BoolVar(&f.Privileged, "privileged", false, "give extended privileges to this container")
	fs.StringArrayVar(&f.SecurityOpt, "security-opt", nil, "security options (seccomp=unconfined|PROFILE, no-new-privileges)")
	fs.StringArrayVar(&f.Devices, "device", nil, "add a host device to the container")
	fs.StringArrayVar(&f.Sysctls, "sysctl", nil, "sysctl options (KEY=VALUE)")
	fs.StringArrayVar(&f.GroupAdd, "group-add", nil, "add additional groups to join")
	fs.StringVar(&f.Restart, "restart", "no", "restart policy: no, always, unless-stopped, on-failure[:N]")
	fs.StringVar(&f.StopSignal, "stop-signal", "", "signal to stop the container")
	fs.IntVar(&f.StopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop the container")
	fs.BoolVar(&f.Init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&f.Pull, "pull", "missing", "pull image before running: always, missing, never")
	fs.StringVar(&f.CIDFile, "cidfile", "", "write the container ID to the file")
	fs.StringVar(&f.ShmSize, "shm-size", "", "size of /dev/shm")
	fs.StringVar(&f.Ipc, "ipc", "", "IPC mode: private, shareable, host, none")
	fs.StringVar(&f.Pid, "pid", "", "PID namespace: host")
	fs.StringVar(&f.UTS, "uts", "", "UTS namespace: host")
	fs.StringArrayVar(&f.Networks, "net", nil, "connect to a network: bridge (the default), host, none, container:NAME, or a network's name (repeat for several)")
	fs.StringArrayVar(&f.Networks, "network", nil, "connect to a network: bridge (the default), host, none, container:NAME, or a network's name (repeat for several)")
	fs.StringArrayVar(&f.NetworkAliases, "network-alias", nil, "add a network-scoped alias for the container")
	fs.StringVar(&f.IP, "ip", "", "IPv4 address on the (first) network")
	fs.StringVar(&f.MACAddress, "mac-address", "", "container MAC address on the (first) network")
	fs.StringArrayVarP(&f.Publish, "publish", "p", nil, "publish a container's port to the host ([IP:][HOSTPORT:]PORT[/tcp|udp])")
	fs.BoolVarP(&f.PublishAll, "publish-all", "P", false, "publish all exposed ports to random host ports")
	fs.StringArrayVar(&f.Expose, "expose", nil, "expose a port or a range of ports")
	fs.StringArrayVar(&f.DNS, "dns", nil, "set custom DNS servers")
	fs.StringArrayVar(&f.DNSSearch, "dns-search", nil, "set custom DNS search domains")
	fs.StringArrayVar(&f.DNSOptions, "dns-option", nil, "set DNS options")
	fs.StringArrayVar(&f.AddHosts, "add-host", nil, "add a custom host-to-IP mapping (NAME:IP)")
	fs.StringVar(&f.LogDriver, "log-driver", "json-file", "logging driver: json-file or none")
	fs.StringArrayVar(&f.LogOpts, "log-opt", nil, "log driver options (max-size=SIZE, max-file=N)")
	fs.StringVar(&f.HealthCmd, "health-cmd", "", "command to run to check health")
	fs.DurationVar(&f.HealthInterval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 0s: the image's, else 30s)")
	fs.DurationVar(&f.HealthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 0s: the image's, else 30s)")
	fs.DurationVar(&f.HealthStartPeriod, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.HealthStartInterval, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h) (default 0s: 5s)")
	fs.IntVar(&f.HealthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy (default 0: the image's, else 3)")
	fs.BoolVar(&f.NoHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// markSet notes the flags whose zero value differs from "not given".
func markSet(cmd *cobra.Command, f *containers.Flags) {
	fs := cmd.Flags()
	f.EntrypointSet = fs.Changed("entrypoint")
	f.PidsLimitSet = fs.Changed("pids-limit")
	f.StopTimeoutSet = fs.Changed("stop-timeout")
}

func newCreateCommand(g *globalOptions) *cobra.Command {
	var f containers.Flags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			markSet(cmd, &f)
			f.Detach = true
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := g.create(ctx, client, &f, args, [2]uint{})
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, c.ID)
				return nil
			})
		},
	}
	addCreateFlags(cmd.Flags(), &f)
	return cmd
}

// create parses the flags and creates the container, writing --cidfile.
func (g *globalOptions) create(ctx context.Context, client *containerd.Client, f *containers.Flags, args []string, consoleSize [2]uint) (containers.Created, error) {
	f.DefaultNetwork = g.cfg.CNI.DefaultNetwork
	cfg, hc, err := f.Parse(args[0], args[1:])
	if err != nil {
		return containers.Created{}, usageError{err}
	}
	hc.ConsoleSize = consoleSize
	if f.CIDFile != "" {
		if _, err := os.Stat(f.CIDFile); err == nil {
			return containers.Created{}, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", f.CIDFile)
		}
	}
	runtime, runtimeOptions := g.runtime()
	c, err := containers.Create(ctx, client, containers.CreateOptions{
		Name: f.Name, Config: cfg, HostConfig: hc, Pull: f.Pull, DataRoot: g.cfg.DataRoot,
		Runtime: runtime, RuntimeOptions: runtimeOptions,
		Address:  g.containerdAddress().Path,
		Networks: g.networkConfig(), NetNSDir: g.netnsDir(),
		// As docker's run, the pull's progress goes to stderr: stdout is
		// the container's (or -d's ID).
		Puller: func(ctx context.Context, ref string) error {
			_, err := pullImage(ctx, g, client, ref, g.stderr, false)
			return err
		},
	})
	if err != nil {
		return c, err
	}
	if f.CIDFile != "" {
		if err := os.WriteFile(f.CIDFile, []byte(c.ID), 0o644); err != nil {
			return c, fmt.Errorf("--cidfile: %w", err)
		}
	}
	return c, nil
}

func newRunCommand(g *globalOptions) *cobra.Command {
	var f containers.Flags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			markSet(cmd, &f)
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return g.run(ctx, client, &f, args)
			})
		},
	}
	cmd.Flags().BoolVarP(&f.Detach, "detach", "d", false, "run the container in the background and print its ID")
	addCreateFlags(cmd.Flags(), &f)
	return cmd
}

// run is `berth run`: create, start attached (or detached), wait, and
// end with the container's exit status.
func (g *globalOptions) run(ctx context.Context, client *containerd.Client, f *containers.Flags, args []string) error {
	term, err := g.terminal(f.TTY, f.Interactive, f.Detach)
	if err != nil {
		return err
	}
	c, err := g.create(ctx, client, f, args, term.size())
	if err != nil {
		return err
	}
	if f.Detach {
		if _, err := containers.Start(ctx, client, c.ID, containers.StartOptions{DataRoot: g.cfg.DataRoot}); err != nil {
			return g.startFailed(ctx, client, c.ID, f.AutoRemove, err)
		}
		fmt.Fprintln(g.stdout, c.ID)
		return nil
	}
	return g.attachAndWait(ctx, client, c.ID, f.AutoRemove, term)
}

// startFailed reports a start that failed, removing a --rm container.
func (g *globalOptions) startFailed(ctx context.Context, client *containerd.Client, id string, autoRemove bool, err error) error {
	if autoRemove {
		if rerr := containers.Remove(context.WithoutCancel(ctx), client, id, containers.RemoveOptions{Force: true, DataRoot: g.cfg.DataRoot, Volumes: true}); rerr != nil {
			fmt.Fprintf(g.stderr, "berth: remove container %s: %v\n", id, rerr)
		}
	}
	var exit *containers.ExitError
	if errors.As(err, &exit) {
		fmt.Fprintf(g.stderr, "berth: %v\n", err)
		return statusError{exit.Code}
	}
	return err
}

// attachAndWait starts container id attached to berth's stdio, waits
// for it, and ends with its exit status.
func (g *globalOptions) attachAndWait(ctx context.Context, client *containerd.Client, id string, autoRemove bool, term *terminal) error {
	task, err := containers.Start(ctx, client, id, containers.StartOptions{Streams: term.streams(g), DataRoot: g.cfg.DataRoot, RemoveAfter: autoRemove})
	if err != nil {
		return g.startFailed(ctx, client, id, autoRemove, err)
	}
	stop := term.relay(ctx, task)
	waitCtx, cancel := term.untilDetached(context.WithoutCancel(ctx))
	code, err := task.Wait(waitCtx)
	cancel()
	stop()
	if err != nil && term.wasDetached() {
		// Ctrl-P Ctrl-Q: the container runs on; berth attach finds it.
		return containers.Detached(context.WithoutCancel(ctx), client, id, autoRemove)
	}
	if autoRemove {
		// The restart monitor may have removed it first (it removes a
		// --rm container on its exit as well).
		if rerr := containers.Remove(context.WithoutCancel(ctx), client, id, containers.RemoveOptions{Force: true, DataRoot: g.cfg.DataRoot, Volumes: true}); rerr != nil && !errdefs.IsNotFound(rerr) && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return statusError{code}
	}
	return nil
}
