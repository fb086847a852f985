package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
)

// host is what a network has on the host beside the plugins' per-container
// work: berth's rules for the network (isolation, masquerade), the bridge
// itself; and the host's routes, which a
// new network's subnet keeps clear of. Narrow, so that the store's tests
// run without root on a fake.
type host interface {
	// routes are the destinations of the host's IPv4 routes.
	routes() ([]netip.Prefix, error)
	// ensure installs the network's own rules, if they are missing (a
	// reboot or an iptables flush loses them; the conflist stays).
	ensure(n *Network) error
	// teardown removes all the network left on the host once no
	// container is attached: the plugins never remove a bridge.
	teardown(n *Network) error
}

// linuxHost is host over iptables (the same binary the plugins run) and
// netlink.
type linuxHost struct{}

// ruleComment tags every rule berth adds for a network.
func ruleComment(n *Network) string { return "berth network " + n.Name }

// The chains berth's networks share in the filter table, docker's design:
// FORWARD jumps to berthForward first; berthForward sends everything
// through the isolation stages, then accepts each network's traffic (for
// a host whose FORWARD policy is DROP). Stage 1 sends what leaves a
// network's bridge for another interface to stage 2, which drops it when
// that interface is another network's bridge; an internal network's
// traffic that crosses its bridge is dropped in stage 1. A connection to
// a published port (DNAT) may cross.
const (
	berthForward    = "BERTH-FORWARD"
	berthIsolation1 = "BERTH-ISOLATION-STAGE-1"
	berthIsolation2 = "BERTH-ISOLATION-STAGE-2"
	sharedComment   = "berth networks"
)

// rule is one iptables rule: appended to its chain, or inserted first.
type rule struct {
	table, chain string
	first        bool
	spec         []string
}

// sharedRules are the jumps between berth's chains, before any network's.
var sharedRules = []rule{
	{"filter", "FORWARD", true, []string{"-m", "comment", "--comment", sharedComment, "-j", berthForward}},
	{"filter", berthForward, true, []string{"-m", "comment", "--comment", sharedComment, "-j", berthIsolation1}},
	{"filter", berthIsolation2, true, []string{"-m", "conntrack", "--ctstate", "DNAT", "-m", "comment", "--comment", sharedComment, "-j", "RETURN"}},
}

// networkRules are n's own rules, in the order ensure adds them. The last
// is the one whose presence says the rest are there.
func networkRules(n *Network, subnet netip.Prefix) []rule {
	br, c := n.Bridge(), []string{"-m", "comment", "--comment", ruleComment(n)}
	with := func(spec ...string) []string { return append(spec, c...) }
	var rs []rule
	if n.Internal {
		rs = append(rs,
			rule{"filter", berthIsolation1, false, with("-i", br, "!", "-o", br, "-j", "DROP")},
			rule{"filter", berthIsolation1, false, with("!", "-i", br, "-o", br, "-j", "DROP")},
			rule{"filter", berthForward, false, with("-i", br, "-o", br, "-j", "ACCEPT")})
	} else {
		rs = append(rs,
			rule{"filter", berthIsolation1, false, with("-i", br, "!", "-o", br, "-j", berthIsolation2)},
			rule{"filter", berthForward, false, with("-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT")},
			rule{"filter", berthForward, false, with("-i", br, "-j", "ACCEPT")},
			rule{"nat", "POSTROUTING", false, masqueradeRule(n, subnet)})
	}
	return append(rs, rule{"filter", berthIsolation2, false, with("-o", br, "-j", "DROP")})
}

// masqueradeRule is docker's: traffic from the network leaving through
// another interface goes out with the host's address. One rule per
// network, not the bridge plugin's chain per container: a container whose
// namespace is gone cannot leave it behind.
func masqueradeRule(n *Network, subnet netip.Prefix) []string {
	return []string{"-s", subnet.String(), "!", "-o", n.Bridge(), "-j", "MASQUERADE", "-m", "comment", "--comment", ruleComment(n)}
}

func (linuxHost) routes() ([]netip.Prefix, error) {
	rs, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list the host's routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Dst == nil {
			continue // the default route
		}
		if p, err := netip.ParsePrefix(r.Dst.String()); err == nil && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// rulesFresh is how long ensureRules trusts that a network's rules it
// installed or found are still there.
const rulesFresh = time.Minute

// ensureRules has the host install n's rules unless this store installed
// or found them less than rulesFresh ago, in this boot: a marker under
// <DataRoot>/network/rules says so. Looking costs two iptables execs
// (go-iptables runs `iptables --version` first), 15-30 ms here, most of
// issue 12's 30 ms for a container's whole network; `run --rm` after `run
// --rm` now looks once a minute, and a flush of the host's rules is
// healed by the next attach after that minute (a reboot's at once).
func (s *Store) ensureRules(n *Network) error {
	marker := filepath.Join(s.root, "rules", n.Name)
	want := bootID() + " " + n.ID
	if fresh(marker, want) {
		return nil
	}
	// Under the store's lock: iptables' check-then-append is not atomic,
	// and concurrent attaches would each add the network's rules.
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if fresh(marker, want) {
		return nil // a concurrent attach installed them while this one waited
	}
	if err := s.host.ensure(n); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(marker), 0o700); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if err := os.WriteFile(marker, []byte(want), 0o600); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// fresh says whether the marker says want, written less than rulesFresh
// ago.
func fresh(marker, want string) bool {
	fi, err := os.Stat(marker)
	if err != nil || time.Since(fi.ModTime()) >= rulesFresh {
		return false
	}
	body, err := os.ReadFile(marker)
	return err == nil && string(body) == want
}

// forgetRules removes n's marker: its rules are gone.
func (s *Store) forgetRules(n *Network) error {
	if err := os.Remove(filepath.Join(s.root, "rules", n.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// bootID tells this boot of the host from others: the kernel's rules go
// with a reboot.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

func newIPTables() (*iptables.IPTables, error) {
	ipt, err := iptables.New()
	if err != nil {
		return nil, fmt.Errorf("iptables: %w: networks need iptables (apt-get install iptables; hack/deps.sh installs it)", err)
	}
	return ipt, nil
}

// ensure installs n's rules (and the shared chains) unless its last rule
// is there (one iptables call), so that rules a reboot or a flush took
// come back; a rule deleted by hand beside that one is not noticed.
// ensureRules decides when to look.
func (linuxHost) ensure(n *Network) error {
	ipt, err := newIPTables()
	if err != nil {
		return err
	}
	subnet, err := n.subnet()
	if err != nil {
		return err
	}
	rs := networkRules(n, subnet)
	last := rs[len(rs)-1]
	if ok, err := ipt.Exists(last.table, last.chain, last.spec...); err == nil && ok {
		return nil
	}
	chains, err := ipt.ListChains("filter")
	if err != nil {
		return fmt.Errorf("network %s: list iptables chains: %w", n.Name, err)
	}
	for _, c := range []string{berthForward, berthIsolation1, berthIsolation2} {
		if !slices.Contains(chains, c) {
			if err := ipt.NewChain("filter", c); err != nil {
				return fmt.Errorf("network %s: create chain %s: %w", n.Name, c, err)
			}
		}
	}
	for _, r := range append(slices.Clone(sharedRules), rs...) {
		if r.first {
			err = ipt.InsertUnique(r.table, r.chain, 1, r.spec...)
		} else {
			err = ipt.AppendUnique(r.table, r.chain, r.spec...)
		}
		if err != nil {
			return fmt.Errorf("network %s: add its rule to %s %s: %w", n.Name, r.table, r.chain, err)
		}
	}
	return nil
}

// deleteRules deletes berth's rules for n, found by their comment (also
// those an older berth put in FORWARD), and the firewall plugin's for its
// bridge (an older berth ran it). The shared chains stay, as docker's do.
func deleteRules(n *Network) error {
	ipt, err := newIPTables()
	if err != nil {
		return err
	}
	var errs []error
	for _, tc := range [][2]string{{"nat", "POSTROUTING"}, {"filter", "FORWARD"}, {"filter", berthForward}, {"filter", berthIsolation1}, {"filter", berthIsolation2}} {
		errs = append(errs, deleteCommented(ipt, tc[0], tc[1], ruleComment(n)))
	}
	for _, chain := range isolationChains {
		errs = append(errs, deleteBridgeRules(ipt, chain, n.Bridge()))
	}
	return errors.Join(errs...)
}

// deleteCommented deletes every rule of chain with the comment (every
// copy: an older berth, whose attaches raced to add its rules, may have
// left several); a missing chain has none.
func deleteCommented(ipt *iptables.IPTables, table, chain, comment string) error {
	if ok, err := ipt.ChainExists(table, chain); err != nil || !ok {
		return err
	}
	rules, err := ipt.List(table, chain)
	if err != nil {
		return err
	}
	quoted := `--comment "` + comment + `"`
	// Rule i is at position i (line 0 is the chain's -N or -P); from the
	// end, so that the earlier positions hold.
	for i := len(rules) - 1; i >= 1; i-- {
		if strings.Contains(rules[i], quoted+" ") || strings.HasSuffix(rules[i], quoted) {
			if err := ipt.DeleteById(table, chain, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// SharedChainsExist says whether berth's shared chains are on the host.
func SharedChainsExist() (bool, error) {
	ipt, err := newIPTables()
	if err != nil {
		return false, err
	}
	return ipt.ChainExists("filter", berthForward)
}

// RemoveSharedChains removes berth's shared chains, and FORWARD's jump to
// them, unless a network's rule is left in them: for the tests and
// benchmarks that leave a host as they found it. A berth host keeps them,
// as docker keeps its own.
func RemoveSharedChains() error {
	ipt, err := newIPTables()
	if err != nil {
		return err
	}
	chains := []string{berthForward, berthIsolation1, berthIsolation2}
	existing, err := ipt.ListChains("filter")
	if err != nil {
		return err
	}
	chains = slices.DeleteFunc(chains, func(c string) bool { return !slices.Contains(existing, c) })
	for _, c := range chains {
		rules, err := ipt.List("filter", c)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if strings.Contains(r, `--comment "berth network `) {
				return nil
			}
		}
	}
	var errs []error
	if slices.Contains(chains, berthForward) {
		errs = append(errs, ipt.DeleteIfExists(sharedRules[0].table, sharedRules[0].chain, sharedRules[0].spec...))
	}
	for _, c := range chains {
		errs = append(errs, ipt.ClearChain("filter", c))
	}
	for _, c := range chains {
		errs = append(errs, ipt.DeleteChain("filter", c))
	}
	return errors.Join(errs...)
}

// isolationChains are the firewall plugin's ("same-bridge" ingress policy).
var isolationChains = []string{"CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"}

func (linuxHost) teardown(n *Network) error {
	var errs []error
	// Without iptables no container was ever attached (Attach needs it),
	// so there are no rules to remove: rm still works.
	if _, err := exec.LookPath("iptables"); err == nil {
		errs = append(errs, deleteRules(n))
	}
	errs = append(errs, deleteLink(n.Bridge()))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network %s: clean up on the host: %w", n.Name, err)
	}
	return nil
}

// deleteBridgeRules deletes the rules of chain (filter table) that match
// on bridge as their in or out interface; a missing chain has none.
func deleteBridgeRules(ipt *iptables.IPTables, chain, bridge string) error {
	if ok, err := ipt.ChainExists("filter", chain); err != nil || !ok {
		return err
	}
	rules, err := ipt.List("filter", chain)
	if err != nil {
		return err
	}
	// List's first line is the chain itself (-N or -P); rule i is at
	// position i. Deleted from the end, the earlier positions hold.
	for i := len(rules) - 1; i >= 1; i-- {
		f := strings.Fields(rules[i])
		for j := 0; j+1 < len(f); j++ {
			if (f[j] == "-i" || f[j] == "-o") && f[j+1] == bridge {
				if err := ipt.DeleteById("filter", chain, i); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// deleteLink deletes the network device called name, if there is one.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find bridge %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}
