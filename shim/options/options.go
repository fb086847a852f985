// Package options reads the runtime options containerd passes to the shim
// and keeps them in the bundle, where `shim delete` finds them again.
//
// containerd sends runc's Options (io.containerd.runc.v1.Options) for
// runtimes configured like runc, or the generic runtimeoptions with a TOML
// body or file (CRI does that for any other runtime type). Berth honours
// the fields that mean something to an in-process runtime (Root,
// NoPivotRoot, IoUid/IoGid, ShimCgroup), and Berth's own RuntimeBinary,
// ContainersPerShim and ShimLinger in the TOML form, and ignores the rest;
// an option type it does not know is ignored too, never fatal.
package options

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/berthrt/berth/shim/wire"
)

// DefaultRoot is the state root when the options name none; the
// containerd namespace is appended, as runc's shim does.
const DefaultRoot = "/run/containerd/berth"

// fileName is where the options are kept in a container's bundle.
const fileName = "berth-options.json"

// Options are the runtime options the shim acts on.
type Options struct {
	// Root is libcontainer's state root (without the namespace).
	Root        string `json:"root,omitempty" toml:"Root"`
	NoPivotRoot bool   `json:"no_pivot_root,omitempty" toml:"NoPivotRoot"`
	// IoUID and IoGID own the stdio pipes (0 is root, the default).
	IoUID uint32 `json:"io_uid,omitempty" toml:"IoUid"`
	IoGID uint32 `json:"io_gid,omitempty" toml:"IoGid"`
	// ShimCgroup is a cgroup the shim process is moved into.
	ShimCgroup string `json:"shim_cgroup,omitempty" toml:"ShimCgroup"`
	// RuntimeBinary is the berth-runtime binary (a path, or a name looked
	// up on PATH) that containers' init and exec'd processes start from;
	// empty means berth-runtime beside the shim, else on PATH (see
	// process.FindRuntime). Berth's own option, the TOML options only:
	// runc's BinaryName names runc (a configuration copied from runc's
	// keeps working), and runc cannot be Berth's init.
	RuntimeBinary string `json:"runtime_binary,omitempty" toml:"RuntimeBinary"`
	// BinaryName is runc's option naming the runtime binary: honoured
	// when it names a berth-runtime, an error when it names nothing
	// (process.RuntimeFor).
	BinaryName string `json:"binary_name,omitempty" toml:"BinaryName"`
	// ContainersPerShim is how many containers without a shim group share
	// one shim process (shim/pack); 1 gives each its own, 0 the default.
	// Berth's own option: the TOML options only.
	ContainersPerShim int `json:"containers_per_shim,omitempty" toml:"ContainersPerShim"`
	// ShimLinger is how long a shared shim whose last container was
	// deleted stays up for the next one of its namespace (a duration,
	// "2s"; "0s" makes it leave at once). Containers started one after
	// another then skip starting a shim process. Empty is
	// DefaultShimLinger. Berth's own option: the TOML options only.
	ShimLinger string `json:"shim_linger,omitempty" toml:"ShimLinger"`
	// Ignored lists the options that were given but do not apply, for
	// the log.
	Ignored []string `json:"-" toml:"-"`
}

// DefaultShimLinger is ShimLinger when the options give none.
const DefaultShimLinger = 2 * time.Second

// Linger is ShimLinger as a duration; FromAny has checked it.
func (o *Options) Linger() time.Duration {
	d, err := parseLinger(o.ShimLinger)
	if err != nil {
		return DefaultShimLinger
	}
	return d
}

func parseLinger(s string) (time.Duration, error) {
	if s == "" {
		return DefaultShimLinger, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	if err != nil {
		return 0, fmt.Errorf("ShimLinger = %q: want a duration such as \"2s\", or \"0s\" for none: %w", s, err)
	}
	return d, nil
}

// StateRoot is libcontainer's root for the namespace ns.
func (o *Options) StateRoot(ns string) string {
	root := o.Root
	if root == "" {
		root = DefaultRoot
	}
	return filepath.Join(root, ns)
}

// The type URLs of the two kinds of options containerd sends.
const (
	RuncTypeURL    = "containerd.runc.v1.Options"
	GenericTypeURL = "runtimeoptions.v1.Options"
)

// Decode reads runtime options given as a google.protobuf.Any's type URL
// and value. It fails only on an option type it knows but cannot read;
// no value or an unknown type gives the defaults. The messages are read
// field by field (shim/wire says why); the field numbers are those of
// runc's oci.proto and containerd's runtimeoptions api.proto.
func Decode(typeURL string, value []byte) (*Options, error) {
	o := &Options{}
	if len(value) == 0 {
		return o, nil
	}
	var err error
	switch typeURL {
	case RuncTypeURL:
		err = wire.Fields(value, func(f wire.Field) error { return fromRunc(o, f) })
	case GenericTypeURL:
		var path string
		var body []byte
		err = wire.Fields(value, func(f wire.Field) error {
			switch f.Num {
			case 2:
				path = string(f.Bytes)
			case 3:
				body = f.Bytes
			}
			return nil
		})
		if err == nil {
			err = fromTOML(o, path, body)
		}
	default:
		o.Ignored = append(o.Ignored, "options of unknown type "+typeURL)
	}
	if err != nil {
		return nil, fmt.Errorf("runtime options (%s): %w", typeURL, err)
	}
	return o, nil
}

// fromRunc takes a field of runc's Options: those that mean something to
// an in-process runtime, and the names of those that do not, for the log.
func fromRunc(o *Options, f wire.Field) error {
	switch f.Num {
	case 1:
		o.NoPivotRoot = f.Varint != 0
	case 3:
		o.ShimCgroup = string(f.Bytes)
	case 4:
		o.IoUID = uint32(f.Varint)
	case 5:
		o.IoGID = uint32(f.Varint)
	case 6:
		o.BinaryName = string(f.Bytes)
	case 7:
		o.Root = string(f.Bytes)
	default:
		if name, ok := runcIgnored[f.Num]; ok && (f.Varint != 0 || len(f.Bytes) > 0) {
			o.Ignored = append(o.Ignored, name)
		}
	}
	return nil
}

// runcIgnored names runc's options that do not apply to Berth.
var runcIgnored = map[protowire.Number]string{
	2:  "NoNewKeyring",
	9:  "SystemdCgroup",
	10: "CriuImagePath",
	11: "CriuWorkPath",
}

// fromTOML reads the generic options' TOML body, or the file at path when
// there is no body, with runc's option names.
func fromTOML(o *Options, path string, body []byte) error {
	if len(body) == 0 && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("runtime options file: %w", err)
		}
		body = b
	}
	if len(body) == 0 {
		return nil
	}
	if err := toml.Unmarshal(body, o); err != nil {
		return err
	}
	if _, err := parseLinger(o.ShimLinger); err != nil {
		return err
	}
	return nil
}

// Write keeps o in the bundle.
func Write(bundle string, o *Options) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("save runtime options: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, fileName), b, 0o600); err != nil {
		return fmt.Errorf("save runtime options: %w", err)
	}
	return nil
}

// Read returns the options kept in the bundle, or the defaults if there
// are none.
func Read(bundle string) (*Options, error) {
	b, err := os.ReadFile(filepath.Join(bundle, fileName))
	if errors.Is(err, os.ErrNotExist) {
		return &Options{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read runtime options: %w", err)
	}
	var o Options
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("read runtime options: %w", err)
	}
	return &o, nil
}
