//go:build berth_testhooks

package task

// Test builds only (-tags berth_testhooks; the integration tests build a
// shim server so): an Exec request whose exec id is PanicExecID panics
// in the handler, so that a test can show the shim and its other
// containers survive a request that hits a bug.

// PanicExecID is the exec id that makes a test build's Exec panic.
const PanicExecID = "berth-test-panic"

func init() {
	execHook = func(r execHookRequest) {
		if r.ExecID == PanicExecID {
			panic("test hook: exec " + r.ExecID + " in " + r.ID)
		}
	}
}
