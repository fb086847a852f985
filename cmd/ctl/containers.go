package main

import (
	"github.com/spf13/cobra"
)

// containerCommands are docker's container commands, at the top level
// and under `container`.
func containerCommands(g *globalOptions) []*cobra.Command {
	container := &cobra.Command{Use: "container", Short: "Manage containers", Args: noArgs}
	ls := newPsCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	container.AddCommand(newRunCommand(g), newCreateCommand(g), ls, newInspectCommand(g, "container"))
	container.AddCommand(lifecycleCommands(g)...)
	container.AddCommand(newContainerPruneCommand(g))
	return append([]*cobra.Command{container, newRunCommand(g), newCreateCommand(g), newPsCommand(g), newInspectCommand(g, "")},
		lifecycleCommands(g)...)
}

// lifecycleCommands are the commands found both at the top level and
// under `container`.
func lifecycleCommands(g *globalOptions) []*cobra.Command {
	return []*cobra.Command{newStartCommand(g), newStopCommand(g, false), newStopCommand(g, true), newKillCommand(g),
		newRmCommand(g), newWaitCommand(g), newPauseCommand(g, true), newPauseCommand(g, false),
		newExecCommand(g), newTopCommand(g), newRenameCommand(g), newUpdateCommand(g), newStatsCommand(g),
		newCpCommand(g), newDiffCommand(g), newExportCommand(g), newAttachCommand(g), newPortCommand(g)}
}
