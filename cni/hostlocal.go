package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// hostLocalStore is the host-local IPAM plugin's state of one network, in
// its own format, for the in-process bridge (bridge.go): a file per
// address, named by it, holding "<container id>\r\n<ifname>";
// last_reserved_ip.0, where the round robin goes on; and the flock'd file
// "lock". The plugin binary, berth's older attaches and CNI's GC read and
// free the same files. Written here rather than imported: the package
// lives in the containernetworking/plugins module, whose requirements
// would move containerd's pinned grpc and otel in berth's go.mod.
type hostLocalStore struct {
	dir  string
	lock *os.File
}

// hostLocalLineBreak separates id and ifname, as host-local writes them.
const hostLocalLineBreak = "\r\n"

// openHostLocal opens and locks the state of network under dataDir; the
// caller must close it.
func openHostLocal(dataDir, network string) (*hostLocalStore, error) {
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("IPAM state of network %s: %w", network, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("IPAM state of network %s: %w", network, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the IPAM state of network %s: %w", network, err)
	}
	return &hostLocalStore{dir: dir, lock: f}, nil
}

func (s *hostLocalStore) close() { s.lock.Close() }

// reserve takes ip for the container's interface; false when another has it.
func (s *hostLocalStore) reserve(id, ifName string, ip netip.Addr) (bool, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, ip.String()), os.O_RDWR|os.O_EXCL|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(strings.TrimSpace(id) + hostLocalLineBreak + ifName)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, "last_reserved_ip.0"), []byte(ip.String()), 0o600)
	}
	if err != nil {
		os.Remove(f.Name())
		return false, err
	}
	return true, nil
}

// lastReserved is where the round robin stopped; invalid when unknown.
func (s *hostLocalStore) lastReserved() netip.Addr {
	body, err := os.ReadFile(filepath.Join(s.dir, "last_reserved_ip.0"))
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(string(body)))
	return ip
}

// allocate reserves the first free address of [start, end] after the last
// one reserved (host-local's round robin), never gw.
func (s *hostLocalStore) allocate(id, ifName string, start, end, gw netip.Addr) (netip.Addr, error) {
	first := start
	if last := s.lastReserved(); last.IsValid() && last.Compare(start) >= 0 && last.Compare(end) < 0 {
		first = last.Next()
	}
	ip := first
	for {
		if ip != gw {
			ok, err := s.reserve(id, ifName, ip)
			if err != nil {
				return netip.Addr{}, err
			}
			if ok {
				return ip, nil
			}
		}
		if ip = ip.Next(); ip.Compare(end) > 0 {
			ip = start
		}
		if ip == first {
			return netip.Addr{}, fmt.Errorf("no IP addresses available in range %s-%s", start, end)
		}
	}
}

// release frees every address of the container's interface (ids written
// by host-local before it wrote the ifname too included).
func (s *hostLocalStore) release(id, ifName string) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	id = strings.TrimSpace(id)
	var errs []error
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		body, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if got := strings.TrimSpace(string(body)); got == id+hostLocalLineBreak+ifName || got == id {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
