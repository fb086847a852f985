// Command berth is Berth's front end, docker's everyday commands over
// containerd. This file holds the global flags and the exit codes; each
// command is a thin layer: flags into an options struct, a call into the
// package that owns the noun, output out.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/containerd/log"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/config"
	"github.com/berthrt/berth/daemon"
)

// version is set by the Makefile (-X main.version).
var version = "dev"

// exitBerth is docker's exit status for an error of its own (a bad flag,
// no daemon, a failed call), as opposed to the container's own status.
const exitBerth = 125

// globalOptions are the flags every command takes.
type globalOptions struct {
	address    string
	namespace  string
	configPath string
	debug      bool

	cfg    *config.Config
	stdout io.Writer
	stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs berth with args and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var st statusError
	if errors.As(err, &st) {
		return st.code
	}
	fmt.Fprintf(stderr, "berth: %v\n", err)
	if isUsageError(err) {
		fmt.Fprintln(stderr, "See 'berth --help'.")
	}
	return exitBerth
}

// statusError ends berth with a status of its own (a container's exit
// status, or 126/127 when its command cannot run), having said what there
// was to say already.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError marks a mistake on the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "Docker's everyday commands over containerd",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command needs the config; loading it here means a bad
		// berth.toml is reported once, whatever the command.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return g.setup(cmd) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// No one-letter forms for --address and --namespace: docker's commands
	// use -a and -n for their own flags (ps -a, ps -n, prune -a).
	f := root.PersistentFlags()
	f.StringVar(&g.address, "address", "", "containerd address (default: $CONTAINERD_ADDRESS, berth.toml's address, or berth's own containerd)")
	f.StringVar(&g.namespace, "namespace", config.DefaultNamespace, "containerd namespace (or $CONTAINERD_NAMESPACE, berth.toml's namespace)")
	f.StringVar(&g.configPath, "config", config.DefaultPath, "berth's config file")
	f.BoolVarP(&g.debug, "debug", "D", false, "log what berth does to stderr")
	root.AddCommand(newVersionCommand(g), newInfoCommand(g), newSystemCommand(g),
		newImageCommand(g), newImagesCommand(g), newLoadCommand(g), newTagCommand(g), newRmiCommand(g),
		newImportCommand(g), newSaveCommand(g),
		newPullCommand(g), newPushCommand(g), newLoginCommand(g), newLogoutCommand(g), newSearchCommand(g),
		newHistoryCommand(g), newCommitCommand(g), newBuildCommand(g), newBuilderCommand(g),
		newVolumeCommand(g), newNetworkCommand(g), newLogsCommand(g))
	root.AddCommand(containerCommands(g)...)
	return root
}

// setup loads the config and settles the namespace: the flag, else
// $CONTAINERD_NAMESPACE, else berth.toml's.
func (g *globalOptions) setup(cmd *cobra.Command) error {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return err
	}
	g.cfg = cfg
	if !cmd.Flags().Changed("namespace") {
		g.namespace = cfg.Namespace
		if env := os.Getenv("CONTAINERD_NAMESPACE"); env != "" {
			g.namespace = env
		}
	}
	if g.debug || cfg.Debug {
		if err := log.SetLevel("debug"); err != nil {
			return err
		}
	}
	return nil
}

// connect connects to containerd, starting berth's own when needed.
func (g *globalOptions) connect(ctx context.Context) (*daemon.Conn, error) {
	return daemon.Connect(ctx, g.connectOptions())
}

func (g *globalOptions) connectOptions() daemon.ConnectOptions {
	self, _ := os.Executable()
	return daemon.ConnectOptions{
		Address: g.address, EnvAddress: os.Getenv("CONTAINERD_ADDRESS"),
		Namespace: g.namespace, Config: g.cfg, Self: self, Stderr: g.stderr,
	}
}

// managed is berth's own containerd, for `berth system`. It refuses when
// the address in use is another containerd: berth does not start or stop
// a containerd it does not manage.
func (g *globalOptions) managed() (*daemon.Managed, error) {
	o := g.connectOptions()
	addr := g.containerdAddress()
	if !addr.Managed(g.cfg.Containerd.Socket) {
		return nil, fmt.Errorf("the containerd in use is %s (from %s), which berth does not manage; `berth system start|stop` act on berth's own, at %s: unset that address to use it",
			addr.Path, addr.Source, g.cfg.Containerd.Socket)
	}
	return daemon.NewManaged(g.cfg.Containerd, o.Self), nil
}

// runtime is the runtime type and options of the containers berth
// creates: in berth's own containerd, the berth shim with the options file
// the managed containerd was started with (berth.toml's packing of
// containers into shims; the namespace's default runtime carries no
// options); in another containerd, none: its namespace's default.
func (g *globalOptions) runtime() (string, any) {
	m, err := g.managed()
	if err != nil {
		return "", nil
	}
	return daemon.RuntimeType, m.RuntimeOptions()
}

// containerdAddress is the containerd berth talks to, and where that
// address came from.
func (g *globalOptions) containerdAddress() daemon.Address {
	return daemon.ResolveAddress(g.address, os.Getenv("CONTAINERD_ADDRESS"), g.cfg.Address, g.cfg.Containerd.Socket)
}

// noArgs refuses arguments, naming the command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%q accepts no arguments, got %s", cmd.CommandPath(), strings.Join(args, " "))}
	}
	return nil
}
