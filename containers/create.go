package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/docker/docker/pkg/namesgenerator"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/health"
	"github.com/berthrt/berth/images"
	"github.com/berthrt/berth/logs/jsonfile"
	"github.com/berthrt/berth/restart"
	"github.com/berthrt/berth/volumes"
)

// extensionConfig is the containerd container extension that holds the
// container's docker Config and HostConfig, for inspect and start.
const extensionConfig = "berth/config"

// stored is what berth keeps with a container beside its labels.
type stored struct {
	Config     Config
	HostConfig HostConfig
	Created    time.Time
	ImageID    string
	// Path and Args are the command as docker shows it (inspect's .Path
	// and .Args).
	Path string
	Args []string
	// Volumes are the volumes the container mounts.
	Volumes []volumeMount `json:",omitempty"`
}

// command is the stored command, path and args together.
func (s *stored) command() []string {
	if s.Path == "" {
		return nil
	}
	return append([]string{s.Path}, s.Args...)
}

func init() {
	typeurl.Register(&stored{}, "github.com/berthrt/berth/containers", "stored")
}

// Puller pulls an image reference into the image store (IMAGES' pull).
type Puller func(ctx context.Context, ref string) error

// CreateOptions say how to create a container.
type CreateOptions struct {
	Name       string
	Config     Config
	HostConfig HostConfig
	// Pull is --pull: always, missing (the default) or never; Puller does
	// the pulling, and without one an image that is not here is an error.
	Pull   string
	Puller Puller
	// DataRoot holds the container's own files (log, hosts, …) under
	// containers/<id>.
	DataRoot string
	// Snapshotter is containerd's snapshotter; empty: its default.
	Snapshotter string
	// Runtime and RuntimeOptions are the container's runtime type and its
	// options (containerd's WithRuntime): in berth's own containerd, the
	// berth shim pointed at its options file (the packing of containers
	// into shims). Empty Runtime: the namespace's default, with none.
	Runtime        string
	RuntimeOptions any
	// Address is the containerd's address, named when it cannot keep a
	// restart policy (it lacks Berth's restart monitor).
	Address string
	// Networks is where the networks live, and NetNSDir where a
	// container's network namespace is bound while its task runs.
	Networks cni.Config
	NetNSDir string
}

// Created is a new container.
type Created struct {
	ID   string
	Name string
}

// Create makes a container as `docker create` does: the image (pulled by
// --pull's rule), a rootfs snapshot of it, the network step, the OCI spec
// from the image's config and the flags, and docker's metadata in labels.
func Create(ctx context.Context, client *containerd.Client, opts CreateOptions) (Created, error) {
	cfg, hc := opts.Config, opts.HostConfig
	if !filepath.IsAbs(opts.DataRoot) {
		return Created{}, fmt.Errorf("create container: the data root %q is not an absolute path: %w", opts.DataRoot, errdefs.ErrInvalidArgument)
	}
	if err := restart.CheckAutoRemove(hc.RestartPolicy.Policy(), hc.AutoRemove); err != nil {
		return Created{}, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := restart.CheckPolicy(ctx, client, opts.Address, hc.RestartPolicy.Policy()); err != nil {
		return Created{}, err
	}
	image, err := findImage(ctx, client, cfg.Image, opts.Pull, opts.Puller)
	if err != nil {
		return Created{}, err
	}
	imgConfig, imgExt, imageID, err := readImageConfig(ctx, image)
	if err != nil {
		return Created{}, err
	}
	if err := health.Validate(cfg.Healthcheck); err != nil {
		return Created{}, fmt.Errorf("create container: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if unpacked, err := image.IsUnpacked(ctx, opts.Snapshotter); err != nil || !unpacked {
		if err := image.Unpack(ctx, opts.Snapshotter); err != nil {
			return Created{}, fmt.Errorf("unpack image %s: %w", cfg.Image, err)
		}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = imgConfig.StopSignal
	}
	if hc.NetworkMode == "host" && cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	id, err := newID()
	if err != nil {
		return Created{}, err
	}
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	lock, err := lockNames(opts.DataRoot)
	if err != nil {
		return Created{}, err
	}
	defer lock.unlock()
	name, err := pickName(ctx, client, opts.Name)
	if err != nil {
		return Created{}, err
	}
	dir := containerDir(opts.DataRoot, id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return Created{}, fmt.Errorf("create the container's directory: %w", err)
	}
	created := false
	defer func() {
		if !created {
			os.RemoveAll(dir)
		}
	}()
	mounted, undoVolumes, err := createVolumes(ctx, client, volumes.NewStore(opts.DataRoot), hc, imgConfig)
	if err != nil {
		return Created{}, err
	}
	defer func() {
		if !created {
			undoVolumes()
		}
	}()
	net, err := prepareNetwork(ctx, networkRequest{
		client: client, id: id, name: name, dir: dir, hostname: cfg.Hostname, dataRoot: opts.DataRoot,
		cfg: cfg, hc: hc, image: imgConfig, store: opts.Networks, netnsDir: opts.NetNSDir,
	})
	if err != nil {
		return Created{}, err
	}
	cfg.Hostname = net.hostname
	spec, err := buildSpecOpts(opts.DataRoot, id, cfg, hc, imgConfig, mounted, net.opts)
	if err != nil {
		return Created{}, err
	}
	labels, rec := metadata(name, cfg, hc, imgConfig, imgExt, imageID)
	if len(mounted) > 0 {
		labels[volumes.ContainerLabel] = volumeNames(mounted)
		rec.Volumes = mounted
	}
	newOpts := []containerd.NewContainerOpts{containerd.WithImage(image)}
	if net.plan != nil {
		labels[cni.ContainerLabel] = net.plan.NetworkNames()
		newOpts = append(newOpts, cni.WithPlan(net.plan))
	}
	if opts.Snapshotter != "" {
		newOpts = append(newOpts, containerd.WithSnapshotter(opts.Snapshotter))
	}
	if opts.Runtime != "" {
		newOpts = append(newOpts, containerd.WithRuntime(opts.Runtime, opts.RuntimeOptions))
	}
	if hcheck := rec.Config.Healthcheck; hcheck.Enabled() {
		// What the restart monitor's prober runs (package health).
		newOpts = append(newOpts, containerd.WithContainerExtension(health.ExtensionCheck, &health.Check{Config: *hcheck, Shell: rec.Config.Shell}))
	}
	c, err := client.NewContainer(ctx, id, append(newOpts,
		containerd.WithNewSnapshot(id, image),
		containerd.WithNewSpec(spec...),
		containerd.WithContainerLabels(labels),
		containerd.WithContainerExtension(extensionConfig, rec),
	)...)
	if err != nil {
		// The snapshot made for it goes with NewContainer's lease.
		return Created{}, fmt.Errorf("create container: %w", err)
	}
	if err := copyUpVolumes(ctx, client, c, mounted); err != nil {
		if derr := c.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup); derr != nil {
			return Created{}, fmt.Errorf("create container: %w (and removing it: %v)", err, derr)
		}
		return Created{}, fmt.Errorf("create container: %w", err)
	}
	created = true
	return Created{ID: id, Name: name}, nil
}

// metadata is what berth records of a new container: its labels (docker's
// name, the restart policy, the user's labels, the stop signal) and its
// docker config.
func metadata(name string, cfg Config, hc HostConfig, img ocispec.ImageConfig, ext dockerspec.DockerOCIImageConfigExt, imageID string) (map[string]string, *stored) {
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	// Berth's own labels last: a --label cannot forge them. The monitor
	// removes a detached --rm container; an attached `berth run --rm`
	// removes its own once its output is read, so the two do not race.
	for k, v := range restart.CreateLabels(hc.RestartPolicy.Policy(), hc.AutoRemove && !cfg.AttachStdout) {
		labels[k] = v
	}
	labels[LabelName] = name
	if cfg.StopSignal != "" {
		labels[containerd.StopSignalLabel] = cfg.StopSignal
	}
	rec := &stored{Config: withImageConfig(cfg, img, ext), HostConfig: hc, Created: time.Now().UTC(), ImageID: imageID}
	if args := Command(cfg, img); len(args) > 0 {
		if hc.Init != nil && *hc.Init {
			args = append([]string{initPath, "--"}, args...)
		}
		rec.Path, rec.Args = args[0], args[1:]
	}
	return labels, rec
}

// withImageConfig is cfg with what the image gives filled in, as docker's
// daemon records it (inspect's .Config): the environment (the image's,
// then the flags'), the command, entrypoint, working directory and user,
// the health check (the flags' settings over the image's) and the shell.
func withImageConfig(cfg Config, img ocispec.ImageConfig, ext dockerspec.DockerOCIImageConfigExt) Config {
	env := img.Env
	if len(env) == 0 {
		env = []string{defaultPath}
	}
	cfg.Env = mergeEnv(env, cfg.Env)
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = img.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = img.Cmd
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = img.User
	}
	for path := range img.Volumes {
		addVolume(&cfg, path)
	}
	cfg.Healthcheck = health.Merge(imageHealthcheck(ext.Healthcheck), cfg.Healthcheck)
	if len(cfg.Shell) == 0 {
		cfg.Shell = ext.Shell
	}
	return cfg
}

// imageHealthcheck is an image's HEALTHCHECK as a health.Config.
func imageHealthcheck(h *dockerspec.HealthcheckConfig) *health.Config {
	if h == nil {
		return nil
	}
	return &health.Config{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
}

// mergeEnv is base with each NAME=VALUE of over replacing base's NAME or
// added after it.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	index := map[string]int{}
	for i, e := range out {
		name, _, _ := strings.Cut(e, "=")
		index[name] = i
	}
	for _, e := range over {
		name, _, _ := strings.Cut(e, "=")
		if i, ok := index[name]; ok {
			out[i] = e
			continue
		}
		index[name] = len(out)
		out = append(out, e)
	}
	return out
}

// buildSpecOpts gives every spec option, the network step's with them.
func buildSpecOpts(dataRoot, id string, cfg Config, hc HostConfig, img ocispec.ImageConfig, vols []volumeMount, netOpts []oci.SpecOpts) ([]oci.SpecOpts, error) {
	plan := specPlan{id: id, cfg: cfg, hc: hc, image: img, network: netOpts, volumes: vols}
	if hc.LogConfig.Type != "none" {
		plan.logPath = jsonfile.PathFor(dataRoot, id)
	}
	opts, err := specOpts(plan)
	if err != nil {
		return nil, err
	}
	user := cfg.User
	if user == "" {
		user = img.User
	}
	opts = append(opts, userOpts(user, hc.GroupAdd)...)
	if hc.Init != nil && *hc.Init {
		initOpt, err := withInit()
		if err != nil {
			return nil, err
		}
		opts = append(opts, initOpt)
	}
	return opts, nil
}

// containerDir is where berth keeps a container's own files.
func containerDir(dataRoot, id string) string {
	return filepath.Join(dataRoot, "containers", id)
}

// initPath is where --init's binary appears in the container, docker's.
const initPath = "/sbin/docker-init"

// withInit runs the command under a small init (docker-init or tini's
// static build, found on the host's PATH), which reaps and forwards
// signals, as docker's --init does.
func withInit() (oci.SpecOpts, error) {
	var bin string
	for _, name := range []string{"docker-init", "tini-static"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return nil, errors.New("--init: no init binary found on PATH (docker-init or tini-static): install Debian's tini package")
	}
	return oci.Compose(
		oci.WithMounts([]specs.Mount{{Destination: initPath, Type: "bind", Source: bin, Options: []string{"rbind", "ro"}}}),
		func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Process.Args = append([]string{initPath, "--"}, s.Process.Args...)
			return nil
		}), nil
}

// findImage finds the image ref names, pulling it as --pull says.
func findImage(ctx context.Context, client *containerd.Client, ref, pull string, puller Puller) (containerd.Image, error) {
	if pull == "" {
		pull = "missing"
	}
	if pull != "always" && pull != "missing" && pull != "never" {
		return nil, fmt.Errorf("invalid --pull %q: want always, missing or never", pull)
	}
	if pull == "always" {
		if puller == nil {
			return nil, fmt.Errorf("--pull always: this berth cannot pull %s: load the image (berth load) and use --pull missing", ref)
		}
		if err := puller(ctx, ref); err != nil {
			return nil, err
		}
	}
	image, err := localImage(ctx, client, ref)
	if err == nil || !errdefs.IsNotFound(err) || pull == "never" {
		return image, err
	}
	if puller == nil {
		return nil, fmt.Errorf("Unable to find image '%s' locally, and this berth cannot pull it: load it first (berth load): %w", ref, err)
	}
	if err := puller(ctx, ref); err != nil {
		return nil, err
	}
	return localImage(ctx, client, ref)
}

// localImage finds ref in the image store by name or by (a prefix of)
// its ID, as images does.
func localImage(ctx context.Context, client *containerd.Client, ref string) (containerd.Image, error) {
	if name, err := images.NormalizeReference(ref); err == nil {
		if img, err := client.GetImage(ctx, name); err == nil {
			return img, nil
		} else if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("find image %s: %w", ref, err)
		}
	}
	info, err := images.Inspect(ctx, client, ref)
	if err != nil {
		return nil, err
	}
	for _, tag := range info.RepoTags {
		if name, err := images.NormalizeReference(tag); err == nil {
			if img, err := client.GetImage(ctx, name); err == nil {
				return img, nil
			}
		}
	}
	return nil, fmt.Errorf("image %s has no name berth can run it by: tag it first (berth tag): %w", ref, errdefs.ErrNotFound)
}

// readImageConfig reads the image's config for the host's platform, with
// docker's extensions of it (HEALTHCHECK, SHELL).
func readImageConfig(ctx context.Context, image containerd.Image) (ocispec.ImageConfig, dockerspec.DockerOCIImageConfigExt, string, error) {
	var none dockerspec.DockerOCIImageConfigExt
	desc, err := image.Config(ctx)
	if err != nil {
		return ocispec.ImageConfig{}, none, "", fmt.Errorf("image %s: find its config: %w", image.Name(), err)
	}
	blob, err := content.ReadBlob(ctx, image.ContentStore(), desc)
	if err != nil {
		return ocispec.ImageConfig{}, none, "", fmt.Errorf("image %s: read its config: %w", image.Name(), err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(blob, &img); err != nil {
		return ocispec.ImageConfig{}, none, "", fmt.Errorf("image %s: parse its config: %w", image.Name(), err)
	}
	return img.Config.ImageConfig, img.Config.DockerOCIImageConfigExt, desc.Digest.String(), nil
}

// newID is a docker container ID: 64 random hex digits whose short form
// is not all digits (so that it never reads as a number).
func newID() (string, error) {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("container ID: %w", err)
		}
		id := hex.EncodeToString(b)
		if strings.Trim(id[:12], "0123456789") != "" {
			return id, nil
		}
	}
}

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// pickName checks a given name (free and valid) or generates one as
// docker does. The caller holds the names lock.
func pickName(ctx context.Context, client *containerd.Client, name string) (string, error) {
	if name != "" {
		name = strings.TrimPrefix(name, "/")
		if !validName.MatchString(name) {
			return "", fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
		return name, nameFree(ctx, client, name)
	}
	for retry := 0; ; retry++ {
		name = namesgenerator.GetRandomName(retry)
		if err := nameFree(ctx, client, name); err == nil {
			return name, nil
		} else if !errdefs.IsConflict(err) || retry > 10 {
			return "", err
		}
	}
}

// nameFree fails with docker's conflict message when a container has name.
func nameFree(ctx context.Context, client *containerd.Client, name string) error {
	found, err := client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelName, name))
	if err != nil {
		return fmt.Errorf("look for containers named %s: %w", name, err)
	}
	if len(found) > 0 {
		return kindError{msg: fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.",
			name, found[0].ID()), kind: errdefs.ErrConflict}
	}
	return nil
}
