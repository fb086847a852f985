package images

import (
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// applyChanges applies the Dockerfile instructions of `commit -c` and
// `import -c` to cfg: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
// WORKDIR and STOPSIGNAL, docker's list. This small parser stands in for
// buildkit's, which would bring all of buildkit into berth's module graph
// for nine one-line instructions.
func applyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	for _, change := range changes {
		if err := applyChange(cfg, change); err != nil {
			return fmt.Errorf("invalid change %q: %w", change, err)
		}
	}
	return nil
}

func applyChange(cfg *ocispec.ImageConfig, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return fmt.Errorf("%s needs an argument", strings.ToUpper(instr))
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		cfg.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		cfg.Entrypoint = commandForm(rest)
	case "ENV":
		pairs, err := keyValues(rest)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		var paths []string
		if json.Unmarshal([]byte(rest), &paths) != nil {
			paths = strings.Fields(rest)
		}
		for _, p := range paths {
			cfg.Volumes[p] = struct{}{}
		}
	case "USER":
		cfg.User = rest
	case "WORKDIR":
		cfg.WorkingDir = rest
	case "STOPSIGNAL":
		cfg.StopSignal = rest
	default:
		return fmt.Errorf("%s is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL", instr)
	}
	return nil
}

// commandForm is a CMD or ENTRYPOINT argument: JSON (exec form), else
// the shell form run by /bin/sh -c.
func commandForm(arg string) []string {
	var argv []string
	if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &argv) == nil {
		return argv
	}
	return []string{"/bin/sh", "-c", arg}
}

// keyValues parses ENV's and LABEL's `k=v k2="v 2"`, or the legacy
// `k v w` (one key, the rest its value).
func keyValues(arg string) ([][2]string, error) {
	words, err := shellWords(arg)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(arg, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var pairs [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, nil
}

// shellWords splits s at blanks outside quotes, removing the quotes and
// the backslashes that escape a character.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// setEnv sets key in the KEY=VALUE list env.
func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
