package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/containerd/console"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/images"
)

// registryOptions are berth.toml's registry settings, with credentials
// from docker's config.json.
func (g *globalOptions) registryOptions() images.RegistryOptions {
	return images.RegistryOptions{Config: g.cfg.Registry}
}

type pullOptions struct{ quiet bool }

func newPullCommand(g *globalOptions) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				_, err := pullImage(ctx, g, client, args[0], g.stdout, o.quiet)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}

// pullImage pulls ref as `docker pull` shows it, on out: the layers'
// progress (bars on a terminal), the digest, the status, the full name.
// `run --pull` calls it too, with out = stderr as docker's run does.
func pullImage(ctx context.Context, g *globalOptions, client *containerd.Client, ref string, out io.Writer, quiet bool) (images.PullResult, error) {
	name, err := images.ParseName(ref)
	if err != nil {
		return images.PullResult{}, usageError{err}
	}
	if !quiet && name.Tag != "" {
		if name.DefaultTag {
			fmt.Fprintf(out, "Using default tag: %s\n", name.Tag)
		}
		fmt.Fprintf(out, "%s: Pulling from %s\n", name.Tag, name.Path)
	}
	progress := newLayerProgress(ctx, out, quiet)
	res, err := images.Pull(ctx, client, ref, images.PullOptions{Registry: g.registryOptions(), Progress: progress.report})
	progress.wait()
	if err != nil {
		return res, err
	}
	if !quiet {
		fmt.Fprintf(out, "Digest: %s\n", res.Digest)
		if res.UpToDate {
			fmt.Fprintf(out, "Status: Image is up to date for %s\n", images.FamiliarName(res.Name))
		} else {
			fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", images.FamiliarName(res.Name))
		}
	}
	fmt.Fprintln(out, res.Name)
	return res, nil
}

type pushOptions struct{ quiet bool }

func newPushCommand(g *globalOptions) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := images.ParseName(args[0])
			if err != nil {
				return usageError{err}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				if !o.quiet {
					fmt.Fprintf(g.stdout, "The push refers to repository [%s]\n", name.Repository)
				}
				progress := newLayerProgress(ctx, g.stdout, o.quiet)
				res, err := images.Push(ctx, client, args[0], images.PushOptions{Registry: g.registryOptions(), Progress: progress.report})
				progress.wait()
				if err != nil {
					return err
				}
				if o.quiet {
					fmt.Fprintln(g.stdout, images.FamiliarName(res.Name))
					return nil
				}
				fmt.Fprintf(g.stdout, "%s: digest: %s size: %d\n", res.Tag, res.Digest, res.Size)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}

type loginOptions struct {
	username, password string
	passwordStdin      bool
}

func newLoginCommand(g *globalOptions) *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			if err := o.complete(cmd.InOrStdin(), g.stdout); err != nil {
				return err
			}
			if err := images.Login(cmd.Context(), server, o.username, o.password, g.registryOptions()); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Login Succeeded")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.username, "username", "u", "", "username")
	f.StringVarP(&o.password, "password", "p", "", "password")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

// complete fills in what login was not given: the password from stdin
// (--password-stdin), else the user name and password asked for on the
// terminal, as docker does (the password without echo).
func (o *loginOptions) complete(in io.Reader, out io.Writer) error {
	stdin := bufio.NewReader(in)
	readLine := func() (string, error) {
		line, err := stdin.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("login: read stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if o.passwordStdin {
		if o.password != "" {
			return usageError{errors.New("--password and --password-stdin are mutually exclusive")}
		}
		if o.username == "" {
			return usageError{errors.New("--password-stdin needs a user name: give it with -u")}
		}
		var err error
		o.password, err = readLine()
		return err
	}
	if o.username != "" && o.password != "" {
		return nil
	}
	f, ok := in.(*os.File)
	if !ok || !isTerminal(f) {
		return usageError{errors.New("login needs a user name (-u) and a password (-p or --password-stdin) when stdin is not a terminal")}
	}
	var err error
	if o.username == "" {
		fmt.Fprint(out, "Username: ")
		if o.username, err = readLine(); err != nil {
			return err
		}
	}
	if o.password == "" {
		c, cerr := console.ConsoleFromFile(f)
		if cerr != nil {
			return fmt.Errorf("login: %w", cerr)
		}
		fmt.Fprint(out, "Password: ")
		if err := c.DisableEcho(); err != nil {
			return fmt.Errorf("login: turn off echo: %w", err)
		}
		o.password, err = readLine()
		c.Reset()
		fmt.Fprintln(out)
		if err != nil {
			return err
		}
	}
	if o.username == "" || o.password == "" {
		return usageError{errors.New("login: a user name and a password are required")}
	}
	return nil
}

func newLogoutCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			removed, err := images.Logout(server)
			if err != nil {
				return err
			}
			if !removed {
				fmt.Fprintf(g.stdout, "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(g.stdout, "Removing login credentials for %s\n", server)
			return nil
		},
	}
}

type searchOptions struct {
	limit   int
	noTrunc bool
	format  string
}

func newSearchCommand(g *globalOptions) *cobra.Command {
	var o searchOptions
	cmd := &cobra.Command{
		Use:   "search [OPTIONS] [REGISTRY/]TERM",
		Short: "Search a registry's catalog for images",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			found, err := images.Search(cmd.Context(), args[0], images.SearchOptions{Registry: g.registryOptions(), Limit: o.limit})
			if err != nil {
				return err
			}
			if o.format != "" {
				for _, r := range found {
					if err := writeFormat(g.stdout, o.format, r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDESCRIPTION\tSTARS\tOFFICIAL")
			for _, r := range found {
				fmt.Fprintf(tw, "%s\t%s\t%d\t\n", r.Name, r.Description, r.StarCount)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.limit, "limit", 25, "max number of search results")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	return cmd
}
