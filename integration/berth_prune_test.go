package integration

import (
	"strings"
	"testing"
)

// TestBerthSystemPrune: `system prune -f --volumes` removes the stopped
// containers, the unused user networks and the anonymous volumes, and
// keeps a running container, a named volume and the image in use; with
// -a the image goes once nothing uses it.
func TestBerthSystemPrune(t *testing.T) {
	// Its networks stay in its own dir, not the host's (newManagedBerth).
	b, _ := newBerthWithBusybox(t)

	b.mustRun("run", "--name", "done", busyboxRef, "true")
	b.mustRun("run", "-d", "--name", "live", busyboxRef, "sleep", "300")
	b.mustRun("network", "create", "--subnet", "10.214.7.0/24", "spare")
	anon := strings.TrimSpace(b.mustRun("volume", "create").stdout)
	b.mustRun("volume", "create", "keep")

	if res := b.runInput(strings.NewReader("n\n"), "system", "prune"); res.code != 0 || !strings.Contains(res.stdout, "  - all stopped containers") {
		t.Fatalf("system prune answered no: exit %d, stdout %q", res.code, res.stdout)
	}
	if res := b.mustRun("ps", "-a", "--format", "{{.Names}}"); !strings.Contains(res.stdout, "done") {
		t.Fatalf("a prune answered no removed containers: %q", res.stdout)
	}

	res := b.mustRun("system", "prune", "-f", "--volumes")
	for _, want := range []string{"Deleted Containers:\n", "Deleted Networks:\nspare\n", "Deleted Volumes:\n" + anon + "\n", "Total reclaimed space:"} {
		if !strings.Contains(res.stdout, want) {
			t.Fatalf("system prune -f --volumes: no %q in\n%s", want, res.stdout)
		}
	}
	if res := b.mustRun("ps", "-a", "--format", "{{.Names}}"); res.stdout != "live\n" {
		t.Fatalf("after prune, containers %q, want the running one", res.stdout)
	}
	if res := b.mustRun("volume", "ls", "-q"); res.stdout != "keep\n" {
		t.Fatalf("after prune, volumes %q, want the named one", res.stdout)
	}
	if res := b.mustRun("images", "-q"); strings.TrimSpace(res.stdout) == "" {
		t.Fatal("prune without -a removed the image a container uses")
	}

	b.mustRun("rm", "-f", "live")
	b.mustRun("system", "prune", "-a", "-f")
	if res := b.mustRun("images", "-q"); res.stdout != "" {
		t.Fatalf("system prune -a left images %q", res.stdout)
	}
}
