package cni

import (
	"context"
	"fmt"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
)

// ContainerLabel on a containerd container lists the networks it is on,
// by name, comma-separated (as volumes.ContainerLabel lists volumes): how
// `network rm` learns which networks are in use, even while a stopped
// container holds no endpoint.
const ContainerLabel = "berth/networks"

// nameLabel is the container's docker name (containers.LabelName; the
// literal because package containers will build on this one).
const nameLabel = "berth/name"

// Users says which containers use which networks: network name → the
// containers' names (their ids where they have none).
type Users interface {
	NetworkUsers(ctx context.Context) (map[string][]string, error)
}

// ContainerUsers finds the users of networks in the container labels of
// a containerd namespace.
type ContainerUsers struct {
	Client *containerd.Client
}

// NetworkUsers returns, for each network in use, its containers.
func (u ContainerUsers) NetworkUsers(ctx context.Context) (map[string][]string, error) {
	cs, err := u.Client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", ContainerLabel))
	if err != nil {
		return nil, fmt.Errorf("list the containers on networks: %w", err)
	}
	users := map[string][]string{}
	for _, c := range cs {
		name := c.Labels[nameLabel]
		if name == "" {
			name = c.ID
		}
		for _, n := range strings.Split(c.Labels[ContainerLabel], ",") {
			if n != "" {
				users[n] = append(users[n], name)
			}
		}
	}
	return users, nil
}
