package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthrt/berth/config"
)

// ConnectOptions say where to find containerd.
type ConnectOptions struct {
	// Address is the --address flag, EnvAddress $CONTAINERD_ADDRESS.
	Address    string
	EnvAddress string
	// Namespace is the containerd namespace of the client's calls.
	Namespace string
	Config    *config.Config
	// Self is the berth executable (os.Executable), for finding the
	// managed containerd's binary.
	Self string
	// Stderr receives the one line saying a containerd was started.
	Stderr io.Writer
	// NoStart makes Connect fail instead of starting a containerd.
	NoStart bool
}

// Conn is a client of the containerd berth uses.
type Conn struct {
	*containerd.Client
	Address Address
	// Managed is set when this is the containerd berth manages; Pid is
	// its process then.
	Managed *Managed
	Pid     int
	// Started says Connect started it.
	Started bool
}

// answerTimeout bounds the check that a containerd answers.
const answerTimeout = 5 * time.Second

// Connect connects to the containerd at the resolved address. When that
// is the managed containerd's socket, nothing answers there and berth
// runs as root, it starts the managed containerd first and says so once
// on Stderr.
func Connect(ctx context.Context, opts ConnectOptions) (*Conn, error) {
	cfg := opts.Config
	addr := ResolveAddress(opts.Address, opts.EnvAddress, cfg.Address, cfg.Containerd.Socket)
	conn := &Conn{Address: addr}
	log.G(ctx).Debugf("containerd address %s (from %s), namespace %s", addr.Path, addr.Source, opts.Namespace)
	if addr.Managed(cfg.Containerd.Socket) {
		conn.Managed = NewManaged(cfg.Containerd, opts.Self)
		pid, err := conn.Managed.runningPid()
		if err != nil {
			return nil, err
		}
		conn.Pid = pid
	}
	if !answers(ctx, addr.Path) {
		if err := conn.start(ctx, opts); err != nil {
			return nil, err
		}
	}
	client, err := containerd.New(addr.Path, containerd.WithDefaultNamespace(opts.Namespace), containerd.WithTimeout(answerTimeout))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", addr.Path, err)
	}
	conn.Client = client
	vctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd at %s (from %s) does not answer: %w", addr.Path, addr.Source, err)
	}
	if conn.Managed != nil {
		if err := defaultRuntime(ctx, client, opts.Namespace); err != nil {
			client.Close()
			return nil, err
		}
	}
	return conn, nil
}

// start starts the managed containerd for Connect, or says why it cannot.
func (c *Conn) start(ctx context.Context, opts ConnectOptions) error {
	switch {
	case c.Managed == nil:
		return fmt.Errorf("nothing answers at %s (from %s): start that containerd, or leave the address unset to use berth's own", c.Address.Path, c.Address.Source)
	case opts.NoStart:
		return fmt.Errorf("berth's containerd is not running (socket %s): start it with `berth system start`", c.Address.Path)
	case os.Geteuid() != 0:
		return fmt.Errorf("berth's containerd is not running (socket %s), and only root can start it: run berth as root, or point --address at a containerd you can use", c.Address.Path)
	}
	log.G(ctx).Debugf("nothing answers at %s: starting berth's containerd", c.Address.Path)
	pid, started, err := c.Managed.Start(ctx)
	if err != nil {
		return err
	}
	c.Pid, c.Started = pid, started
	if started && opts.Stderr != nil {
		fmt.Fprintf(opts.Stderr, "berth: started containerd (pid %d, socket %s)\n", pid, c.Address.Path)
	}
	return nil
}

// defaultRuntimeLabel is the namespace label containerd's client reads
// for the runtime of containers that name none.
const defaultRuntimeLabel = defaults.DefaultRuntimeNSLabel

// defaultRuntime makes the berth runtime the default of namespace ns in
// the managed containerd, unless the namespace already names one.
func defaultRuntime(ctx context.Context, client *containerd.Client, ns string) error {
	store := client.NamespaceService()
	labels, err := store.Labels(ctx, ns)
	if errdefs.IsNotFound(err) {
		err = store.Create(ctx, ns, map[string]string{defaultRuntimeLabel: RuntimeType})
		if errdefs.IsAlreadyExists(err) {
			return nil // another berth command made it meanwhile
		}
	} else if err == nil && labels[defaultRuntimeLabel] == "" {
		err = store.SetLabel(ctx, ns, defaultRuntimeLabel, RuntimeType)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("make %s the default runtime of namespace %q: %w", RuntimeType, ns, err)
	}
	return err
}
