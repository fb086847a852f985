package libcontainer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/user"
)

// prepareEnv turns process.env into the environment the program gets, as
// runc does (tools that build specs, docker among them, rely on it):
//   - each entry must be NAME=VALUE with a non-empty NAME and no NUL byte;
//   - a name given more than once keeps only its last value, at the place
//     of that last entry (execve would pass every copy, and which one a
//     program reads is up to its C library);
//   - an empty HOME counts as unset, and an unset HOME is filled from
//     home(), the user's passwd entry in the container.
func prepareEnv(env []string, home func() string) ([]string, error) {
	out := make([]string, 0, len(env)+1)
	seen := make(map[string]bool, len(env))
	homeSet := false
	// Backwards, so that the first one met of a name is its last value.
	for i := len(env) - 1; i >= 0; i-- {
		kv := env[i]
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("process.env entry %q: invalid environment variable: missing '='", kv)
		}
		if name == "" {
			return nil, fmt.Errorf("process.env entry %q: invalid environment variable: name cannot be empty", kv)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, fmt.Errorf("process.env variable %s: invalid environment variable: contains nul byte (\\x00)", name)
		}
		if name == "HOME" {
			if val == "" {
				continue
			}
			homeSet = true
		}
		out = append(out, kv)
	}
	slices.Reverse(out)
	if !homeSet {
		out = append(out, "HOME="+home())
	}
	return out, nil
}

// passwdHome is uid's home directory in the container's /etc/passwd (read
// after the root switch), or / when it has none, as runc has it.
func passwdHome(uid int) string {
	u, err := user.LookupUid(uid)
	if err != nil || u.Home == "" {
		return "/"
	}
	return u.Home
}
