package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthrt/berth/libcontainer"
)

func psCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [--format table|json] CONTAINER_ID [PS_ARGS...]",
		Short: "list the processes of a container (ps(1) arguments default to -ef)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return fmt.Errorf("%q requires a container id (usage: %s)", cmd.Name(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			pids, err := c.Pids()
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(pids)
			case "table":
				return psTable(cmd.OutOrStdout(), pids, args[1:])
			}
			return fmt.Errorf("invalid --format %q: use table or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// psTable runs ps(1) on the host and keeps the header and the lines of the
// container's processes, as runc ps does.
func psTable(w io.Writer, pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("run ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	pidCol := -1
	for i, f := range strings.Fields(lines[0]) {
		if f == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return fmt.Errorf("ps %s prints no PID column", strings.Join(psArgs, " "))
	}
	in := map[string]bool{}
	for _, p := range pids {
		in[strconv.Itoa(p)] = true
	}
	var b bytes.Buffer
	b.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > pidCol && in[f[pidCol]] {
			b.WriteString(l + "\n")
		}
	}
	_, err = w.Write(b.Bytes())
	return err
}
