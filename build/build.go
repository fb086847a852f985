package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/containers"
	"github.com/berthrt/berth/images"
)

// Options say what to build and how.
type Options struct {
	// Dockerfile is the Dockerfile's text; DockerfileName names it in
	// errors ("Dockerfile" when empty).
	Dockerfile     []byte
	DockerfileName string
	// ContextDir is the build context; "" is none (a Dockerfile on stdin):
	// COPY and ADD of local files then fail.
	ContextDir string
	Tags       []string          // -t, each REPOSITORY[:TAG]
	BuildArgs  map[string]string // --build-arg
	Labels     map[string]string // --label, set on the final image
	Target     string            // --target: the stage to stop at
	NoCache    bool              // --no-cache
	Pull       bool              // --pull: pull every base image, even one that is here
	// Network is the RUN steps' network, as `berth run --net`'s: none,
	// host, or a network's name; "" (or "default") is docker's default
	// for a build, the bridge network. Networks, NetNSDir and DataRoot say where networks,
	// a step's namespace and its hosts and resolv.conf live, as
	// containers.CreateOptions'.
	Network     string
	Networks    cni.Config
	NetNSDir    string
	DataRoot    string
	Snapshotter string // "" is containerd's default
	// Runtime and RuntimeOptions are the RUN containers' runtime (berth's
	// shim in berth's containerd), as containers.CreateOptions'.
	Runtime        string
	RuntimeOptions any
	// Puller pulls a base image that is not here (or every one, Pull).
	Puller func(ctx context.Context, ref string) error
	// Out receives the step progress and the RUN steps' output; Quiet
	// leaves the RUN output out (a failing step still shows its last lines).
	Out   io.Writer
	Quiet bool
}

// Result is the image built.
type Result struct {
	ID   digest.Digest
	Tags []string // the full names stored
}

// state is a stage's image as it stands after a step.
type state struct {
	img    dockerspec.DockerOCIImage
	layers []ocispec.Descriptor
	// id is the config digest of img as stored after the last step (the
	// cache's parent); the base image's ID, or "scratch", after FROM.
	id   digest.Digest
	args map[string]string // the ARGs in scope and their values
	// cmdSet says CMD was set in this stage: an ENTRYPOINT resets only an
	// inherited CMD, as docker does.
	cmdSet bool
}

func (s *state) clone() *state {
	n := *s
	n.img.Config.Env = append([]string(nil), s.img.Config.Env...)
	n.img.History = append([]ocispec.History(nil), s.img.History...)
	n.img.RootFS.DiffIDs = append([]digest.Digest(nil), s.img.RootFS.DiffIDs...)
	n.layers = append([]ocispec.Descriptor(nil), s.layers...)
	n.args = make(map[string]string, len(s.args))
	for k, v := range s.args {
		n.args[k] = v
	}
	n.img.Config.Labels = cloneMap(s.img.Config.Labels)
	n.img.Config.ExposedPorts = cloneMap(s.img.Config.ExposedPorts)
	n.img.Config.Volumes = cloneMap(s.img.Config.Volumes)
	return &n
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	n := make(map[string]V, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

// builder is one build.
type builder struct {
	client      *containerd.Client
	opts        Options
	df          *Dockerfile
	snapshotter string
	out         io.Writer
	context     *buildContext
	stages      []*state // the stages built so far, by index
	step, steps int
	metaArgs    map[string]string
	fromImages  map[string]*state     // COPY --from images, read once
	downloads   map[string]downloaded // ADD URLs, fetched once
}

// Build builds the Dockerfile in opts and names the image each of
// opts.Tags (untagged, under its ID, without any).
func Build(ctx context.Context, client *containerd.Client, opts Options) (Result, error) {
	name := opts.DockerfileName
	if name == "" {
		name = "Dockerfile"
	}
	df, err := Parse(name, opts.Dockerfile)
	if err != nil {
		return Result{}, err
	}
	var tags []string
	for _, t := range opts.Tags {
		n, err := images.NormalizeReference(t)
		if err != nil {
			return Result{}, fmt.Errorf("invalid tag %q: %w", t, err)
		}
		tags = append(tags, n)
	}
	b := &builder{client: client, opts: opts, df: df, snapshotter: opts.Snapshotter, out: opts.Out}
	if b.snapshotter == "" {
		b.snapshotter = defaults.DefaultSnapshotter
	}
	if b.out == nil {
		b.out = io.Discard
	}
	if b.opts.Network == "" || b.opts.Network == "default" { // docker's word for it
		b.opts.Network = containers.DefaultNetwork
	}
	if err := b.stepNetwork().Check(); err != nil {
		return Result{}, err
	}
	if b.context, err = openContext(opts.ContextDir); err != nil {
		return Result{}, err
	}
	last, err := b.lastStage()
	if err != nil {
		return Result{}, err
	}
	for _, s := range df.Stages[:last+1] {
		b.steps += 1 + len(s.Commands)
	}
	b.metaArgs = map[string]string{}
	for _, a := range df.MetaArgs {
		for _, kv := range a.Args {
			b.metaArgs[kv.Key] = b.argValue(kv, nil)
		}
	}

	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("build: take a lease: %w", err)
	}
	defer done(context.WithoutCancel(ctx))
	defer func() {
		for _, d := range b.downloads {
			os.Remove(d.path)
		}
	}()

	var st *state
	for i := range df.Stages[:last+1] {
		if st, err = b.buildStage(ctx, &df.Stages[i]); err != nil {
			return Result{}, err
		}
		b.stages = append(b.stages, st)
	}
	return b.finish(ctx, st, tags)
}

// lastStage is the index of --target's stage, else the last.
func (b *builder) lastStage() (int, error) {
	if b.opts.Target == "" {
		return len(b.df.Stages) - 1, nil
	}
	if i, ok := instructions.HasStage(b.df.Stages, b.opts.Target); ok {
		return i, nil
	}
	return 0, fmt.Errorf("target stage %q could not be found in %s: %w", b.opts.Target, b.df.Name, errdefs.ErrNotFound)
}

// argValue is an ARG's value: --build-arg's, else its default expanded
// over env, else the global ARG's.
func (b *builder) argValue(kv instructions.KeyValuePairOptional, env shell.EnvGetter) string {
	if v, ok := b.opts.BuildArgs[kv.Key]; ok {
		return v
	}
	if kv.Value != nil {
		if env == nil {
			env = shell.EnvsFromSlice(envList(b.metaArgs))
		}
		if v, _, err := shell.NewLex(b.df.Escape).ProcessWord(*kv.Value, env); err == nil {
			return v
		}
		return *kv.Value
	}
	return b.metaArgs[kv.Key]
}

// printStep writes docker's "Step N/M : INSTRUCTION".
func (b *builder) printStep(text string) {
	b.step++
	fmt.Fprintf(b.out, "Step %d/%d : %s\n", b.step, b.steps, text)
}

// finish stores the last stage's image (with --label) under each tag.
func (b *builder) finish(ctx context.Context, st *state, tags []string) (Result, error) {
	if len(b.opts.Labels) > 0 {
		st = st.clone()
		if st.img.Config.Labels == nil {
			st.img.Config.Labels = map[string]string{}
		}
		for k, v := range b.opts.Labels {
			st.img.Config.Labels[k] = v
		}
	}
	manifest, id, err := images.WriteImage(ctx, b.client, st.img, st.layers, nil)
	if err != nil {
		return Result{}, fmt.Errorf("build: store the image: %w", err)
	}
	names := tags
	if len(names) == 0 {
		names = []string{id.String()}
	}
	for _, n := range names {
		if err := images.NameImage(ctx, b.client, n, manifest, b.snapshotter); err != nil {
			return Result{}, fmt.Errorf("build: %w", err)
		}
	}
	fmt.Fprintf(b.out, "Successfully built %s\n", images.ShortID(id))
	for _, t := range tags {
		fmt.Fprintf(b.out, "Successfully tagged %s\n", images.FamiliarName(t))
	}
	return Result{ID: id, Tags: tags}, nil
}

// from is the state a stage starts from: scratch, an earlier stage, or an
// image (pulled when missing, or always with --pull).
func (b *builder) from(ctx context.Context, stage *instructions.Stage) (*state, error) {
	base, _, err := shell.NewLex(b.df.Escape).ProcessWord(stage.BaseName, shell.EnvsFromSlice(envList(b.metaArgs)))
	if err != nil {
		return nil, b.df.errorAt(lineOf(stage.Location), err)
	}
	if stage.Platform != "" {
		p, _, err := shell.NewLex(b.df.Escape).ProcessWord(stage.Platform, shell.EnvsFromSlice(envList(b.metaArgs)))
		if err == nil {
			var spec ocispec.Platform
			if spec, err = platforms.Parse(p); err == nil && !platforms.Default().Match(spec) {
				err = fmt.Errorf("--platform=%s: berth builds for the host's platform, %s, only: %w", p, platforms.DefaultString(), errdefs.ErrNotImplemented)
			}
		}
		if err != nil {
			return nil, b.df.errorAt(lineOf(stage.Location), err)
		}
	}
	if strings.EqualFold(base, "scratch") {
		p := platforms.DefaultSpec()
		st := &state{id: "scratch", args: map[string]string{}}
		st.img.Platform = ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
		st.img.RootFS.Type = "layers"
		st.img.Config.Env = []string{"PATH=" + defaultPath}
		return st, nil
	}
	if i, ok := instructions.HasStage(b.df.Stages[:len(b.stages)], base); ok {
		st := b.stages[i].clone()
		st.args, st.cmdSet = map[string]string{}, false
		return st, nil
	}
	stored, err := b.baseImage(ctx, base)
	if err != nil {
		return nil, b.df.errorAt(lineOf(stage.Location), err)
	}
	st := &state{id: stored.ID, layers: stored.Layers, args: map[string]string{}}
	if err := json.Unmarshal(stored.Config, &st.img); err != nil {
		return nil, fmt.Errorf("base image %s: parse its config: %w", base, err)
	}
	// A base without PATH (an imported rootfs) gets docker's, as
	// BuildKit's stages do: for the RUN steps and in the image built.
	if !hasEnv(st.img.Config.Env, "PATH") {
		st.img.Config.Env = append(st.img.Config.Env, "PATH="+defaultPath)
	}
	return st, nil
}

// defaultPath is the PATH of a stage FROM scratch, docker's.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseImage finds the image ref, pulling it when it is not here or --pull.
func (b *builder) baseImage(ctx context.Context, ref string) (images.Stored, error) {
	if !b.opts.Pull {
		s, err := images.ReadImage(ctx, b.client, ref)
		if err == nil || !errdefs.IsNotFound(err) || b.opts.Puller == nil {
			return s, err
		}
	}
	if b.opts.Puller == nil {
		return images.Stored{}, fmt.Errorf("base image %s: --pull needs a registry: %w", ref, errdefs.ErrInvalidArgument)
	}
	if err := b.opts.Puller(ctx, ref); err != nil {
		return images.Stored{}, fmt.Errorf("base image %s: %w", ref, err)
	}
	return images.ReadImage(ctx, b.client, ref)
}

// buildStage runs a stage's FROM, its base's ONBUILD triggers and its
// commands.
func (b *builder) buildStage(ctx context.Context, stage *instructions.Stage) (*state, error) {
	b.printStep(stage.SourceCode)
	st, err := b.from(ctx, stage)
	if err != nil {
		return nil, err
	}
	if st, err = b.onBuild(ctx, st); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, " ---> %s\n", shortID(st.id))
	for _, cmd := range stage.Commands {
		b.printStep(text(cmd))
		if st, err = b.command(ctx, st, cmd); err != nil {
			return nil, b.df.errorAt(lineOf(cmd.Location()), err)
		}
	}
	return st, nil
}

// shortID is an ID as the progress shows it.
func shortID(id digest.Digest) string {
	if id == "scratch" {
		return "scratch"
	}
	return images.ShortID(id)
}

// envList is m as KEY=VALUE.
func envList(m map[string]string) []string {
	var l []string
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	return l
}

// now is a history entry's time, to the second as docker's.
func now() *time.Time {
	t := time.Now().UTC().Truncate(time.Second)
	return &t
}
