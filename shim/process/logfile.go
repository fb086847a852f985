package process

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/logs/jsonfile"
)

// logDrainTimeout bounds how long an init's exit waits for its output to
// reach the log, as docker waits (2s) for a container's streams before
// it marks the container stopped.
const logDrainTimeout = 2 * time.Second

// openLog opens the container's json-file log when the bundle's spec
// has the log annotations (jsonfile.AnnotationPath); nil without them.
// Only the annotations are decoded: libcontainer parses the spec itself.
func openLog(bundle string) (*jsonfile.Writer, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the bundle's config for its log: %w", err)
	}
	if !bytes.Contains(b, []byte(jsonfile.AnnotationPath)) {
		return nil, nil // the usual case, told without decoding the spec
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("%w: %s/config.json: %w", errdefs.ErrInvalidArgument, bundle, err)
	}
	cfg, ok, err := jsonfile.ConfigFromAnnotations(spec.Annotations)
	if err != nil {
		return nil, fmt.Errorf("%w: container log: %w", errdefs.ErrInvalidArgument, err)
	}
	if !ok {
		return nil, nil
	}
	return jsonfile.Open(cfg)
}

// WaitLogged waits (at most logDrainTimeout) until the init's output has
// all reached the container's log, so that a follower that learns of the
// exit has every line. Without a log it returns at once.
func (p *Init) WaitLogged(ctx context.Context) error {
	if p.log == nil || p.io == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, logDrainTimeout)
	defer cancel()
	return p.io.Wait(ctx)
}
