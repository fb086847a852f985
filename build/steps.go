package build

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/images"
)

// env is what a step's words expand over: the image's ENV, then the ARGs
// in scope that ENV does not set.
func (s *state) env() []string {
	env := append([]string(nil), s.img.Config.Env...)
	for k, v := range s.args {
		if !hasEnv(env, k) {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// expand expands the words of cmd over st's environment, as the shell
// lexer does.
func (b *builder) expand(st *state, cmd instructions.Command) error {
	e, ok := cmd.(instructions.SupportsSingleWordExpansion)
	if !ok {
		return nil
	}
	lex, env := shell.NewLex(b.df.Escape), shell.EnvsFromSlice(st.env())
	return e.Expand(func(word string) (string, error) {
		v, _, err := lex.ProcessWord(word, env)
		return v, err
	})
}

// command runs one instruction on st, from the cache when it can.
func (b *builder) command(ctx context.Context, st *state, cmd instructions.Command) (*state, error) {
	if a, ok := cmd.(*instructions.ArgCommand); ok {
		// ARG changes only what later steps see: no image, no history.
		next := st.clone()
		env := shell.EnvsFromSlice(st.env())
		for _, kv := range a.Args {
			next.args[kv.Key] = b.argValue(kv, env)
		}
		fmt.Fprintf(b.out, " ---> %s\n", shortID(next.id))
		return next, nil
	}
	if err := b.expand(st, cmd); err != nil {
		return nil, err
	}
	var sources string
	if c, ok := specOf(cmd); ok {
		h, err := b.sourcesHash(ctx, c)
		if err != nil {
			return nil, err
		}
		sources = h
	}
	key := cacheKey(st.id, text(cmd), st.args, sources)
	if !b.opts.NoCache {
		if next, ok := b.cached(ctx, st, key); ok {
			_, isCmd := cmd.(*instructions.CmdCommand)
			next.cmdSet = next.cmdSet || isCmd
			fmt.Fprintf(b.out, " ---> Using cache\n ---> %s\n", shortID(next.id))
			return next, nil
		}
	}
	next := st.clone()
	layer, err := b.apply(ctx, next, cmd)
	if err != nil {
		return nil, err
	}
	next.img.History = append(next.img.History, ocispec.History{Created: now(), CreatedBy: createdBy(st, cmd), EmptyLayer: !layer})
	next.img.Created = now()
	if err := b.record(ctx, next, key); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, " ---> %s\n", shortID(next.id))
	return next, nil
}

// createdBy is a step's history CREATED BY: the instruction as written,
// RUN's with the command it ran.
func createdBy(st *state, cmd instructions.Command) string {
	if r, ok := cmd.(*instructions.RunCommand); ok {
		return "RUN " + strings.Join(runArgs(st, &r.ShellDependantCmdLine), " ")
	}
	return text(cmd)
}

// apply does cmd to st; it says whether cmd made a layer.
func (b *builder) apply(ctx context.Context, st *state, cmd instructions.Command) (bool, error) {
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return true, b.run(ctx, st, c)
	case *instructions.CopyCommand, *instructions.AddCommand:
		return true, b.copy(ctx, st, c)
	case *instructions.WorkdirCommand:
		if err := b.metadata(st, cmd); err != nil {
			return false, err
		}
		return b.workdir(ctx, st)
	}
	return false, b.metadata(st, cmd)
}

// metadata applies an instruction that changes only the config.
func (b *builder) metadata(st *state, cmd instructions.Command) error {
	cfg := &st.img.Config
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = images.SetEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.img.Author = c.Maintainer
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = path.Join("/", cfg.WorkingDir, c.Path)
		if path.IsAbs(c.Path) {
			cfg.WorkingDir = path.Clean(c.Path)
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.CmdCommand:
		cfg.Cmd, st.cmdSet = commandLine(st, &c.ShellDependantCmdLine), true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = commandLine(st, &c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(append([]string(nil), cfg.OnBuild...), c.Expression)
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
	default:
		return fmt.Errorf("instruction %s is not supported: %w", cmd.Name(), errdefs.ErrNotImplemented)
	}
	return nil
}

// shellOf is the shell of a shell-form command: SHELL's, else /bin/sh -c.
func shellOf(st *state) []string {
	if len(st.img.Config.Shell) > 0 {
		return st.img.Config.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// commandLine is CMD's or ENTRYPOINT's argv: exec form as written, shell
// form through the shell.
func commandLine(st *state, c *instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	return append(append([]string(nil), shellOf(st)...), strings.Join(c.CmdLine, " "))
}

// onBuild runs the ONBUILD triggers of a stage's base image, as docker
// does, and leaves the new image without them.
func (b *builder) onBuild(ctx context.Context, st *state) (*state, error) {
	triggers := st.img.Config.OnBuild
	if len(triggers) == 0 {
		return st, nil
	}
	fmt.Fprintf(b.out, "# Executing %d build trigger(s)\n", len(triggers))
	st = st.clone()
	st.img.Config.OnBuild = nil
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil || len(res.AST.Children) != 1 {
			return nil, fmt.Errorf("ONBUILD trigger %q of the base image: cannot parse it: %v", t, err)
		}
		cmd, err := instructions.ParseCommand(res.AST.Children[0])
		if err != nil {
			return nil, fmt.Errorf("ONBUILD trigger %q of the base image: %w", t, err)
		}
		fmt.Fprintf(b.out, " ---> Running trigger %s\n", t)
		if st, err = b.command(ctx, st, cmd); err != nil {
			return nil, fmt.Errorf("ONBUILD trigger %q of the base image: %w", t, err)
		}
	}
	return st, nil
}
