package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/libcontainer/cgroups"
)

// execFlags are runc's `exec` flags.
type execFlags struct {
	process, cwd, user, consoleSocket, pidFile string
	env, caps, cgroups                         []string
	gids                                       []int
	tty, detach, noNewPrivs, ignorePaused      bool
	preserveFds                                int
	processLabel, apparmor                     string
}

func execCmd(g *globals) *cobra.Command {
	f := &execFlags{}
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARG...]]",
		Short: "run a new process inside a running container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || (len(args) < 2 && f.process == "") {
				return fmt.Errorf("%q requires a container id and a command, or -p process.json (usage: %s)", cmd.Name(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			err := execIn(cmd, g, f, args)
			var ee exitError
			if err != nil && !errors.As(err, &ee) {
				return codedError{code: 255, err: err}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after the command belong to it
	fl.StringVarP(&f.process, "process", "p", "", "path to a process.json (runtime-spec process); other process flags then do not apply")
	fl.StringVar(&f.cwd, "cwd", "", "current working directory in the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (NAME=value), repeatable")
	fl.StringVarP(&f.user, "user", "u", "", "user as uid[:gid]")
	fl.IntSliceVarP(&f.gids, "additional-gids", "g", nil, "additional gids, repeatable")
	fl.StringArrayVarP(&f.caps, "cap", "c", nil, "add a capability (CAP_NET_ADMIN), repeatable")
	fl.BoolVarP(&f.tty, "tty", "t", false, "give the process a terminal")
	fl.BoolVarP(&f.detach, "detach", "d", false, "return once the process has started")
	fl.BoolVar(&f.noNewPrivs, "no-new-privs", false, "set no_new_privs on the process")
	fl.BoolVar(&f.ignorePaused, "ignore-paused", false, "start the process even if the container is paused")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master (with -t)")
	fl.StringVar(&f.pidFile, "pid-file", "", "write the process's pid to this file")
	fl.IntVar(&f.preserveFds, "preserve-fds", 0, "pass this many fds from 3 on to the process")
	fl.StringVar(&f.processLabel, "process-label", "", "SELinux label for the process (refused where SELinux is not enabled)")
	fl.StringVar(&f.apparmor, "apparmor", "", "AppArmor profile for the process (refused where AppArmor is not enabled)")
	fl.StringArrayVar(&f.cgroups, "cgroup", nil, "run in a sub-cgroup of the container's: PATH, or CONTROLLER[,CONTROLLER]:PATH (v1), repeatable")
	return cmd
}

func execIn(cmd *cobra.Command, g *globals, f *execFlags, args []string) error {
	c, err := libcontainer.Load(g.root, args[0])
	if err != nil {
		return err
	}
	p, err := f.buildProcess(c, args[1:])
	if err != nil {
		return err
	}
	return runExec(cmd, c, p, f)
}

// buildProcess starts from the container's own process (as runc does) and
// applies the flags; -p replaces it with the given process.json.
func (f *execFlags) buildProcess(c *libcontainer.Container, args []string) (*specs.Process, error) {
	if f.process != "" {
		b, err := os.ReadFile(f.process)
		if err != nil {
			return nil, fmt.Errorf("read --process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("parse --process %s: %w", f.process, err)
		}
		return &p, nil
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = args
	p.Env = append(append([]string(nil), p.Env...), f.env...)
	p.Terminal = f.tty
	p.NoNewPrivileges = p.NoNewPrivileges || f.noNewPrivs
	if f.cwd != "" {
		p.Cwd = f.cwd
	}
	if f.user != "" {
		if err := parseUser(f.user, &p.User); err != nil {
			return nil, err
		}
	}
	if len(f.gids) > 0 {
		p.User.AdditionalGids = nil
		for _, g := range f.gids {
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
		}
	}
	addCaps(&p, f.caps)
	// libcontainer refuses a label the host cannot apply.
	if f.apparmor != "" {
		p.ApparmorProfile = f.apparmor
	}
	if f.processLabel != "" {
		p.SelinuxLabel = f.processLabel
	}
	return &p, nil
}

// parseUser takes uid or uid:gid, as runc's -u does.
func parseUser(s string, u *specs.User) error {
	uidText, gidText, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidText, 10, 32)
	if err != nil {
		return fmt.Errorf("invalid --user %q: want uid or uid:gid (numbers)", s)
	}
	u.UID = uint32(uid)
	if hasGid {
		gid, err := strconv.ParseUint(gidText, 10, 32)
		if err != nil {
			return fmt.Errorf("invalid --user %q: want uid or uid:gid (numbers)", s)
		}
		u.GID = uint32(gid)
	}
	return nil
}

// addCaps adds capabilities to the bounding, effective and permitted sets,
// and to the ambient set only when the inheritable set is in use (ambient
// needs inheritable), as runc exec --cap does.
func addCaps(p *specs.Process, caps []string) {
	if len(caps) == 0 {
		return
	}
	c := &specs.LinuxCapabilities{}
	if p.Capabilities != nil {
		copied := *p.Capabilities
		c = &copied
	}
	c.Bounding = append(append([]string(nil), c.Bounding...), caps...)
	c.Effective = append(append([]string(nil), c.Effective...), caps...)
	c.Permitted = append(append([]string(nil), c.Permitted...), caps...)
	if c.Inheritable != nil {
		c.Ambient = append(append([]string(nil), c.Ambient...), caps...)
	}
	p.Capabilities = c
}

func runExec(cmd *cobra.Command, c *libcontainer.Container, p *specs.Process, f *execFlags) error {
	ctx := cmd.Context()
	sub, err := cgroups.ParseSubCgroups(f.cgroups)
	if err != nil {
		return err
	}
	o := libcontainer.ExecOpts{
		Process: p, ConsoleSocket: f.consoleSocket, PidFile: f.pidFile,
		PreserveFds: f.preserveFds, IgnorePaused: f.ignorePaused, SubCgroups: sub,
	}
	if p.Terminal && f.consoleSocket == "" {
		if f.detach {
			return fmt.Errorf("a detached process with a terminal needs --console-socket to hand the terminal to")
		}
		code, err := runWithTerminal(func(sock string, size *specs.Box, ready func()) (waiter, error) {
			o.ConsoleSocket = sock
			if p.ConsoleSize == nil {
				p.ConsoleSize = size
			}
			ready()
			return c.Exec(ctx, o)
		})
		if err != nil {
			return err
		}
		return exitError{code}
	}
	sigs, ready, stop := catchSignals(f.detach)
	defer stop()
	ready()
	proc, err := c.Exec(ctx, o)
	if err != nil || f.detach {
		return err
	}
	code, err := waitForwarding(proc, sigs)
	if err != nil {
		return err
	}
	return exitError{code}
}
