package config

import (
	"strconv"
	"strings"
)

// Source is where a setting's value came from, in rising precedence.
type Source int

// The sources of settings. Flags win over the environment, the environment
// over the config file, the config file over the defaults.
const (
	SourceDefault Source = iota // the built-in default, or a value set by code
	SourceFile                  // the YAML config file
	SourceEnv                   // an AXON_* environment variable
	SourceFlag                  // a command-line flag
)

func (s Source) String() string {
	switch s {
	case SourceFile:
		return "config file"
	case SourceEnv:
		return "environment"
	case SourceFlag:
		return "flag"
	}
	return "default"
}

// origin records where a value was set, to name it in errors and dumps.
type origin struct {
	src  Source
	name string // as in src: "--listen", "AXON_LISTEN" or "listen"
	file string // config file, when src is SourceFile
	line int    // line in file, when src is SourceFile
}

func (o origin) String() string {
	switch o.src {
	case SourceFile:
		return "config file " + o.file + ":" + strconv.Itoa(o.line)
	case SourceEnv, SourceFlag:
		return o.src.String() + " " + o.name
	}
	return "default"
}

// FieldError is one problem with one setting, named as its source names
// it. Load and Validate return every FieldError they find, joined with
// errors.Join; use errors.As, or the Unwrap() []error method of the joined
// error, to get at them.
type FieldError struct {
	// Setting is the YAML key of the setting, "" when the key is not one
	// (an unknown flag, variable or YAML key) or the whole file is at fault.
	Setting string
	// Key is the setting as Source spells it: "--listen" for a flag,
	// "AXON_LISTEN" for the environment, "listen" in the config file or
	// for a default. It is "" for an error about the whole config file.
	Key    string
	Source Source
	File   string // the config file, when Source is SourceFile
	Line   int    // 1-based line in File; 0 if not known
	Msg    string // what is wrong; never contains a secret
	Err    error  // the underlying error, if any; Error adds it after Msg
}

func (e *FieldError) Error() string {
	var b strings.Builder
	switch e.Source {
	case SourceFlag:
		b.WriteString("flag ")
		b.WriteString(e.Key)
	case SourceEnv:
		b.WriteString("environment variable ")
		b.WriteString(e.Key)
	case SourceFile:
		b.WriteString("config file ")
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		if e.Key != "" {
			b.WriteString(": ")
			b.WriteString(e.Key)
		}
	default:
		b.WriteString(e.Key)
		b.WriteString(" (default)")
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil && e.Err.Error() != e.Msg {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// fieldError returns an error about the setting with key, attributed to
// where o says its value came from.
func fieldError(key string, o origin, msg string, err error) *FieldError {
	name := o.name
	if name == "" {
		name = key
	}
	return &FieldError{Setting: key, Key: name, Source: o.src, File: o.file, Line: o.line, Msg: msg, Err: err}
}

// unknownMsg says that name is not known and suggests the closest of
// candidates if one is close enough to be a typo.
func unknownMsg(what, name string, candidates []string) string {
	msg := "unknown " + what
	best, bestDist := "", len(name)/3+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		msg += " (did you mean " + best + "?)"
	}
	return msg
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
