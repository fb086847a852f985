package validate

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ipcSysctls are the kernel.* keys the ipc namespace owns; fs.mqueue.* is
// the rest of it.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// sysctls allows only keys that the container's own namespaces hold, as
// runc does: /proc/sys is mostly global, and a key outside those
// namespaces would be written to the host. ipc keys need an ipc namespace
// that is not the runtime's, net.* a network namespace, kernel.domainname
// and kernel.hostname a uts namespace; nothing else is namespaced.
func sysctls(sysctl map[string]string, hostname string, ns namespaces) error {
	for key := range sysctl {
		dotted, err := sysctlName(key)
		if err != nil {
			return err
		}
		var need specs.LinuxNamespaceType
		switch {
		case ipcSysctls[dotted] || strings.HasPrefix(dotted, "fs.mqueue."):
			need = specs.IPCNamespace
		case strings.HasPrefix(dotted, "net."):
			need = specs.NetworkNamespace
		case dotted == "kernel.domainname" || dotted == "kernel.hostname":
			need = specs.UTSNamespace
			if dotted == "kernel.hostname" && hostname != "" {
				return fmt.Errorf("linux.sysctl %q conflicts with the hostname field %q: set one of them", key, hostname)
			}
		default:
			return fmt.Errorf("linux.sysctl %q is not namespaced: it would change the host for every process on it, so it is refused (allowed: net.*, fs.mqueue.*, kernel.msg*/sem/shm*, kernel.hostname, kernel.domainname)", key)
		}
		if ns[need] == shared {
			return fmt.Errorf("linux.sysctl %q needs the container's own %s namespace (add {\"type\": %q} to linux.namespaces): in the runtime's it would change the host", key, need, need)
		}
	}
	return nil
}

// sysctlName turns a key into the dotted form the rules use. sysctl(8)
// accepts '/' as the separator too; there, a '.' is part of a name (an
// interface like eth0.100). A key must name a file under /proc/sys
// whichever separator the writer splits on, so no part may be empty, "."
// or "..": "net/../kernel/core_pattern" would otherwise pass as net.*.
func sysctlName(key string) (string, error) {
	if key == "" || strings.ContainsRune(key, 0) || strings.HasPrefix(key, ".") || strings.HasPrefix(key, "/") || strings.HasSuffix(key, ".") ||
		strings.HasSuffix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "//") ||
		strings.Contains(key, "./") || strings.Contains(key, "/.") {
		return "", fmt.Errorf("linux.sysctl %q is not a sysctl name (want a key like net.ipv4.ip_forward)", key)
	}
	i := strings.IndexAny(key, "./")
	if i < 0 || key[i] == '.' {
		return key, nil
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key), nil
}
