package containers

// Berth keeps a container's docker metadata in containerd container
// labels under the prefix "berth/", so that every berth command, the
// restart monitor and a future Docker Engine API read the same record, and
// `ctr` shows it. The labels of the restart policy and of a container's
// last run (restart.LabelPolicy, LabelCount, LabelStoppedByUser,
// LabelAutoRemove, LabelExitCode, LabelStartedAt, LabelFinishedAt,
// LabelOOMKilled) are package restart's: its monitor, linked into
// containerd, reads and writes them and must not depend on this package.
const (
	// LabelName is the docker name, without docker's leading slash.
	LabelName = "berth/name"
)
