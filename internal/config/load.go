package config

import (
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

// rawValue is a setting's value as its source gave it, before parsing.
type rawValue struct {
	v   string
	org origin
}

// layer is the raw values of one source, by YAML key.
type layer map[string]rawValue

// Load builds the configuration from command-line arguments (without the
// program and subcommand names), the environment ("KEY=value" entries, as
// os.Environ returns them) and the config file that --config or AXON_CONFIG
// names, which it reads with readFile (os.ReadFile if nil). It has no other
// inputs and no side effects.
//
// Every problem is reported: the error joins one *FieldError per problem.
// On any error the Config is nil. If args ask for help (-h, --help), the
// error is flag.ErrHelp; print PrintDefaults then.
func Load(args, env []string, readFile func(string) ([]byte, error)) (*Config, error) {
	return LoadFlags(flag.NewFlagSet("axon", flag.ContinueOnError), args, env, readFile)
}

// LoadFlags is Load with a caller's FlagSet, for subcommands that have flags
// of their own: LoadFlags adds a flag for every setting to fs and parses
// args with it, so fs's own flags are set too when it returns. It silences
// fs (its errors come back as *FieldError instead), and fs should not be
// reused afterwards. Like fs.Var, it panics if fs already has a flag with
// the name of a setting.
func LoadFlags(fs *flag.FlagSet, args, env []string, readFile func(string) ([]byte, error)) (*Config, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	flags := layer{}
	for _, s := range settings {
		fs.Var(&flagValue{s: s, l: flags}, s.flag(), s.usage+" ("+s.env()+")")
	}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	errs, help := parseFlags(fs, args)
	if help {
		return nil, flag.ErrHelp
	}
	envs, envErrs := parseEnv(env)
	errs = append(errs, envErrs...)

	var file layer
	if path, _ := firstSet(keyConfig, flags, envs); strings.TrimSpace(path.v) != "" {
		name := strings.TrimSpace(path.v)
		data, err := readFile(name)
		if err != nil {
			errs = append(errs, fieldError(keyConfig, path.org, "cannot read the config file", err))
		} else {
			var fileErrs []error
			file, fileErrs = parseFile(name, data)
			errs = append(errs, fileErrs...)
		}
	}

	c := build(flags, envs, file)
	c.Args = fs.Args()
	errs = append(errs, c.readSecretFile(flags, envs, file, readFile)...)
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// firstSet returns the value of key from the first layer that sets it.
func firstSet(key string, layers ...layer) (rawValue, bool) {
	for _, l := range layers {
		if r, ok := l[key]; ok {
			return r, true
		}
	}
	return rawValue{}, false
}

// build merges the layers, highest precedence first, over the defaults.
func build(flags, envs, file layer) *Config {
	c := &Config{origins: make(map[string]origin, len(settings))}
	// Settings with derived defaults go second: they depend on the others.
	for _, derived := range []bool{false, true} {
		for _, s := range settings {
			if (s.derived != nil) != derived {
				continue
			}
			r, ok := firstSet(s.key, flags, envs, file)
			if !ok {
				r = rawValue{v: s.def, org: origin{src: SourceDefault, name: s.key}}
				if s.derived != nil {
					r.v = s.derived(c)
				}
			}
			s.set(c, r.v)
			c.origins[s.key] = r.org
		}
	}
	return c
}

// readSecretFile reads the registration shared secret from its file, if
// one is set, into c.RegistrationSharedSecret.
func (c *Config) readSecretFile(flags, envs, file layer, readFile func(string) ([]byte, error)) []error {
	path := c.RegistrationSharedSecretFile
	if path == "" {
		return nil
	}
	org := c.origins[keySecretFile]
	if c.RegistrationSharedSecret != "" {
		other, _ := firstSet(keySecret, flags, envs, file)
		return []error{fieldError(keySecretFile, org,
			"cannot be combined with registration_shared_secret, which "+other.org.String()+" sets", nil)}
	}
	data, err := readFile(path)
	if err != nil {
		return []error{fieldError(keySecretFile, org, "cannot read the secret", err)}
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return []error{fieldError(keySecretFile, org, "the file "+path+" is empty", nil)}
	}
	c.RegistrationSharedSecret = Secret(secret)
	return nil
}

// flagValue is the flag.Value of one setting: it records what the command
// line says in the flag layer. Set never fails; Validate checks values.
type flagValue struct {
	s *setting
	l layer
}

func (f *flagValue) Set(v string) error {
	f.l[f.s.key] = rawValue{v: v, org: origin{src: SourceFlag, name: "--" + f.s.flag()}}
	return nil
}

// String returns the default, for flag.FlagSet.PrintDefaults. The flag
// package also calls it on a zero flagValue.
func (f *flagValue) String() string {
	if f == nil || f.s == nil || f.s.def == "" {
		return ""
	}
	return f.s.def
}

// parseFlags parses args with fs and reports every bad flag, not only the
// first: after an error it goes on with the arguments that follow.
func parseFlags(fs *flag.FlagSet, args []string) (errs []error, help bool) {
	for {
		err := fs.Parse(args)
		if err == nil {
			return errs, false
		}
		if errors.Is(err, flag.ErrHelp) {
			return nil, true
		}
		// The flag package consumes the offending argument, except on bad
		// syntax ("-=x", "---x"), where it leaves it first.
		rest := fs.Args()
		var bad string
		if consumed := args[:len(args)-len(rest)]; len(consumed) == 0 {
			bad, rest = args[0], args[1:]
		} else {
			// The flag itself, or its value after it ("-n x").
			bad = consumed[len(consumed)-1]
			if !strings.HasPrefix(bad, "-") && len(consumed) > 1 {
				bad = consumed[len(consumed)-2]
			}
		}
		errs = append(errs, flagError(fs, bad, len(rest) == 0, err))
		args = rest
	}
}

// flagError describes the failure of parsing argument arg.
func flagError(fs *flag.FlagSet, arg string, last bool, err error) *FieldError {
	name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if name == "" || strings.HasPrefix(arg, "---") {
		return &FieldError{Key: arg, Source: SourceFlag, Msg: "bad flag syntax"}
	}
	fe := &FieldError{Key: "--" + name, Source: SourceFlag}
	if s := byFlag[name]; s != nil {
		fe.Setting = s.key
	}
	switch {
	case fs.Lookup(name) == nil:
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
		fe.Msg = unknownMsg("flag", "--"+name, names)
	case !hasValue && last:
		fe.Msg = "needs a value"
	default: // a flag of the caller's whose value did not parse
		fe.Msg, fe.Err = "bad value", err
	}
	return fe
}

// serviceLink matches the variables that Kubernetes puts into every pod for
// each Service in its namespace: a Service named "axon" or "axon-sync"
// yields AXON_SERVICE_HOST, AXON_SYNC_PORT_8008_TCP_ADDR and the like.
// They are not typos of ours, so they are ignored.
var serviceLink = regexp.MustCompile(`^AXON(_[A-Z0-9_]+?)?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$`)

// parseEnv reads the AXON_* variables of env. An AXON_* variable that is
// not a setting is an error, most likely a typo; other variables are
// ignored. When a variable repeats, the last one counts, as in os/exec.
func parseEnv(env []string) (layer, []error) {
	l := layer{}
	unknown := map[string]bool{}
	for _, kv := range env {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		s := byEnv[name]
		if s == nil {
			if !serviceLink.MatchString(name) {
				unknown[name] = true
			}
			continue
		}
		l[s.key] = rawValue{v: v, org: origin{src: SourceEnv, name: name}}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(unknown)) {
		errs = append(errs, &FieldError{Key: name, Source: SourceEnv,
			Msg: unknownMsg("setting", name, settingNames((*setting).env))})
	}
	return l, errs
}

// settingNames returns one name of every setting.
func settingNames(name func(*setting) string) []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = name(s)
	}
	return out
}
