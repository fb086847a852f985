package volumes

import (
	"context"
	"fmt"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
)

// ContainerLabel on a containerd container lists the volumes it mounts,
// comma-separated: how the store learns which volumes are in use without
// a database of its own.
const ContainerLabel = "berth/volumes"

// ContainerUsers finds the users of volumes in the container labels of
// a containerd namespace.
type ContainerUsers struct {
	Client *containerd.Client
}

// VolumeUsers returns, for each volume in use, the ids of its containers.
func (u ContainerUsers) VolumeUsers(ctx context.Context) (map[string][]string, error) {
	cs, err := u.Client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", ContainerLabel))
	if err != nil {
		return nil, fmt.Errorf("list the containers that use volumes: %w", err)
	}
	users := map[string][]string{}
	for _, c := range cs {
		for _, name := range strings.Split(c.Labels[ContainerLabel], ",") {
			if name != "" {
				users[name] = append(users[name], c.ID)
			}
		}
	}
	return users, nil
}
