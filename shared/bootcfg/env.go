package bootcfg

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ParseEnv parses a katana.env value: words as SplitArgs splits them, each
// NAME=VALUE, NAME a portable environment variable name (a letter or '_',
// then letters, digits and '_'), none given twice and none of InitEnv. The
// VALUE is any bytes, empty included. The words are returned in the order
// given; an empty value gives nil.
func ParseEnv(v string) ([]string, error) {
	words, err := SplitArgs(v)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, fmt.Errorf("%s at byte %d of the value", e.Detail, e.Offset)
		}
		return nil, err
	}
	if err := checkEnv(words); err != nil {
		return nil, err
	}
	return words, nil
}

// checkEnv checks the words of a katana.env value (see ParseEnv).
func checkEnv(words []string) error {
	seen := map[string]int{}
	for i, w := range words {
		name, err := EnvName(w)
		if err != nil {
			return fmt.Errorf("word %d %q: %w", i+1, w, err)
		}
		if j, dup := seen[name]; dup {
			return fmt.Errorf("word %d %q: %s is already set by word %d", i+1, w, name, j)
		}
		seen[name] = i + 1
	}
	return nil
}

// EnvName returns the name of a NAME=VALUE word, or why the word is not
// one katana.env accepts (the rules of ParseEnv, but for one word).
func EnvName(w string) (string, error) {
	name, _, ok := strings.Cut(w, "=")
	if !ok {
		return "", errors.New("want NAME=VALUE")
	}
	if name == "" {
		return "", errors.New("empty name before '='")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return "", fmt.Errorf("%q is not a variable name (a letter or '_', then letters, digits and '_')", name)
	}
	if slices.Contains(initEnv, name) {
		return "", fmt.Errorf("%s is the init's to set (katana.env cannot set %s)", name, strings.Join(initEnv, ", "))
	}
	return name, nil
}
