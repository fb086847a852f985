package images

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
)

// ErrConflict is wrapped by the errors for a removal that needs --force.
var ErrConflict = errdefs.ErrFailedPrecondition

// RemoveOptions are `rmi`'s flags.
type RemoveOptions struct {
	Force bool
}

// DeleteItem is one line of what `rmi` did, docker's
// ImageDeleteResponseItem: one of the two is set.
type DeleteItem struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// Remove removes the image ref names, as `docker rmi` does: a name is
// untagged, and the image goes with its last name; an ID removes every
// name, which needs Force when there are several. A name a container was
// created from is kept unless Force, since the container needs it.
func Remove(ctx context.Context, client *containerd.Client, ref string, opts RemoveOptions) ([]DeleteItem, error) {
	r, err := resolve(ctx, client, ref)
	if err != nil {
		return nil, err
	}
	doomed := r.names
	if r.byName != "" {
		doomed = nil
		for _, img := range r.names {
			if img.Name == r.byName {
				doomed = append(doomed, img)
			}
		}
	} else if len(r.names) > 1 && !opts.Force {
		return nil, kindError{kind: ErrConflict,
			msg: fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", ShortID(r.id))}
	}
	if !opts.Force {
		if err := refuseInUse(ctx, client, ref, doomed); err != nil {
			return nil, err
		}
	}
	var items []DeleteItem
	is := client.ImageService()
	for i, img := range doomed {
		var delOpts []images.DeleteOpt
		if i == len(doomed)-1 && len(doomed) == len(r.names) {
			// The last name: let containerd collect the content now, so
			// that the image is gone when rmi returns.
			delOpts = append(delOpts, images.SynchronousDelete())
		}
		if err := is.Delete(ctx, img.Name, delOpts...); err != nil {
			return items, fmt.Errorf("remove image %s: %w", familiar(img.Name), err)
		}
		items = append(items, DeleteItem{Untagged: familiar(img.Name)})
	}
	if len(doomed) == len(r.names) {
		items = append(items, DeleteItem{Deleted: r.id.String()})
	}
	return items, nil
}

// refuseInUse fails, naming the container, when a container was created
// from one of the names about to go.
func refuseInUse(ctx context.Context, client *containerd.Client, ref string, doomed []images.Image) error {
	names := make(map[string]bool, len(doomed))
	for _, img := range doomed {
		names[img.Name] = true
	}
	containers, err := client.ContainerService().List(ctx)
	if err != nil {
		return fmt.Errorf("list containers using %s: %w", ref, err)
	}
	for _, c := range containers {
		if names[c.Image] {
			return kindError{kind: ErrConflict,
				msg: fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
					ref, c.ID, familiar(c.Image))}
		}
	}
	return nil
}
