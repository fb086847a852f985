package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/specdefault"
)

// globals are runc's global flags.
type globals struct {
	root      string
	log       string
	logFormat string
	debug     bool
	// refused (errSystemdCgroup) until there is a systemd cgroup driver
	systemdCgroup bool

	logFile *os.File     // --log, once opened
	logger  *slog.Logger // set up from the flags above by setupLogging
}

// errSystemdCgroup refuses --systemd-cgroup: accepting it would put the
// container where systemd does not expect it and apply the limits
// systemd does not know about.
var errSystemdCgroup = errors.New("--systemd-cgroup is not supported: berth-runtime has only the cgroupfs driver; " +
	"drop the flag (containerd: SystemdCgroup = false in the runtime's options)")

// withoutCgroups are the commands that touch no container, which
// --systemd-cgroup leaves alone.
var withoutCgroups = map[string]bool{"spec": true, "features": true, "help": true, "completion": true}

// exitError carries a container's exit code out of `run`.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit status " + strconv.Itoa(e.code) }

func run(args []string) int {
	g := &globals{}
	root := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "An OCI runtime: runs containers from OCI bundles, with runc's command line",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", "/run/berth-runtime", "directory for container state")
	pf.StringVar(&g.log, "log", "", "also write errors to this file")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "log debug output")
	pf.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "refused: berth-runtime has only the cgroupfs driver")
	started := time.Now()
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := g.setupLogging(); err != nil {
			return err
		}
		g.logger.Debug("berth-runtime "+cmd.Name(), "args", strings.Join(args, " "), "root", g.root, "pid", os.Getpid())
		if g.systemdCgroup && !withoutCgroups[cmd.Name()] {
			return errSystemdCgroup
		}
		return nil
	}
	defer g.closeLog()
	root.AddCommand(specCmd(), createCmd(g), startCmd(g), runCmd(g), stateCmd(g), killCmd(g), deleteCmd(g), listCmd(g),
		execCmd(g), pauseCmd(g), resumeCmd(g), psCmd(g), updateCmd(g), eventsCmd(g), featuresCmd())
	root.SetArgs(args)
	err := root.Execute()
	if g.logger != nil {
		attrs := []any{"took", time.Since(started).String()}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		g.logger.Debug("berth-runtime done", attrs...)
	}
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	g.report(err)
	var ce codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return 1
}

// codedError is a failure reported as usual that exits with code instead
// of 1: exec's own failures exit 255, as runc's (a process's exit status
// is 0-254 or 128+signal, so a caller such as containerd's shim tells
// "exec failed" from "the program failed" by it).
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

// report writes the error to stderr and, like runc, to --log in its format.
//
// When the container's program could not start, the line is init's reason
// alone ("exec /run.sh: no such file or directory"), as runc prints it:
// tools and tests match that line whole.
func (g *globals) report(err error) {
	if pe := (*libcontainer.ProcessStartError)(nil); errors.As(err, &pe) {
		fmt.Fprintln(os.Stderr, pe.Reason)
	} else {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
	}
	if g.logFile == nil && g.log != "" && g.logger == nil {
		// A usage error stops cobra before the commands' set-up.
		if g.setupLogging() != nil {
			return
		}
	}
	if g.logFile != nil {
		g.logger.Error(err.Error())
	}
}

// logCreated logs, at debug level, what create made.
func logCreated(c *libcontainer.Container) {
	st := c.State()
	slog.Debug("container created", "id", st.ID, "pid", st.InitPid, "bundle", st.Bundle, "cgroup", st.CgroupPath)
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires %s (usage: %s)", cmd.Name(), names, cmd.UseLine())
		}
		return nil
	}
}

func specCmd() *cobra.Command {
	var bundle string
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "write a default config.json in the bundle directory",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "config.json"
			if bundle != "" {
				path = bundle + "/config.json"
			}
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s already exists: remove it first", path)
			}
			b, err := json.MarshalIndent(specdefault.ForHost(cgroups.IsV2()), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", "", "path to the bundle directory")
	return cmd
}

// createFlags are shared by create and run.
type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFds                    int
}

func (f *createFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", "", "path to the bundle directory (default: current directory)")
	fl.StringVar(&f.pidFile, "pid-file", "", "write the init's pid to this file")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master of a terminal container")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "do not use pivot_root (for a rootfs on a ramdisk)")
	fl.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "accepted for runc compatibility")
	fl.IntVar(&f.preserveFds, "preserve-fds", 0, "pass this many fds from 3 on to the container")
}

func (f *createFlags) opts(g *globals, id string) libcontainer.CreateOpts {
	return libcontainer.CreateOpts{
		Root: g.root, ID: id, Bundle: f.bundle, PidFile: f.pidFile,
		ConsoleSocket: f.consoleSocket, NoPivot: f.noPivot, PreserveFds: f.preserveFds,
		// systemd's socket activation and sd_notify pass through, as in runc.
		ListenFds: libcontainer.ListenFdsFromEnv(), NotifySocket: os.Getenv("NOTIFY_SOCKET"),
	}
}

func createCmd(g *globals) *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "create a container, stopped before its program runs",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Create(cmd.Context(), f.opts(g, args[0]))
			if err != nil {
				return err
			}
			logCreated(c)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER_ID",
		Short: "run the program of a created container",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			// Under systemd, start returns once the container says READY=1.
			relay, err := c.StartNotify(cmd.Context(), os.Stderr, os.Getenv("NOTIFY_SOCKET"))
			if err != nil {
				return err
			}
			defer relay.Close()
			return relay.WaitReady(cmd.Context(), c.InitPid())
		},
	}
}

func runCmd(g *globals) *cobra.Command {
	f := &createFlags{}
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER_ID",
		Short: "create and start a container, and wait for it unless -d",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(cmd.Context(), g, f.opts(g, args[0]), detach, keep)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return once the container has started")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

func runContainer(ctx context.Context, g *globals, o libcontainer.CreateOpts, detach, keep bool) error {
	c, code, err := startContainer(ctx, o, detach)
	if err != nil || detach {
		return err
	}
	if !keep {
		if derr := c.Delete(ctx, true, os.Stderr); derr != nil {
			return derr
		}
	}
	return exitError{code}
}

// startContainer creates and starts the container and, unless detach,
// waits for it, relaying signals, or the caller's terminal when the
// process has one and no --console-socket takes it.
func startContainer(ctx context.Context, o libcontainer.CreateOpts, detach bool) (*libcontainer.Container, int, error) {
	var c *libcontainer.Container
	var relay *libcontainer.NotifyRelay
	defer func() { relay.Close() }()
	start := func(ready func()) (waiter, error) {
		var err error
		if c, err = libcontainer.Create(ctx, o); err != nil {
			return nil, err
		}
		logCreated(c)
		ready()
		if relay, err = c.StartNotify(ctx, os.Stderr, o.NotifySocket); err != nil {
			c.Delete(ctx, true, io.Discard)
			return nil, err
		}
		// As runc: -d returns once the container is ready; in the
		// foreground the runtime is the main pid systemd watches. The
		// container runs either way: a failed relay is only a warning.
		relayReady := func(mainPid int) {
			if err := relay.WaitReady(ctx, mainPid); err != nil {
				fmt.Fprintf(os.Stderr, "warning: %v\n", err)
			}
		}
		if detach {
			relayReady(c.InitPid())
		} else {
			go relayReady(os.Getpid())
		}
		return initWaiter{c}, nil
	}
	if !detach && o.ConsoleSocket == "" && wantsTerminal(o.Bundle) {
		code, err := runWithTerminal(func(sock string, size *specs.Box, ready func()) (waiter, error) {
			o.ConsoleSocket, o.ConsoleSize = sock, size
			return start(ready)
		})
		return c, code, err
	}
	sigs, ready, stop := catchSignals(detach)
	defer stop()
	w, err := start(ready)
	if err != nil || detach {
		return c, 0, err
	}
	code, err := waitForwarding(w, sigs)
	return c, code, err
}

// initWaiter lets a container's init be waited for like an exec'd process.
type initWaiter struct{ c *libcontainer.Container }

func (w initWaiter) Wait() (int, error) { return w.c.Wait() }
func (w initWaiter) Pid() int           { return w.c.InitPid() }

func stateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER_ID",
		Short: "print the state of a container as JSON",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(c.OCIState(), "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill CONTAINER_ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to a container's init",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires a container id and an optional signal (usage: %s)", cmd.Name(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				s, err := parseSignal(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			if all {
				return c.KillAll(sig)
			}
			return c.Kill(sig)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to every process of the container")
	return cmd
}

// parseSignal takes KILL, SIGKILL or 9, and 0, which sends nothing but
// checks that the container is running (kill(2)'s signal 0), as runc's.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: numbers go from 0 to 64", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q (try TERM, KILL, HUP or a number)", s)
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [--force] CONTAINER_ID",
		Short: "delete a container and everything it holds",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				if force && errors.Is(err, libcontainer.ErrNotExist) {
					return nil
				}
				return err
			}
			return c.Delete(cmd.Context(), force, os.Stderr)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running or paused container first")
	return cmd
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "list containers",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := libcontainer.List(g.root)
			// As runc: no state root yet is an empty list only at the
			// default root, which the first create makes; a --root that
			// does not exist is a mistake to report.
			if errors.Is(err, os.ErrNotExist) && !cmd.Flags().Changed("root") {
				cs, err = nil, nil
			}
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), cs, format, quiet)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only ids")
	return cmd
}

// listEntry is one container in `list --format json`, with runc's keys in
// runc's order (pid before status), which scripts match as text.
type listEntry struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     string            `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

func printList(w io.Writer, cs []*libcontainer.Container, format string, quiet bool) error {
	if quiet {
		for _, c := range cs {
			fmt.Fprintln(w, c.ID())
		}
		return nil
	}
	switch format {
	case "json":
		states := make([]listEntry, 0, len(cs))
		for _, c := range cs {
			s := c.OCIState()
			states = append(states, listEntry{
				Version: s.Version, ID: s.ID, Pid: s.Pid, Status: string(s.Status), Bundle: s.Bundle,
				Rootfs: s.Rootfs, Created: s.Created, Annotations: s.Annotations, Owner: s.Owner,
			})
		}
		return json.NewEncoder(w).Encode(states)
	case "table":
		tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
		fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
		for _, c := range cs {
			s := c.OCIState()
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created, s.Owner)
		}
		return tw.Flush()
	}
	return fmt.Errorf("invalid --format %q: use table or json", format)
}
