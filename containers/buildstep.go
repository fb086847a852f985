package containers

import "github.com/containerd/containerd/v2/pkg/oci"

// StepSpecOpts wrap the spec options of a build's RUN step (its process,
// its network) in what every container berth makes gets: docker's
// defaults first, docker's default seccomp profile last (it allows
// syscalls by the capabilities the spec ends with). Package build runs
// its RUN steps with them, so that a step runs as `berth run` would.
func StepSpecOpts(opts ...oci.SpecOpts) []oci.SpecOpts {
	return append(append([]oci.SpecOpts{dockerDefaults}, opts...), seccompOpt(HostConfig{}))
}
