package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/matrix/id"
)

// Validate checks every setting of c and returns all problems at once,
// joined with errors.Join, each a *FieldError that names the setting as the
// source of its value spells it. It returns nil if c is valid.
func (c *Config) Validate() error { return errors.Join(c.validate()...) }

// origin returns where the setting with key got its value.
func (c *Config) origin(key string) origin {
	if o, ok := c.origins[key]; ok {
		return o
	}
	return origin{src: SourceDefault, name: key}
}

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, msg string, err error) {
		errs = append(errs, fieldError(key, c.origin(key), msg, err))
	}

	if c.DataDir == "" {
		bad(keyDataDir, "must not be empty", nil)
	}
	for _, rl := range []struct {
		key string
		v   RateLimit
	}{{keyRateLimitIP, c.RateLimitIP}, {keyRateLimitUser, c.RateLimitUser}} {
		if _, _, err := rl.v.Parse(); err != nil {
			bad(rl.key, err.Error(), err)
		}
	}
	for _, b := range []struct {
		key string
		v   Bound
	}{{keyMaxRequests, c.MaxRequests}, {keyMaxLongPolls, c.MaxLongPolls}} {
		if _, err := b.v.Int(); err != nil {
			bad(b.key, err.Error(), err)
		}
	}
	if n, err := c.streamReplicas(); err != nil {
		bad(keyNATSReplicas, err.Error(), err)
	} else if n > 1 && len(c.NATS) == 0 {
		bad(keyNATSReplicas, "more than one replica needs a NATS cluster (--nats); the embedded server is a single node", nil)
	}
	for _, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad(keyTrustedProxies, err.Error(), err)
		}
	}
	if _, err := id.ParseServerName(string(c.ServerName)); err != nil {
		bad(keyServerName, err.Error(), err) // says "invalid server name" and why
	}

	type listener struct{ key, addr string }
	var listeners []listener
	for _, l := range []struct {
		key, addr string
		roles     []Role // roles that need the listener
	}{
		{keyListen, c.Listen, []Role{RoleClient, RoleSync}},
		{keyFederationListen, c.FederationListen, []Role{RoleFederation}},
		{keyMetricsListen, c.MetricsListen, nil},
	} {
		if l.addr == "" {
			for _, r := range l.roles {
				if c.HasRole(r) {
					bad(l.key, fmt.Sprintf("must not be empty while the %s role runs", r), nil)
					break
				}
			}
			continue
		}
		if err := checkListenAddr(l.addr); err != nil {
			bad(l.key, fmt.Sprintf("%q is not a listen address (host:port)", l.addr), err)
			continue
		}
		for _, prev := range listeners {
			if sameListener(prev.addr, l.addr) {
				bad(l.key, fmt.Sprintf("%q is also the address of %s", l.addr, prev.key), nil)
			}
		}
		listeners = append(listeners, listener{l.key, l.addr})
	}

	if _, err := parseDatabase(c.Database); err != nil {
		bad(keyDatabase, "is not a SQLite file path or a postgres:// URL", err)
	}
	for i, u := range c.NATS {
		if err := checkURL(u, "nats", "tls", "ws", "wss"); err != nil {
			bad(keyNATS, fmt.Sprintf("entry %d is not a NATS server URL", i+1), err)
		}
	}
	for i, u := range c.Etcd {
		if err := checkURL(u, "http", "https", "unix", "unixs"); err != nil {
			bad(keyEtcd, fmt.Sprintf("entry %d is not an etcd endpoint", i+1), err)
		}
	}

	if len(c.Roles) == 0 {
		bad(keyRoles, "must name at least one role", nil)
	}
	for _, r := range c.Roles {
		if r == "" {
			bad(keyRoles, "has an empty entry", nil)
		} else if !slices.Contains(AllRoles(), r) {
			bad(keyRoles, fmt.Sprintf("unknown role %q; the roles are %s", r, roleList), nil)
		}
	}
	checkEnum(bad, keyRegistration, c.Registration, RegistrationClosed, RegistrationToken, RegistrationOpen)
	checkEnum(bad, keyLogLevel, c.LogLevel, LogDebug, LogInfo, LogWarn, LogError)
	checkEnum(bad, keyLogFormat, c.LogFormat, LogText, LogJSON)
	if c.SigningKeyPath == "" {
		bad(keySigningKeyPath, "must not be empty", nil)
	}
	if (c.FederationTLSCert == "") != (c.FederationTLSKey == "") {
		bad(keyFedTLSCert, "federation_tls_cert and federation_tls_key go together: set both or neither", nil)
	}
	for i, e := range c.TrustedKeyServers {
		if _, err := ParseTrustedKeyServer(e); err != nil {
			bad(keyTrustedKeyServer, fmt.Sprintf("entry %d: %v", i+1, err), err)
		}
	}
	return errs
}

// roleList names the valid values of the roles setting.
const roleList = "client, sync, federation, room, sender, prober and all"

// checkEnum reports v unless it is one of valid.
func checkEnum[T ~string](bad func(key, msg string, err error), key string, v T, valid ...T) {
	if slices.Contains(valid, v) {
		return
	}
	names := make([]string, len(valid))
	for i, x := range valid {
		names[i] = string(x)
	}
	bad(key, fmt.Sprintf("%q is not one of %s", v, strings.Join(names, ", ")), nil)
}

// checkListenAddr checks a host:port to listen on. The port is numeric
// (0 picks a free one); the host is empty (every interface), an IP address
// or a host name.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if err := checkPort(port); err != nil {
		return err
	}
	if host == "" {
		return nil
	}
	return checkHost(host)
}

func checkPort(port string) error {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func checkHost(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > 253 {
		return errors.New("host name is longer than 253 characters")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' || len(label) > 63 {
			return fmt.Errorf("host %q is neither an IP address nor a valid host name", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("host %q is neither an IP address nor a valid host name", host)
			}
		}
	}
	return nil
}

// sameListener reports whether two valid listen addresses would collide:
// the same non-zero port on the same host, or on any host when either one
// listens on every interface.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na == 0 || na != nb {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// checkURL checks one entry of a list of server URLs: "host:port", or a
// URL with one of schemes and a host (unix schemes may have a path instead).
// The error never repeats the entry, which may hold credentials.
func checkURL(s string, schemes ...string) error {
	if s == "" {
		return errors.New("it is empty")
	}
	if !strings.Contains(s, "://") {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return errors.New("neither host:port nor a URL with a scheme")
		}
		if err := checkPort(port); err != nil {
			return err
		}
		if host == "" {
			return errors.New("host:port without a host")
		}
		return checkHost(host)
	}
	u, err := url.Parse(s)
	if err != nil {
		return urlErr(err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("scheme %q is not one of %s", u.Scheme, strings.Join(schemes, ", "))
	}
	if u.Host == "" && (!strings.HasPrefix(u.Scheme, "unix") || u.Path == "") {
		return errors.New("the URL has no host")
	}
	if p := u.Port(); p != "" {
		return checkPort(p)
	}
	return nil
}

// urlErr returns the cause of a url.Parse error without the URL, which may
// hold a password.
func urlErr(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// parseDatabase tells what kind of database s names. A postgres:// or
// postgresql:// URL (any case) is PostgreSQL or CockroachDB. Any other URL
// is an error, and so is a "file:" URI: SQLite is named by a plain path, to
// which the store adds its own options. The error never repeats s, which
// may hold a password.
func parseDatabase(s string) (DatabaseKind, error) {
	if s == "" {
		return DatabaseInvalid, errors.New("it is empty")
	}
	scheme, _, isURL := strings.Cut(s, "://")
	lower := strings.ToLower(scheme)
	switch {
	case isURL && (lower == "postgres" || lower == "postgresql"):
		u, err := url.Parse(s)
		if err != nil {
			return DatabaseInvalid, urlErr(err)
		}
		if p := u.Port(); p != "" {
			if err := checkPort(p); err != nil {
				return DatabaseInvalid, err
			}
		}
		return DatabasePostgres, nil
	case isURL && !strings.ContainsAny(scheme, "/\\"):
		return DatabaseInvalid, fmt.Errorf("URL scheme %q is not postgres or postgresql "+
			"(CockroachDB also takes postgresql://)", scheme)
	case strings.HasPrefix(strings.ToLower(s), "file:"):
		return DatabaseInvalid, errors.New("SQLite takes a plain file path, not a file: URI")
	}
	return DatabaseSQLite, nil
}
