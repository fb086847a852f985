package containers

import (
	"context"
	"fmt"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// kindError is an error with docker's exact message that still matches
// its kind (errdefs.ErrNotFound, …) under errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string { return e.msg }
func (e kindError) Unwrap() error { return e.kind }

// NoSuchContainer is docker's error for a container that is not there.
func NoSuchContainer(ref string) error {
	return kindError{msg: "No such container: " + ref, kind: errdefs.ErrNotFound}
}

// Resolve finds the container ref names, as docker does: by full ID, by
// name (with or without docker's leading slash), else by a unique prefix
// of its ID. An ambiguous prefix is an error naming the candidates.
func Resolve(ctx context.Context, client *containerd.Client, ref string) (containerd.Container, error) {
	if ref == "" {
		return nil, NoSuchContainer(ref)
	}
	if c, err := client.LoadContainer(ctx, ref); err == nil {
		return c, nil
	} else if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("find container %s: %w", ref, err)
	}
	name := strings.TrimPrefix(ref, "/")
	byName, err := client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelName, name))
	if err != nil {
		return nil, fmt.Errorf("find container %s: %w", ref, err)
	}
	if len(byName) > 0 {
		return byName[0], nil
	}
	all, err := client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("find container %s: %w", ref, err)
	}
	var found []containerd.Container
	for _, c := range all {
		if strings.HasPrefix(c.ID(), ref) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil, NoSuchContainer(ref)
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, c := range found {
		ids = append(ids, c.ID())
	}
	return nil, kindError{msg: fmt.Sprintf("multiple IDs found with provided prefix: %s (candidates: %s)", ref, strings.Join(ids, ", ")),
		kind: errdefs.ErrInvalidArgument}
}

// readStored reads berth's record of a container's Config and HostConfig.
func readStored(info containers.Container, rec *stored) error {
	ext, ok := info.Extensions[extensionConfig]
	if !ok {
		return fmt.Errorf("container %s was not made by berth: it has no %s extension: %w", info.ID, extensionConfig, errdefs.ErrNotFound)
	}
	v, err := typeurl.UnmarshalAny(ext)
	if err != nil {
		return fmt.Errorf("container %s: read its config: %w", info.ID, err)
	}
	s, ok := v.(*stored)
	if !ok {
		return fmt.Errorf("container %s: its %s extension is a %T", info.ID, extensionConfig, v)
	}
	*rec = *s
	return nil
}
