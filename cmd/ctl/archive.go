package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/images"
)

type importOptions struct {
	message string
	changes []string
}

func newImportCommand(g *globalOptions) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := openImportSource(cmd, args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			opts := images.ImportOptions{Source: args[0], Message: o.message, Changes: o.changes}
			if len(args) == 2 {
				opts.Name = args[1]
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				id, err := images.Import(ctx, client, in, opts)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, id)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.message, "message", "m", "", "set the commit message for the imported image")
	f.StringArrayVarP(&o.changes, "change", "c", nil, "apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)")
	return cmd
}

// openImportSource opens import's source: stdin for "-", an http(s) URL,
// else a file.
func openImportSource(cmd *cobra.Command, src string) (io.ReadCloser, error) {
	switch {
	case src == "-":
		in := cmd.InOrStdin()
		if isTerminal(in) {
			return nil, usageError{errors.New("import from stdin, but stdin is a terminal: pipe a tarball in, or give a file or URL")}
		}
		return io.NopCloser(in), nil
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, src, nil)
		if err != nil {
			return nil, usageError{fmt.Errorf("import: %w", err)}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("import: download %s: %w", src, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("import: download %s: %s", src, resp.Status)
		}
		return resp.Body, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return f, nil
}

type saveOptions struct {
	output string
	format string
}

func newSaveCommand(g *globalOptions) *cobra.Command {
	var o saveOptions
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.format != images.FormatDockerArchive && o.format != images.FormatOCIArchive {
				return usageError{fmt.Errorf("invalid --format %q: use %s or %s", o.format, images.FormatDockerArchive, images.FormatOCIArchive)}
			}
			out := g.stdout
			if o.output == "" && isTerminal(out) {
				return usageError{errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				if o.output == "" {
					return images.Save(ctx, client, out, args, images.SaveOptions{Format: o.format})
				}
				return saveToFile(ctx, client, o, args)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "write to a file, instead of STDOUT")
	f.StringVar(&o.format, "format", images.FormatDockerArchive, "archive format: docker-archive (with the OCI layout inside) or oci-archive")
	return cmd
}

// saveToFile writes the archive beside o.output and renames it into place,
// so that a failed save leaves no half archive under the name asked for.
func saveToFile(ctx context.Context, client *containerd.Client, o saveOptions, refs []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(o.output), ".berth-save-*")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := images.Save(ctx, client, tmp, refs, images.SaveOptions{Format: o.format}); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.output); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}
