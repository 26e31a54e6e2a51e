package config

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
)

// Config is the configuration of one axon process. Load fills it from
// flags, environment and config file and validates it; code that builds a
// Config by hand should call Validate.
type Config struct {
	ConfigFile       string        // YAML file read, "" if none
	DataDir          string        // directory for local state
	ServerName       id.ServerName // the Matrix server name
	Listen           string        // host:port of the Client-Server API
	FederationListen string        // host:port of the Server-Server API; "" = disabled
	MetricsListen    string        // host:port of /metrics; "" = disabled
	// FederationTLSCert and FederationTLSKey, when set, make the federation
	// listener serve HTTPS itself.
	FederationTLSCert string
	FederationTLSKey  string
	// FederationCAFile holds extra CAs trusted for outbound federation.
	FederationCAFile string
	// TrustedKeyServers are notaries: "<server name> <key ID> <public key>".
	TrustedKeyServers []string
	// Database is a SQLite file path or a postgres:// URL; see DatabaseKind.
	Database string
	NATS     []string // NATS server URLs; empty = embedded server
	Etcd     []string // etcd endpoints; empty = in-process coordinator
	Roles    []Role   // roles to run, without duplicates, in AllRoles order

	Registration             Registration
	RegistrationSharedSecret Secret // after Load, also when read from the file
	// RegistrationSharedSecretFile is where Load read the secret from.
	RegistrationSharedSecretFile string

	LogLevel       LogLevel
	LogFormat      LogFormat
	SigningKeyPath string // file with the Ed25519 signing key

	RateLimitIP    RateLimit // per client IP, on the Client-Server API
	RateLimitUser  RateLimit // per user, on writes
	TrustedProxies []string  // CIDRs whose X-Forwarded-For is believed
	MaxRequests    Bound     // client requests served at once, /sync long-polls aside
	MaxLongPolls   Bound     // /sync requests served at once
	NATSReplicas   Bound     // replicas of each JetStream stream (1–5)

	// Args are the command-line arguments left after the flags: those after
	// the first non-flag argument or after "--".
	Args []string

	// origins tells where each setting's value came from, by YAML key.
	// Absent keys (a Config built by hand) count as SourceDefault.
	origins map[string]origin
}

// Role is one of the roles that an axon process can run.
type Role string

// The roles, as DESIGN.md describes them.
const (
	RoleClient     Role = "client"     // Client-Server API except /sync; media
	RoleSync       Role = "sync"       // /sync, /events, sliding sync
	RoleFederation Role = "federation" // Server-Server API inbound, key server
	RoleRoom       Role = "room"       // owns room partitions, persists events
	RoleSender     Role = "sender"     // federation outbound, appservices, push
	RoleProber     Role = "prober"     // end-to-end probes and paging
)

// roleAll names every role in the roles setting.
const roleAll = "all"

// AllRoles returns every role, in canonical order.
func AllRoles() []Role {
	return []Role{RoleClient, RoleSync, RoleFederation, RoleRoom, RoleSender, RoleProber}
}

// HasRole reports whether the process runs role r.
func (c *Config) HasRole(r Role) bool { return slices.Contains(c.Roles, r) }

// parseRoles turns the roles setting into a list: "all" expands to every
// role; known roles are de-duplicated and sorted into canonical order;
// unknown and empty entries are kept, after the known ones, for Validate.
func parseRoles(v string) []Role {
	var known, other []Role
	for _, e := range splitList(v) {
		e = strings.ToLower(e)
		switch r := Role(e); {
		case e == roleAll:
			known = append(known, AllRoles()...)
		case slices.Contains(AllRoles(), r):
			known = append(known, r)
		default:
			other = append(other, r)
		}
	}
	var out []Role
	for _, r := range AllRoles() {
		if slices.Contains(known, r) {
			out = append(out, r)
		}
	}
	return append(out, other...)
}

// joinRoles renders roles as the setting's value; every role is "all".
func joinRoles(roles []Role) string {
	if slices.Equal(roles, AllRoles()) {
		return roleAll
	}
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// Registration is who may create accounts through the Client-Server API.
type Registration string

// The registration modes.
const (
	// RegistrationClosed allows only administrators (axon user create, or
	// shared-secret registration) to create accounts. It is the default:
	// an open server on the internet is a spam relay within days.
	RegistrationClosed Registration = "closed"
	// RegistrationToken requires a registration token (m.login.registration_token).
	RegistrationToken Registration = "token"
	// RegistrationOpen lets anyone register.
	RegistrationOpen Registration = "open"
)

// LogLevel is the least severe level that is logged.
type LogLevel string

// The log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Level returns l as a slog level; unknown levels are slog.LevelInfo.
func (l LogLevel) Level() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogFormat is how log records are written.
type LogFormat string

// The log formats: slog's TextHandler and JSONHandler.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// DatabaseKind is the kind of SQL database that the database setting names.
type DatabaseKind int

// The database kinds. CockroachDB speaks the PostgreSQL protocol and is
// DatabasePostgres here; the store tells them apart when it connects.
const (
	DatabaseInvalid  DatabaseKind = iota // not a valid database setting
	DatabaseSQLite                       // a file path
	DatabasePostgres                     // a postgres:// or postgresql:// URL
)

func (k DatabaseKind) String() string {
	switch k {
	case DatabaseSQLite:
		return "sqlite"
	case DatabasePostgres:
		return "postgres"
	}
	return "invalid"
}

// DatabaseKind returns the kind of c.Database, DatabaseInvalid if it is not
// valid (Validate says why).
func (c *Config) DatabaseKind() DatabaseKind {
	k, _ := parseDatabase(c.Database)
	return k
}

// redacted replaces a secret in printed output.
const redacted = "[redacted]"

// Secret is a string that does not print itself: fmt, slog, encoding/json
// and encoding/text all see "[redacted]" (or "" when it is empty). Reveal
// returns the value.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue keeps slog from logging the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoders from writing the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var _ slog.LogValuer = Secret("")

// RateLimit is a rate limit setting: "RATE/BURST" (requests per second and
// the burst allowed above it) or "off". The empty value (a Config built by
// hand) is off too.
type RateLimit string

// Parse returns the rate and burst; rate 0 means off.
func (r RateLimit) Parse() (rate float64, burst int, err error) {
	if r == "off" || r == "0" || r == "" {
		return 0, 0, nil
	}
	rs, bs, ok := strings.Cut(string(r), "/")
	if !ok {
		return 0, 0, fmt.Errorf("want RATE/BURST (such as 50/100) or off, got %q", string(r))
	}
	rate, err = strconv.ParseFloat(rs, 64)
	if err != nil || rate < 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		return 0, 0, fmt.Errorf("the rate %q is not a non-negative number", rs)
	}
	burst, err = strconv.Atoi(bs)
	if err != nil || burst < 1 {
		return 0, 0, fmt.Errorf("the burst %q is not a positive integer", bs)
	}
	return rate, burst, nil
}

// Bound is a positive whole number of things at once (a setting string).
type Bound string

// Int returns the bound, or an error when it is not a positive integer.
func (b Bound) Int() (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("want a positive whole number, got %q", string(b))
	}
	return n, nil
}

// StreamReplicas returns NATSReplicas (Validate checked it; 1 when
// unset, as in a Config built by hand).
func (c *Config) StreamReplicas() int {
	n, _ := c.streamReplicas()
	return n
}

func (c *Config) streamReplicas() (int, error) {
	if strings.TrimSpace(string(c.NATSReplicas)) == "" {
		return 1, nil
	}
	n, err := c.NATSReplicas.Int()
	if err == nil && n > 5 {
		err = fmt.Errorf("want 1 to 5, got %d", n)
	}
	if err != nil {
		return 1, err
	}
	return n, nil
}

// TrustedProxyPrefixes returns TrustedProxies parsed (Validate checked them).
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TrustedKeyServer is one entry of trusted_key_servers.
type TrustedKeyServer struct {
	ServerName string
	KeyID      keys.KeyID
	Key        ed25519.PublicKey
}

// ParseTrustedKeyServer reads "<server name> <key ID> <base64 public key>".
func ParseTrustedKeyServer(s string) (TrustedKeyServer, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return TrustedKeyServer{}, fmt.Errorf("%q: want \"<server name> <key ID> <base64 public key>\"", s)
	}
	if _, err := id.ParseServerName(f[0]); err != nil {
		return TrustedKeyServer{}, fmt.Errorf("%q: %w", f[0], err)
	}
	kid, err := keys.ParseKeyID(f[1])
	if err != nil {
		return TrustedKeyServer{}, fmt.Errorf("%q: %w", f[1], err)
	}
	raw, err := keys.DecodeBase64(f[2])
	if err != nil || len(raw) != ed25519.PublicKeySize || !keys.CheckPublicKey(raw) {
		return TrustedKeyServer{}, fmt.Errorf("the key of %s is not a valid ed25519 public key in base64", f[0])
	}
	return TrustedKeyServer{ServerName: f[0], KeyID: kid, Key: raw}, nil
}
