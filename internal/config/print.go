package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// usageIntro heads the settings in PrintDefaults.
const usageIntro = `Settings. Each is a flag (--name or -name), an environment variable and a
key of the YAML file that --config names. Flags win over the environment,
the environment over the file, the file over the defaults.
`

// PrintDefaults writes the documentation of every setting to w: flag,
// environment variable, YAML key, meaning and default. It is what
// "axon serve --help" shows below the command's own usage line.
func PrintDefaults(w io.Writer) error {
	var b strings.Builder
	b.WriteString(usageIntro)
	for _, s := range settings {
		file := "YAML " + s.key
		if s.noFile {
			file = "not in the file"
		}
		fmt.Fprintf(&b, "\n  --%s %s\n        %s; %s\n", s.flag(), s.metavar, s.env(), file)
		for _, line := range wrap(s.usage, 70) {
			b.WriteString("        ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "        Default: %s\n", s.defaultDoc())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) > width:
			lines = append(lines, line)
			line = word
		default:
			line += " " + word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// display returns the value of s in c as it may be printed: secrets and
// the passwords in URLs are redacted.
func (s *setting) display(c *Config) string {
	v := s.get(c)
	switch {
	case s.secret && v != "":
		return redacted
	case s.redact != nil:
		return s.redact(v)
	}
	return v
}

// String returns the configuration as YAML, one setting a line with where
// its value came from. Secrets and the passwords in URLs are redacted, so it
// can go to a log. It is a value method so that printing a Config value
// with %v or %+v redacts too.
func (c Config) String() string {
	var b strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&b, "%s: %s # %s\n", s.key, strconv.Quote(s.display(&c)), c.origin(s.key))
	}
	return b.String()
}

// GoString is String, so that %#v does not get around the redaction.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration as a group of its settings, redacted.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.String(s.key, s.display(&c))
	}
	return slog.GroupValue(attrs...)
}

var (
	_ fmt.Stringer   = Config{}
	_ fmt.GoStringer = Config{}
	_ slog.LogValuer = Config{}
)

// redactedCredential replaces a password or token inside a URL; unlike
// redacted it needs no escaping there.
const redactedCredential = "xxxxx"

// redactURL hides the password of a URL, and its "password" query
// parameter (libpq reads one). If tokenUser, a user name without a
// password is a token (NATS reads it so) and is hidden too. A value that
// does not parse but has an "@" is hidden entirely.
func redactURL(v string, tokenUser bool) string {
	u, err := url.Parse(v)
	if err != nil || !strings.Contains(v, "://") {
		if strings.Contains(v, "@") {
			return redacted
		}
		return v
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redactedCredential)
		} else if tokenUser {
			u.User = url.User(redactedCredential)
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redactedCredential)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactURLs redacts each entry of a comma-separated list of URLs.
func redactURLs(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = redactURL(p, true)
	}
	return strings.Join(parts, ",")
}
