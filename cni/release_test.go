package cni

import (
	"context"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
)

func TestReleaseNetwork(t *testing.T) {
	s, h := newTestStore(t)
	ctx := context.Background()
	if _, err := s.List(ctx); err != nil { // makes the default network
		t.Fatal(err)
	}
	if err := s.writeEndpoint(&Attachment{ContainerID: "c1", Network: DefaultNetwork}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseNetwork(ctx, DefaultNetwork); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("release with a container attached: %v, want a refusal", err)
	}
	if len(h.tornDown) != 0 {
		t.Fatalf("torn down while in use: %v", h.tornDown)
	}
	if err := s.removeEndpoint(DefaultNetwork, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseNetwork(ctx, DefaultNetwork); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.tornDown, []string{DefaultNetwork}) {
		t.Fatalf("torn down: %v", h.tornDown)
	}
	if _, err := s.Get(ctx, DefaultNetwork); err != nil {
		t.Fatalf("the network's config went with its host state: %v", err)
	}
	if err := s.ReleaseNetwork(ctx, "no-such"); !errdefs.IsNotFound(err) {
		t.Fatalf("release of a missing network: %v", err)
	}
}
