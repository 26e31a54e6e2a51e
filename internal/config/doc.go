// Package config is the configuration of the axon binary (serve, migrate,
// user create, …): which settings exist, what they mean, where their values
// come from, and whether those values are valid.
//
// It owns parsing command-line flags, AXON_* environment variables and the
// YAML config file, merging them, and checking the result. It never reads
// the process's arguments, environment or files by itself ([Load] is given
// all three), keeps no global state, and never acts on the configuration:
// creating the data directory, opening the database, generating the signing
// key and binding listeners belong to the binary.
//
// # Sources and precedence
//
// Every setting is a flag, an environment variable and a YAML key, all
// derived from the key: data_dir is --data-dir (or -data-dir) and
// AXON_DATA_DIR. A flag wins over the environment, the environment over the
// config file, the config file over the default. A variable that is set
// counts even when it is empty (AXON_NATS= turns back to the embedded
// server whatever the file says); so does a YAML key with an empty or null
// value. A repeated flag counts once, the last time.
//
// The config file is read only when --config or AXON_CONFIG names it; there
// is no implicit path. It is one YAML mapping of setting keys to strings.
// The list settings (nats, etcd, roles) take a comma-separated string or a
// YAML list. Relative paths, from any source, are relative to the working
// directory of the process, not to the config file.
//
// Secrets never need the command line, where other users of the machine can
// read them: the registration shared secret can come from the environment,
// from the config file, or from a file of its own
// (registration_shared_secret_file, as a mounted Kubernetes Secret is). A
// PostgreSQL password can stay out of the database URL altogether with
// libpq's PGPASSFILE. [Config.String] and [Config.LogValue] redact secrets
// and the passwords in URLs, and error messages never repeat them.
//
// # Settings
//
//	Flag                               Environment                           YAML key                         Default
//
//	--config                           AXON_CONFIG                           config                           ""
//	    YAML file to read settings from, with the keys of the YAML column. Only
//	    a flag or the environment can name it, not the file itself. Unknown keys
//	    in the file are errors.
//
//	--data-dir                         AXON_DATA_DIR                         data_dir                         ./axon-data
//	    Directory for local state. The default database and signing key paths
//	    are inside it, and so is the storage of an embedded NATS server.
//
//	--server-name                      AXON_SERVER_NAME                      server_name                      localhost
//	    The Matrix server name (host[:port]): the domain of user IDs and room
//	    aliases. It cannot change once users exist.
//
//	--listen                           AXON_LISTEN                           listen                           localhost:8008
//	    host:port of the Client-Server API (roles client and sync), plain HTTP.
//	    An empty host (":8008") listens on every interface.
//
//	--federation-listen                AXON_FEDERATION_LISTEN                federation_listen                localhost:8448
//	    host:port of the Server-Server API (role federation): plain HTTP behind
//	    a TLS-terminating proxy, or HTTPS with federation_tls_cert and
//	    federation_tls_key. Empty disables it; then the federation role must not
//	    run.
//
//	--federation-tls-cert              AXON_FEDERATION_TLS_CERT              federation_tls_cert              ""
//	    PEM certificate chain that the federation listener serves HTTPS with
//	    (with federation_tls_key). Empty serves plain HTTP, for a proxy in
//	    front.
//
//	--federation-tls-key               AXON_FEDERATION_TLS_KEY               federation_tls_key               ""
//	    PEM private key of federation_tls_cert.
//
//	--federation-ca-file               AXON_FEDERATION_CA_FILE               federation_ca_file               ""
//	    PEM file of certificate authorities trusted, besides the system's, when
//	    connecting to other servers (a private federation or a test CA).
//	    Certificates are always verified.
//
//	--trusted-key-servers              AXON_TRUSTED_KEY_SERVERS              trusted_key_servers              ""
//	    Comma-separated notaries asked for a server's signing keys when that
//	    server cannot give them itself, each as "<server name> <key ID> <base64
//	    public key>" (the key its answers must be signed with). Empty asks only
//	    the servers themselves.
//
//	--metrics-listen                   AXON_METRICS_LISTEN                   metrics_listen                   localhost:9090
//	    host:port of the Prometheus metrics endpoint. Empty disables it.
//
//	--database                         AXON_DATABASE                         database                         <data_dir>/axon.db
//	    SQLite file path, or a postgres:// or postgresql:// URL for PostgreSQL
//	    or CockroachDB. A password in the URL is redacted when the configuration
//	    is printed; prefer the environment or the config file for it, or
//	    PGPASSFILE.
//
//	--nats                             AXON_NATS                             nats                             ""
//	    Comma-separated NATS server URLs (nats://, tls://, ws://, wss:// or
//	    host:port). Empty runs an embedded NATS server, which serves this
//	    process only.
//
//	--nats-replicas                    AXON_NATS_REPLICAS                    nats_replicas                    1
//	    Replicas of each JetStream stream the server creates or updates (1 to
//	    5): 1 with an embedded or single NATS server, 3 on a 3-node NATS
//	    cluster, so that losing a node loses no acknowledged write. Every
//	    process of a deployment must use the same value.
//
//	--etcd                             AXON_ETCD                             etcd                             ""
//	    Comma-separated etcd endpoints (http://, https://, unix://, unixs:// or
//	    host:port) for cluster mode: the processes of a deployment share room
//	    partitions, sender destinations and the sync indexer through leases
//	    under /axon/<server_name>/coord/, and rebalance as processes come and
//	    go. user:password@ in a URL authenticates (the password is redacted when
//	    the configuration is printed). Empty uses an in-process coordinator,
//	    which serves this process only.
//
//	--roles                            AXON_ROLES                            roles                            all
//	    Comma-separated roles this process runs: client, sync, federation, room,
//	    sender, prober, or all of them with "all".
//
//	--registration                     AXON_REGISTRATION                     registration                     closed
//	    Who may create accounts: closed (only administrators, with axon user
//	    create or the shared secret), token (whoever holds a registration token)
//	    or open (anyone: invites spam on a public server).
//
//	--registration-shared-secret       AXON_REGISTRATION_SHARED_SECRET       registration_shared_secret       ""
//	    Shared secret for administrative registration. Never printed. Prefer
//	    registration_shared_secret_file or the environment: other users of the
//	    machine can read a command line.
//
//	--registration-shared-secret-file  AXON_REGISTRATION_SHARED_SECRET_FILE  registration_shared_secret_file  ""
//	    File that holds the registration shared secret (trailing newlines are
//	    dropped), such as a mounted Kubernetes Secret. Excludes
//	    registration_shared_secret.
//
//	--log-level                        AXON_LOG_LEVEL                        log_level                        info
//	    Least severe log level written: debug, info, warn or error.
//
//	--log-format                       AXON_LOG_FORMAT                       log_format                       text
//	    Log format: text (key=value lines, for people) or json (for log
//	    collectors).
//
//	--signing-key-path                 AXON_SIGNING_KEY_PATH                 signing_key_path                 <data_dir>/signing.key
//	    File that holds this server's Ed25519 signing key.
//
//	--rate-limit-ip                    AXON_RATE_LIMIT_IP                    rate_limit_ip                    50/100
//	    Client-Server API requests allowed per client IP address: a sustained
//	    rate per second and a burst ("50/100"), or "off". Excess requests get
//	    429 M_LIMIT_EXCEEDED with Retry-After.
//
//	--rate-limit-user                  AXON_RATE_LIMIT_USER                  rate_limit_user                  10/50
//	    Writes (sends, state, membership, room creation) allowed per user, as
//	    rate_limit_ip, or "off".
//
//	--trusted-proxies                  AXON_TRUSTED_PROXIES                  trusted_proxies                  ""
//	    Comma-separated networks of reverse proxies whose X-Forwarded-For header
//	    names the client (for per-IP rate limits). Empty trusts no proxy.
//
//	--max-requests                     AXON_MAX_REQUESTS                     max_requests                     2048
//	    Client-Server API requests served at once, /sync aside. Beyond it
//	    requests are refused at once with 503 M_LIMIT_EXCEEDED and Retry-After,
//	    so an overload sheds quickly instead of queueing.
//
//	--max-long-polls                   AXON_MAX_LONG_POLLS                   max_long_polls                   20000
//	    /sync requests served at once (long-polls cost little while they wait),
//	    with the same refusal beyond it. Each holds a connection: keep it below
//	    the process's file descriptor limit.
//
// # Errors
//
// Load reports every problem at once, joined with errors.Join, each one a
// [*FieldError] that names the setting as its source spells it: "flag
// --listen", "environment variable AXON_LISTEN", "config file
// /etc/axon.yaml:7: listen", or "listen (default)". Unknown flags, unknown
// YAML keys and unknown AXON_* variables are errors, with a suggestion when
// one is a likely typo. Variables without the AXON_ prefix are ignored, and
// so are those that Kubernetes injects for a Service named axon or axon-*
// (AXON_SERVICE_HOST, AXON_SYNC_PORT_8008_TCP and the like).
//
// # Defaults
//
// The defaults make "axon serve" with no settings a complete single-process
// server on a laptop, reachable from that laptop only:
//
//   - Every listener binds to localhost. Serving the world is a decision:
//     set an empty host (":8008") or an address in a container or cluster.
//   - federation_listen is localhost:8448 rather than empty, so that the
//     default set of roles, which includes federation, is consistent. It is
//     plain HTTP: the spec requires TLS for federation, which a proxy or
//     ingress in front provides. An empty value disables it and is valid
//     only without the federation role.
//   - registration is closed: an open server on the internet is abused for
//     spam within days, so opening it must be explicit. Administrators
//     create accounts with axon user create or the shared secret.
//   - database and signing_key_path derive from data_dir unless they are
//     set, so moving data_dir moves both.
//   - Empty nats and etcd mean an embedded NATS server and an in-process
//     coordinator. They serve one process only; a deployment that runs
//     roles in several processes must give both, and a postgres:// database.
//   - log_format is text, for people; deployments should choose json.
package config
