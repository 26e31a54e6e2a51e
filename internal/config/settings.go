package config

import (
	"path/filepath"
	"strings"

	"github.com/axon-hs/axon/matrix/id"
)

// envPrefix starts the name of every environment variable that Axon reads.
const envPrefix = "AXON_"

// setting describes one configuration setting. The table [settings] is the
// single source of truth: flags, environment variables, YAML keys, usage
// text, the redacted dump and (through a test) the table in doc.go are all
// derived from it.
type setting struct {
	key     string // YAML key; the flag and env names derive from it
	metavar string // placeholder for the value in usage text
	def     string // default value ("" = empty), unless derived is set
	defDoc  string // how the default is documented when it is not def itself
	usage   string // what the setting means; one or more sentences
	secret  bool   // never printed, never echoed in errors
	list    bool   // comma-separated; the config file may give a YAML list
	noFile  bool   // may not appear in the config file
	// redact, if set, hides the secret parts of a value for printing.
	redact func(v string) string

	// derived computes the default from settings resolved earlier
	// (always ones without derived themselves).
	derived func(c *Config) string
	// get renders the field of Config as a settings string; set parses a
	// settings string into it. set never fails: Validate checks values.
	get func(c *Config) string
	set func(c *Config, v string)
}

// flag returns the flag name without dashes: "server-name".
func (s *setting) flag() string { return strings.ReplaceAll(s.key, "_", "-") }

// env returns the environment variable: "AXON_SERVER_NAME".
func (s *setting) env() string { return envPrefix + strings.ToUpper(s.key) }

// defaultDoc is the default as the documentation shows it: one token.
func (s *setting) defaultDoc() string {
	switch {
	case s.defDoc != "":
		return s.defDoc
	case s.def == "":
		return `""`
	}
	return s.def
}

// Keys of the settings that other code refers to by name.
const (
	keyConfig           = "config"
	keyDataDir          = "data_dir"
	keyServerName       = "server_name"
	keyListen           = "listen"
	keyFederationListen = "federation_listen"
	keyMetricsListen    = "metrics_listen"
	keyDatabase         = "database"
	keyNATS             = "nats"
	keyEtcd             = "etcd"
	keyRoles            = "roles"
	keyRegistration     = "registration"
	keySecret           = "registration_shared_secret"
	keySecretFile       = "registration_shared_secret_file"
	keyLogLevel         = "log_level"
	keyLogFormat        = "log_format"
	keySigningKeyPath   = "signing_key_path"
	keyRateLimitIP      = "rate_limit_ip"
	keyRateLimitUser    = "rate_limit_user"
	keyTrustedProxies   = "trusted_proxies"
	keyMaxRequests      = "max_requests"
	keyMaxLongPolls     = "max_long_polls"
	keyNATSReplicas     = "nats_replicas"
	keyFedTLSCert       = "federation_tls_cert"
	keyFedTLSKey        = "federation_tls_key"
	keyFedCAFile        = "federation_ca_file"
	keyTrustedKeyServer = "trusted_key_servers"
)

// settings is every setting, in the order in which usage text, the dump and
// doc.go list them.
var settings = []*setting{
	{
		key: keyConfig, metavar: "FILE",
		usage: "YAML file to read settings from, with the keys of the YAML column. " +
			"Only a flag or the environment can name it, not the file itself. " +
			"Unknown keys in the file are errors.",
		noFile: true,
		get:    func(c *Config) string { return c.ConfigFile },
		set:    func(c *Config, v string) { c.ConfigFile = strings.TrimSpace(v) },
	},
	{
		key: keyDataDir, metavar: "DIR", def: "./axon-data",
		usage: "Directory for local state. The default database and signing key " +
			"paths are inside it, and so is the storage of an embedded NATS server.",
		get: func(c *Config) string { return c.DataDir },
		set: func(c *Config, v string) { c.DataDir = strings.TrimSpace(v) },
	},
	{
		key: keyServerName, metavar: "NAME", def: "localhost",
		usage: "The Matrix server name (host[:port]): the domain of user IDs and room aliases. " +
			"It cannot change once users exist.",
		get: func(c *Config) string { return string(c.ServerName) },
		set: func(c *Config, v string) { c.ServerName = id.ServerName(strings.TrimSpace(v)) },
	},
	{
		key: keyListen, metavar: "ADDR", def: "localhost:8008",
		usage: "host:port of the Client-Server API (roles client and sync), plain HTTP. " +
			"An empty host (\":8008\") listens on every interface.",
		get: func(c *Config) string { return c.Listen },
		set: func(c *Config, v string) { c.Listen = strings.TrimSpace(v) },
	},
	{
		key: keyFederationListen, metavar: "ADDR", def: "localhost:8448",
		usage: "host:port of the Server-Server API (role federation): plain HTTP behind a " +
			"TLS-terminating proxy, or HTTPS with federation_tls_cert and federation_tls_key. " +
			"Empty disables it; then the federation role must not run.",
		get: func(c *Config) string { return c.FederationListen },
		set: func(c *Config, v string) { c.FederationListen = strings.TrimSpace(v) },
	},
	{
		key: keyFedTLSCert, metavar: "FILE",
		usage: "PEM certificate chain that the federation listener serves HTTPS with (with " +
			"federation_tls_key). Empty serves plain HTTP, for a proxy in front.",
		get: func(c *Config) string { return c.FederationTLSCert },
		set: func(c *Config, v string) { c.FederationTLSCert = strings.TrimSpace(v) },
	},
	{
		key: keyFedTLSKey, metavar: "FILE",
		usage: "PEM private key of federation_tls_cert.",
		get:   func(c *Config) string { return c.FederationTLSKey },
		set:   func(c *Config, v string) { c.FederationTLSKey = strings.TrimSpace(v) },
	},
	{
		key: keyFedCAFile, metavar: "FILE",
		usage: "PEM file of certificate authorities trusted, besides the system's, when " +
			"connecting to other servers (a private federation or a test CA). Certificates " +
			"are always verified.",
		get: func(c *Config) string { return c.FederationCAFile },
		set: func(c *Config, v string) { c.FederationCAFile = strings.TrimSpace(v) },
	},
	{
		key: keyTrustedKeyServer, metavar: "SERVERS", list: true,
		usage: "Comma-separated notaries asked for a server's signing keys when that server " +
			"cannot give them itself, each as \"<server name> <key ID> <base64 public key>\" " +
			"(the key its answers must be signed with). Empty asks only the servers themselves.",
		get: func(c *Config) string { return strings.Join(c.TrustedKeyServers, ",") },
		set: func(c *Config, v string) { c.TrustedKeyServers = splitList(v) },
	},
	{
		key: keyMetricsListen, metavar: "ADDR", def: "localhost:9090",
		usage: "host:port of the Prometheus metrics endpoint. Empty disables it.",
		get:   func(c *Config) string { return c.MetricsListen },
		set:   func(c *Config, v string) { c.MetricsListen = strings.TrimSpace(v) },
	},
	{
		key: keyDatabase, metavar: "DSN", defDoc: "<data_dir>/axon.db",
		usage: "SQLite file path, or a postgres:// or postgresql:// URL for PostgreSQL or " +
			"CockroachDB. A password in the URL is redacted when the configuration is printed; " +
			"prefer the environment or the config file for it, or PGPASSFILE.",
		derived: func(c *Config) string { return filepath.Join(c.DataDir, "axon.db") },
		redact:  func(v string) string { return redactURL(v, false) },
		get:     func(c *Config) string { return c.Database },
		set:     func(c *Config, v string) { c.Database = strings.TrimSpace(v) },
	},
	{
		key: keyNATS, metavar: "URLS", list: true,
		usage: "Comma-separated NATS server URLs (nats://, tls://, ws://, wss:// or host:port). " +
			"Empty runs an embedded NATS server, which serves this process only.",
		get:    func(c *Config) string { return strings.Join(c.NATS, ",") },
		set:    func(c *Config, v string) { c.NATS = splitList(v) },
		redact: redactURLs,
	},
	{
		key: keyNATSReplicas, metavar: "N", def: "1",
		usage: "Replicas of each JetStream stream the server creates or updates (1 to 5): 1 with " +
			"an embedded or single NATS server, 3 on a 3-node NATS cluster, so that losing a node " +
			"loses no acknowledged write. Every process of a deployment must use the same value.",
		get: func(c *Config) string { return string(c.NATSReplicas) },
		set: func(c *Config, v string) { c.NATSReplicas = Bound(strings.TrimSpace(v)) },
	},
	{
		key: keyEtcd, metavar: "URLS", list: true,
		usage: "Comma-separated etcd endpoints (http://, https://, unix://, unixs:// or host:port) " +
			"for cluster mode: the processes of a deployment share room partitions, sender " +
			"destinations and the sync indexer through leases under /axon/<server_name>/coord/, " +
			"and rebalance as processes come and go. user:password@ in a URL authenticates (the " +
			"password is redacted when the configuration is printed). Empty uses an in-process " +
			"coordinator, which serves this process only.",
		get:    func(c *Config) string { return strings.Join(c.Etcd, ",") },
		set:    func(c *Config, v string) { c.Etcd = splitList(v) },
		redact: redactURLs,
	},
	{
		key: keyRoles, metavar: "ROLES", def: "all", list: true,
		usage: "Comma-separated roles this process runs: client, sync, federation, room, " +
			"sender, prober, or all of them with \"all\".",
		get: func(c *Config) string { return joinRoles(c.Roles) },
		set: func(c *Config, v string) { c.Roles = parseRoles(v) },
	},
	{
		key: keyRegistration, metavar: "MODE", def: string(RegistrationClosed),
		usage: "Who may create accounts: closed (only administrators, with axon user create " +
			"or the shared secret), token (whoever holds a registration token) or open " +
			"(anyone: invites spam on a public server).",
		get: func(c *Config) string { return string(c.Registration) },
		set: func(c *Config, v string) { c.Registration = Registration(lowerTrim(v)) },
	},
	{
		key: keySecret, metavar: "SECRET", secret: true,
		usage: "Shared secret for administrative registration. Never printed. " +
			"Prefer registration_shared_secret_file or the environment: other users " +
			"of the machine can read a command line.",
		get: func(c *Config) string { return c.RegistrationSharedSecret.Reveal() },
		set: func(c *Config, v string) { c.RegistrationSharedSecret = Secret(v) },
	},
	{
		key: keySecretFile, metavar: "FILE",
		usage: "File that holds the registration shared secret (trailing newlines are " +
			"dropped), such as a mounted Kubernetes Secret. Excludes registration_shared_secret.",
		get: func(c *Config) string { return c.RegistrationSharedSecretFile },
		set: func(c *Config, v string) { c.RegistrationSharedSecretFile = strings.TrimSpace(v) },
	},
	{
		key: keyLogLevel, metavar: "LEVEL", def: string(LogInfo),
		usage: "Least severe log level written: debug, info, warn or error.",
		get:   func(c *Config) string { return string(c.LogLevel) },
		set:   func(c *Config, v string) { c.LogLevel = LogLevel(lowerTrim(v)) },
	},
	{
		key: keyLogFormat, metavar: "FORMAT", def: string(LogText),
		usage: "Log format: text (key=value lines, for people) or json (for log collectors).",
		get:   func(c *Config) string { return string(c.LogFormat) },
		set:   func(c *Config, v string) { c.LogFormat = LogFormat(lowerTrim(v)) },
	},
	{
		key: keySigningKeyPath, metavar: "FILE", defDoc: "<data_dir>/signing.key",
		usage:   "File that holds this server's Ed25519 signing key.",
		derived: func(c *Config) string { return filepath.Join(c.DataDir, "signing.key") },
		get:     func(c *Config) string { return c.SigningKeyPath },
		set:     func(c *Config, v string) { c.SigningKeyPath = strings.TrimSpace(v) },
	},
	{
		key: keyRateLimitIP, metavar: "RATE/BURST", def: "50/100",
		usage: "Client-Server API requests allowed per client IP address: a sustained rate per " +
			"second and a burst (\"50/100\"), or \"off\". Excess requests get 429 M_LIMIT_EXCEEDED " +
			"with Retry-After.",
		get: func(c *Config) string { return string(c.RateLimitIP) },
		set: func(c *Config, v string) { c.RateLimitIP = RateLimit(lowerTrim(v)) },
	},
	{
		key: keyRateLimitUser, metavar: "RATE/BURST", def: "10/50",
		usage: "Writes (sends, state, membership, room creation) allowed per user, as " +
			"rate_limit_ip, or \"off\".",
		get: func(c *Config) string { return string(c.RateLimitUser) },
		set: func(c *Config, v string) { c.RateLimitUser = RateLimit(lowerTrim(v)) },
	},
	{
		key: keyTrustedProxies, metavar: "CIDRS", list: true,
		usage: "Comma-separated networks of reverse proxies whose X-Forwarded-For header names " +
			"the client (for per-IP rate limits). Empty trusts no proxy.",
		get: func(c *Config) string { return strings.Join(c.TrustedProxies, ",") },
		set: func(c *Config, v string) { c.TrustedProxies = splitList(v) },
	},
	{
		key: keyMaxRequests, metavar: "N", def: "2048",
		usage: "Client-Server API requests served at once, /sync aside. Beyond it requests are " +
			"refused at once with 503 M_LIMIT_EXCEEDED and Retry-After, so an overload sheds " +
			"quickly instead of queueing.",
		get: func(c *Config) string { return string(c.MaxRequests) },
		set: func(c *Config, v string) { c.MaxRequests = Bound(strings.TrimSpace(v)) },
	},
	{
		key: keyMaxLongPolls, metavar: "N", def: "20000",
		usage: "/sync requests served at once (long-polls cost little while they wait), with the " +
			"same refusal beyond it. Each holds a connection: keep it below the process's " +
			"file descriptor limit.",
		get: func(c *Config) string { return string(c.MaxLongPolls) },
		set: func(c *Config, v string) { c.MaxLongPolls = Bound(strings.TrimSpace(v)) },
	},
}

// Lookup tables over settings by each of its names.
var (
	byKey  = index(func(s *setting) string { return s.key })
	byFlag = index(func(s *setting) string { return s.flag() })
	byEnv  = index(func(s *setting) string { return s.env() })
)

func index(name func(*setting) string) map[string]*setting {
	m := make(map[string]*setting, len(settings))
	for _, s := range settings {
		m[name(s)] = s
	}
	return m
}

// Setting is the public description of one setting, for documentation
// generators such as the Helm chart's values reference.
type Setting struct {
	Key     string // YAML key in the config file: "server_name"
	Flag    string // flag, with its two dashes: "--server-name"
	Env     string // environment variable: "AXON_SERVER_NAME"
	Default string // default as documented: "localhost", `""`, "<data_dir>/axon.db"
	Usage   string // meaning, in sentences
	Secret  bool   // the value is never printed
}

// Settings returns every setting in documentation order.
func Settings() []Setting {
	out := make([]Setting, len(settings))
	for i, s := range settings {
		out[i] = Setting{
			Key: s.key, Flag: "--" + s.flag(), Env: s.env(),
			Default: s.defaultDoc(), Usage: s.usage, Secret: s.secret,
		}
	}
	return out
}

// splitList splits a comma-separated value into trimmed entries. Empty
// entries are kept so that Validate can point at them; an empty or
// all-blank value is an empty list.
func splitList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

func lowerTrim(v string) string { return strings.ToLower(strings.TrimSpace(v)) }
