// Package events holds the JSON records `berth-runtime events` prints, in
// runc's format (runc's types/events.go), so tools written for `runc
// events` read Berth's output unchanged. Field names and omitempty choices
// follow runc's exactly: a zero counter without omitempty is printed as 0,
// one with omitempty is left out, as runc does.
package events

// Event is one line of `events` output.
type Event struct {
	// Type is "stats" or "oom".
	Type string `json:"type"`
	ID   string `json:"id"`
	// Data is *Stats for "stats" and absent for "oom".
	Data any `json:"data,omitempty"`
}

// Event types.
const (
	TypeStats = "stats"
	TypeOOM   = "oom"
)

// Stats is a container's resource usage.
type Stats struct {
	CPU    CPU    `json:"cpu"`
	CPUSet CPUSet `json:"cpuset"`
	Memory Memory `json:"memory"`
	Pids   Pids   `json:"pids"`
	Blkio  Blkio  `json:"blkio"`
	// Hugetlb is keyed by page size ("2MB"). runc prints {} when there
	// are none, so it is never nil in a Stats from NewStats.
	Hugetlb  map[string]Hugetlb `json:"hugetlb"`
	IntelRdt IntelRdt           `json:"intel_rdt"`
	// NetworkInterfaces stays nil (JSON null): like runc for an OCI
	// bundle, Berth configures no interfaces of its own to report.
	NetworkInterfaces []*NetworkInterface `json:"network_interfaces"`
}

// NewStats returns a Stats whose maps are empty, not nil, so that they print
// as {} the way runc prints them.
func NewStats() *Stats {
	return &Stats{Hugetlb: map[string]Hugetlb{}}
}

// PSIData is one line of a cgroup v2 pressure file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// PSIStats is a cgroup v2 pressure file (cpu.pressure, ...).
type PSIStats struct {
	Some PSIData `json:"some,omitempty"`
	Full PSIData `json:"full,omitempty"`
}

// Hugetlb is the usage of one huge page size, in bytes.
type Hugetlb struct {
	Usage uint64 `json:"usage,omitempty"`
	// Max is the peak usage (cgroup v1 only; v2 does not record it).
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// BlkioEntry is one counter of one device.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	// Op is "Read", "Write", "Sync", "Async", "Discard" or "Total".
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio is block I/O usage. The JSON names are runc's, including
// "ioQueueRecursive" for the queued counter.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// Pids is the number of tasks and its limit; a Limit of 0 means none.
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Throttling is CFS bandwidth throttling; ThrottledTime is in nanoseconds.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is CPU time in nanoseconds since the cgroup was made.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// CPU is CPU usage and throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUSet is the cpuset the container runs on and the v1 cpuset flags.
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// MemoryEntry is one memory counter family, in bytes. Max is the peak
// usage; Limit is the limit (the kernel's "unlimited" value when none).
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory is memory usage. Swap is memory+swap, as cgroup v1 counts it
// (v2 values are converted to that). Raw is memory.stat as the kernel
// wrote it.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// IntelRdt is Intel RDT usage. Berth does not manage RDT, so it is always
// empty ({}), as in runc's output for a container without RDT.
type IntelRdt struct{}

// NetworkInterface is one interface's counters (runc's names, which have
// no JSON tags).
type NetworkInterface struct {
	Name      string
	RxBytes   uint64
	RxPackets uint64
	RxErrors  uint64
	RxDropped uint64
	TxBytes   uint64
	TxPackets uint64
	TxErrors  uint64
	TxDropped uint64
}
