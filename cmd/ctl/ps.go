package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
	"github.com/berthrt/berth/images"
)

type psOptions struct {
	containers.ListOptions
	quiet, latest, noTrunc bool
	format                 string
}

func newPsCommand(g *globalOptions) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.latest {
				o.Last = 1
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				rows, err := containers.List(ctx, client, o.ListOptions)
				if err != nil {
					return usageErrorIf(err)
				}
				return writeContainers(g.stdout, rows, o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "show all containers (default shows just running)")
	f.IntVarP(&o.Last, "last", "n", 0, "show n last created containers (includes all states)")
	f.BoolVarP(&o.latest, "latest", "l", false, "show the latest created container (includes all states)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate output")
	f.StringArrayVarP(&o.Filters, "filter", "f", nil, "filter output based on conditions (status, name, id, label, exited, health)")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	return cmd
}

// usageErrorIf marks a bad --filter as the user's mistake.
func usageErrorIf(err error) error {
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return usageError{err}
	}
	return err
}

// psRow is a ps row as docker's --format sees it: truncated unless
// --no-trunc, the command quoted.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Status, State, Names, Mounts, Ports, Networks string
	Labels                                                                                   map[string]string
}

// Label is one label's value, for '{{.Label "key"}}'.
func (r psRow) Label(key string) string { return r.Labels[key] }

func toRow(s containers.Summary, noTrunc bool) psRow {
	r := psRow{ID: s.ID, Image: s.Image, Command: s.Command, CreatedAt: s.CreatedAt.Truncate(time.Second).String(),
		RunningFor: s.RunningFor, Status: s.Status, State: s.State, Names: s.Names, Mounts: s.Mounts,
		Ports: s.Ports, Networks: s.Networks, Labels: s.Labels}
	if !noTrunc {
		r.ID, r.Command = containers.ShortID(s.ID), containers.Ellipsis(s.Command, 20)
	}
	r.Command = strconv.Quote(r.Command)
	return r
}

// writeContainers writes ps's table, its IDs (-q) or each row through
// --format.
func writeContainers(w io.Writer, rows []containers.Summary, o psOptions) error {
	switch {
	case o.quiet:
		for _, r := range rows {
			fmt.Fprintln(w, toRow(r, o.noTrunc).ID)
		}
		return nil
	case strings.HasPrefix(o.format, "table"):
		return writeTable(w, strings.TrimSpace(strings.TrimPrefix(o.format, "table")), rows, o.noTrunc)
	case o.format != "":
		for _, r := range rows {
			if err := writeFormat(w, o.format, toRow(r, o.noTrunc)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, s := range rows {
		r := toRow(s, o.noTrunc)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names)
	}
	return tw.Flush()
}

// psHeaders are ps's column titles by --format field, for "table".
var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Status": "STATUS", "State": "STATE", "Names": "NAMES", "Mounts": "MOUNTS", "Ports": "PORTS", "Networks": "NETWORKS", "Labels": "LABELS",
}

// writeTable is docker's --format "table TEMPLATE": a header row (the
// template run over the column titles), then the rows, aligned.
func writeTable(w io.Writer, format string, rows []containers.Summary, noTrunc bool) error {
	if format == "" {
		format = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format) // docker reads these escapes in a table
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	// A template that calls methods (.Label "x") cannot run over the
	// titles; the table then has no header, as its columns are the user's.
	var header bytes.Buffer
	if err := writeFormat(&header, format, psHeaders); err == nil {
		tw.Write(header.Bytes())
	} else if isUsageError(err) {
		return err
	}
	for _, r := range rows {
		if err := writeFormat(tw, format, toRow(r, noTrunc)); err != nil {
			return err
		}
	}
	return tw.Flush()
}

type inspectOptions struct {
	format string
	kind   string // "container", "image" or "" for either
}

// newInspectCommand is `inspect` (containers, then images) and
// `container inspect`.
func newInspectCommand(g *globalOptions, kind string) *cobra.Command {
	o := inspectOptions{kind: kind}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers (and, at the top level, images)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				var found []any
				var errs []error
				for _, ref := range args {
					v, err := g.inspectOne(ctx, client, ref, o.kind)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					found = append(found, v)
				}
				if err := writeInspected(g.stdout, o.format, found); err != nil {
					return err
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().StringVarP(&o.format, "format", "f", "", "format the output with a Go template")
	return cmd
}

// writeInspected is writeInspect, with docker's fallback for --format:
// a template that names a field by its JSON name ({{.Id}}) runs over the
// JSON form (numbers kept as written) when the Go one has no such field.
func writeInspected(w io.Writer, format string, found []any) error {
	if format == "" {
		return writeInspect(w, format, found)
	}
	for _, v := range found {
		var typed bytes.Buffer
		err := writeFormat(&typed, format, v)
		if err == nil {
			if _, err := w.Write(typed.Bytes()); err != nil {
				return err
			}
			continue
		}
		if isUsageError(err) {
			return err
		}
		raw, merr := json.Marshal(v)
		if merr != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var generic any
		if dec.Decode(&generic) != nil {
			return err
		}
		// A key neither form has stays an error, not "<no value>".
		tmpl, perr := template.New("format").Funcs(formatFuncs).Option("missingkey=error").Parse(format)
		var out bytes.Buffer
		if perr != nil || tmpl.Execute(&out, generic) != nil {
			return err // the typed error says more
		}
		fmt.Fprintln(&out)
		if _, err := w.Write(out.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func (g *globalOptions) inspectOne(ctx context.Context, client *containerd.Client, ref, kind string) (any, error) {
	c, err := containers.Inspect(ctx, client, ref, containers.InspectOptions{DataRoot: g.cfg.DataRoot})
	if err == nil || kind == "container" || !errdefs.IsNotFound(err) {
		return c, err
	}
	img, ierr := images.Inspect(ctx, client, ref)
	if ierr == nil {
		return img, nil
	}
	if errdefs.IsNotFound(ierr) {
		return nil, fmt.Errorf("No such object: %s", ref)
	}
	return nil, ierr
}
