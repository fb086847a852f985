package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/containerd/console"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/images"
)

func newImageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: noArgs}
	ls := newImagesCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := newRmiCommand(g)
	rm.Use, rm.Aliases = "rm IMAGE [IMAGE...]", nil
	cmd.AddCommand(ls, rm, newImageInspectCommand(g), newLoadCommand(g), newTagCommand(g), newImportCommand(g), newSaveCommand(g), newBuildCommand(g),
		newPullCommand(g), newPushCommand(g),
		newHistoryCommand(g), newImagePruneCommand(g))
	return cmd
}

type loadOptions struct {
	input string
	quiet bool
}

func newLoadCommand(g *globalOptions) *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load an image from a docker-archive or OCI-archive tar file or stdin",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in io.Reader = cmd.InOrStdin()
			if o.input == "" && isTerminal(in) {
				return usageError{errors.New("requested load from stdin, but stdin is a terminal: give the archive with -i FILE or pipe it in")}
			}
			if o.input != "" {
				f, err := os.Open(o.input)
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				defer f.Close()
				in = f
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				names, err := images.Load(ctx, client, in, images.LoadOptions{})
				for _, n := range names {
					fmt.Fprintf(g.stdout, "Loaded image: %s\n", n)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&o.input, "input", "i", "", "read from a tar archive file, instead of stdin")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "accepted for docker's sake; berth prints no progress on load")
	return cmd
}

type imagesOptions struct {
	quiet, digests, noTrunc bool
	format                  string
}

func newImagesCommand(g *globalOptions) *cobra.Command {
	var o imagesOptions
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				rows, err := images.List(ctx, client)
				if err != nil {
					return err
				}
				if len(args) == 1 {
					if rows, err = images.FilterReference(rows, args[0]); err != nil {
						return usageError{err}
					}
				}
				return writeImages(g.stdout, rows, o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&o.digests, "digests", false, "show digests")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	return cmd
}

// writeImages writes `images`'s table, its IDs (-q, each once) or each row
// through --format.
func writeImages(w io.Writer, rows []images.Summary, o imagesOptions) error {
	id := func(r images.Summary) string {
		if o.noTrunc {
			return r.ID
		}
		return images.ShortID(digest.Digest(r.ID))
	}
	switch {
	case o.quiet:
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.ID] {
				seen[r.ID] = true
				fmt.Fprintln(w, id(r))
			}
		}
		return nil
	case o.format != "":
		for _, r := range rows {
			r.ID = id(r)
			if err := writeFormat(w, o.format, r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if o.digests {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
	} else {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, r := range rows {
		if o.digests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, id(r), r.CreatedSince, r.Size)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, id(r), r.CreatedSince, r.Size)
		}
	}
	return tw.Flush()
}

func newTagCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return images.Tag(ctx, client, args[0], args[1])
			})
		},
	}
}

func newRmiCommand(g *globalOptions) *cobra.Command {
	var o images.RemoveOptions
	cmd := &cobra.Command{
		Use:   "rmi IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				var errs []error
				for _, ref := range args {
					items, err := images.Remove(ctx, client, ref, o)
					for _, it := range items {
						if it.Untagged != "" {
							fmt.Fprintf(g.stdout, "Untagged: %s\n", it.Untagged)
						} else {
							fmt.Fprintf(g.stdout, "Deleted: %s\n", it.Deleted)
						}
					}
					errs = append(errs, err)
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "force removal of the image")
	return cmd
}

type imageInspectOptions struct{ format string }

func newImageInspectCommand(g *globalOptions) *cobra.Command {
	var o imageInspectOptions
	cmd := &cobra.Command{
		Use:   "inspect IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return inspectEach(g.stdout, o.format, args, func(ref string) (any, error) {
					return images.Inspect(ctx, client, ref)
				})
			})
		},
	}
	cmd.Flags().StringVarP(&o.format, "format", "f", "", "format the output with a Go template")
	return cmd
}

// inspectEach looks up each name and writes what it found as docker's
// inspect does, then fails with the names it did not find.
func inspectEach(w io.Writer, format string, names []string, get func(string) (any, error)) error {
	var found []any
	var errs []error
	for _, name := range names {
		v, err := get(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, v)
	}
	if err := writeInspect(w, format, found); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// writeInspect writes the found objects as docker's inspect does: a JSON
// array, or each through the --format template.
func writeInspect(w io.Writer, format string, found []any) error {
	if format != "" {
		for _, v := range found {
			if err := writeFormat(w, format, v); err != nil {
				return err
			}
		}
		return nil
	}
	if found == nil {
		found = []any{}
	}
	b, err := json.MarshalIndent(found, "", "    ")
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// isTerminal says whether stream (a reader or writer) is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	_, err := console.ConsoleFromFile(f)
	return err == nil
}

// exactArgs and minArgs check the argument count, naming the command.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%q requires exactly %d arguments, got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Errorf("%q accepts at most %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageError{fmt.Errorf("%q requires %d to %d arguments, got %d", cmd.CommandPath(), lo, hi, len(args))}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%q requires at least %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

// withClient runs fn with a client of the containerd berth uses, closed
// after it.
func (g *globalOptions) withClient(cmd *cobra.Command, fn func(ctx context.Context, client *containerd.Client) error) error {
	conn, err := g.connect(cmd.Context())
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(cmd.Context(), conn.Client)
}
