package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

// TestValidate checks the values of each setting, given as flags.
// A case without errs must load.
func TestValidate(t *testing.T) {
	flagErr := func(key, msg string) wantErr { return wantErr{src: SourceFlag, key: key, msg: msg} }
	for _, tc := range []struct {
		name string
		args []string
		errs []wantErr
	}{
		{name: "stream replicas on a NATS cluster", args: []string{"--nats", "nats://a:4222,nats://b:4222,nats://c:4222", "--nats-replicas", "3"}},
		{name: "stream replicas without a NATS cluster", args: []string{"--nats-replicas", "3"},
			errs: []wantErr{flagErr("--nats-replicas", "needs a NATS cluster")}},
		{name: "stream replicas too many", args: []string{"--nats", "nats://a:4222", "--nats-replicas", "6"},
			errs: []wantErr{flagErr("--nats-replicas", "want 1 to 5")}},
		{name: "stream replicas zero", args: []string{"--nats", "nats://a:4222", "--nats-replicas", "0"},
			errs: []wantErr{flagErr("--nats-replicas", "positive whole number")}},
		{name: "server name with port", args: []string{"--server-name", "matrix.example.org:8448"}},
		{name: "server name IPv6", args: []string{"--server-name", "[2001:db8::1]"}},
		{name: "server name with space", args: []string{"--server-name", "my server"},
			errs: []wantErr{flagErr("--server-name", `invalid server name "my server"`)}},
		{name: "server name with scheme", args: []string{"--server-name", "https://example.org"},
			errs: []wantErr{flagErr("--server-name", "invalid server name")}},
		{name: "server name empty", args: []string{"--server-name="},
			errs: []wantErr{flagErr("--server-name", "empty")}},

		{name: "listen all interfaces", args: []string{"--listen", ":8008", "--federation-listen", "[::]:8448", "--metrics-listen", "0.0.0.0:9100"}},
		{name: "listen random ports", args: []string{"--listen", "127.0.0.1:0", "--federation-listen", "127.0.0.1:0", "--metrics-listen", ":0"}},
		{name: "listen IPv6 zone", args: []string{"--listen", "[fe80::1%eth0]:8008"}},
		{name: "listen without port", args: []string{"--listen", "example.org"},
			errs: []wantErr{flagErr("--listen", "missing port")}},
		{name: "listen port too big", args: []string{"--listen", ":65536"},
			errs: []wantErr{flagErr("--listen", `port "65536" is not a number`)}},
		{name: "listen named port", args: []string{"--metrics-listen", "localhost:http"},
			errs: []wantErr{flagErr("--metrics-listen", `port "http"`)}},
		{name: "listen bad host", args: []string{"--federation-listen", "exa_mple.org:8448"},
			errs: []wantErr{flagErr("--federation-listen", `host "exa_mple.org" is neither`)}},
		{name: "listen URL", args: []string{"--listen", "http://localhost:8008"},
			errs: []wantErr{flagErr("--listen", "not a listen address")}},
		{name: "listen empty with client", args: []string{"--listen=", "--roles", "client"},
			errs: []wantErr{flagErr("--listen", "must not be empty while the client role runs")}},
		{name: "listen empty without client or sync", args: []string{"--listen=", "--roles", "room,sender"}},
		{name: "federation disabled without role", args: []string{"--federation-listen=", "--roles", "client,sync,room,sender"}},
		{name: "federation disabled with role", args: []string{"--federation-listen="},
			errs: []wantErr{flagErr("--federation-listen", "while the federation role runs")}},
		{name: "metrics disabled", args: []string{"--metrics-listen="}},
		{name: "listeners collide", args: []string{"--federation-listen", "localhost:8008", "--metrics-listen", ":8008"},
			errs: []wantErr{
				flagErr("--federation-listen", `"localhost:8008" is also the address of listen`),
				flagErr("--metrics-listen", `":8008" is also the address of listen`),
				flagErr("--metrics-listen", `":8008" is also the address of federation_listen`),
			}},
		{name: "different hosts same port", args: []string{"--listen", "10.0.0.1:80", "--federation-listen", "10.0.0.2:80"}},

		{name: "federation TLS", args: []string{"--federation-tls-cert", "/c.pem", "--federation-tls-key", "/k.pem"}},
		{name: "federation TLS cert only", args: []string{"--federation-tls-cert", "/c.pem"},
			errs: []wantErr{flagErr("--federation-tls-cert", "set both or neither")}},
		{name: "federation TLS key only", args: []string{"--federation-tls-key", "/k.pem"},
			errs: []wantErr{{src: SourceDefault, key: "federation_tls_cert", msg: "set both or neither"}}},
		{name: "trusted key servers", args: []string{"--trusted-key-servers", "matrix.org ed25519:auto Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"}},
		{name: "trusted key server without key", args: []string{"--trusted-key-servers", "matrix.org ed25519:auto"},
			errs: []wantErr{flagErr("--trusted-key-servers", "entry 1")}},
		{name: "trusted key server bad name", args: []string{"--trusted-key-servers", "a.org ed25519:a Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw,bad_name ed25519:a Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"},
			errs: []wantErr{flagErr("--trusted-key-servers", "entry 2")}},
		{name: "trusted key server short key", args: []string{"--trusted-key-servers", "a.org ed25519:a AAAA"},
			errs: []wantErr{flagErr("--trusted-key-servers", "not a valid ed25519 public key")}},
		{name: "trusted key server bad key ID", args: []string{"--trusted-key-servers", "a.org auto Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"},
			errs: []wantErr{flagErr("--trusted-key-servers", "entry 1")}},

		{name: "roles all", args: []string{"--roles", "all"}},
		{name: "roles mixed case and duplicates", args: []string{"--roles", " Room, room,SYNC "}},
		{name: "unknown role", args: []string{"--roles", "client,syncer"},
			errs: []wantErr{flagErr("--roles", `unknown role "syncer"; the roles are client, sync`)}},
		{name: "empty role entry", args: []string{"--roles", "client,"},
			errs: []wantErr{flagErr("--roles", "has an empty entry")}},
		{name: "no roles", args: []string{"--roles", " "},
			errs: []wantErr{flagErr("--roles", "at least one role")}},

		{name: "registration token", args: []string{"--registration", "Token"}},
		{name: "registration bad", args: []string{"--registration", "invite"},
			errs: []wantErr{flagErr("--registration", `"invite" is not one of closed, token, open`)}},
		{name: "log level bad", args: []string{"--log-level", "trace"},
			errs: []wantErr{flagErr("--log-level", `"trace" is not one of debug, info, warn, error`)}},
		{name: "log format bad", args: []string{"--log-format", "logfmt"},
			errs: []wantErr{flagErr("--log-format", `"logfmt" is not one of text, json`)}},
		{name: "data dir empty", args: []string{"--data-dir", ""},
			errs: []wantErr{flagErr("--data-dir", "must not be empty")}},
		{name: "signing key empty", args: []string{"--signing-key-path="},
			errs: []wantErr{flagErr("--signing-key-path", "must not be empty")}},

		{name: "nats URLs", args: []string{"--nats", "nats://a:4222, tls://b:4222,ws://c,wss://d:443,e.internal:4222,[::1]:4222"}},
		{name: "nats bad", args: []string{"--nats", "http://a:4222,localhost,:4222"},
			errs: []wantErr{
				flagErr("--nats", `entry 1 is not a NATS server URL: scheme "http" is not one of nats, tls, ws, wss`),
				flagErr("--nats", "entry 2 is not a NATS server URL: neither host:port nor a URL"),
				flagErr("--nats", "entry 3 is not a NATS server URL: host:port without a host"),
			}},
		{name: "etcd endpoints", args: []string{"--etcd", "http://a:2379,https://b,unix:///run/etcd.sock,c:2379"}},
		{name: "etcd no host", args: []string{"--etcd", "https://"},
			errs: []wantErr{flagErr("--etcd", "entry 1 is not an etcd endpoint: the URL has no host")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, nil, files{}.read)
			checkErrors(t, err, tc.errs...)
		})
	}
}

func TestDatabaseKind(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want DatabaseKind
		msg  string // error, if any
	}{
		{"axon.db", DatabaseSQLite, ""},
		{"/var/lib/axon/axon.db", DatabaseSQLite, ""},
		{`C:\axon\axon.db`, DatabaseSQLite, ""},
		{"./data:with:colons.db", DatabaseSQLite, ""},
		{"postgres://axon@db:5432/axon?sslmode=require", DatabasePostgres, ""},
		{"postgresql://root@cockroach:26257/axon?sslmode=verify-full", DatabasePostgres, ""},
		{"POSTGRES://db/axon", DatabasePostgres, ""},
		{"postgres:///axon?host=/run/postgresql", DatabasePostgres, ""},
		{"postgres://u:hunter2@db/%zz", DatabaseInvalid, `invalid URL escape "%zz"`},
		{"postgres://u:hunter2@db:99999/axon", DatabaseInvalid, `port "99999"`},
		{"mysql://u:hunter2@db/axon", DatabaseInvalid, `URL scheme "mysql" is not postgres`},
		{"cockroachdb://u:hunter2@db/axon", DatabaseInvalid, "CockroachDB also takes postgresql://"},
		{"sqlite:///var/lib/axon.db", DatabaseInvalid, `URL scheme "sqlite"`},
		{"file:axon.db?mode=rwc", DatabaseInvalid, "not a file: URI"},
		{"", DatabaseInvalid, "it is empty"},
	} {
		c := mustLoad(t, nil, nil, files{})
		c.Database = tc.dsn
		err := c.Validate()
		if got := c.DatabaseKind(); got != tc.want {
			t.Errorf("%q: kind %v, want %v", tc.dsn, got, tc.want)
		}
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%q: %v", tc.dsn, err)
		case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%q: error %v, want %q", tc.dsn, err, tc.msg)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%q: error repeats the password: %v", tc.dsn, err)
		}
	}
	if DatabaseSQLite.String() != "sqlite" || DatabasePostgres.String() != "postgres" || DatabaseInvalid.String() != "invalid" {
		t.Error("DatabaseKind.String")
	}
}

// TestValidateByHand checks a Config that code built without Load: errors
// name the YAML key and the default source.
func TestValidateByHand(t *testing.T) {
	c := &Config{
		DataDir: "/d", ServerName: "example.org", Listen: ":8008", Database: "/d/axon.db",
		Roles: []Role{RoleClient, "bogus"}, Registration: RegistrationOpen,
		LogLevel: LogDebug, LogFormat: LogJSON, SigningKeyPath: "/d/key", MaxRequests: "10", MaxLongPolls: "10",
	}
	checkErrors(t, c.Validate(), wantErr{src: SourceDefault, key: "roles", setting: keyRoles, msg: `roles (default): unknown role "bogus"`})
	c.Roles = []Role{RoleClient}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if !c.HasRole(RoleClient) || c.HasRole(RoleRoom) {
		t.Error("HasRole")
	}
	if c.LogLevel.Level().String() != "DEBUG" || LogWarn.Level().String() != "WARN" || LogError.Level().String() != "ERROR" {
		t.Error("LogLevel.Level")
	}
	var idErr *id.Error
	c.ServerName = "a b"
	if err := c.Validate(); !errors.As(err, &idErr) {
		t.Errorf("error %v does not wrap *id.Error", err)
	}
}

func TestFieldErrorString(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{Key: "--listen", Source: SourceFlag, Msg: "bad"}, "flag --listen: bad"},
		{FieldError{Key: "AXON_LISTEN", Source: SourceEnv, Msg: "bad", Err: cause}, "environment variable AXON_LISTEN: bad: cause"},
		{FieldError{Key: "listen", Source: SourceFile, File: "a.yaml", Line: 3, Msg: "bad"}, "config file a.yaml:3: listen: bad"},
		{FieldError{Source: SourceFile, File: "a.yaml", Msg: "not valid YAML", Err: cause}, "config file a.yaml: not valid YAML: cause"},
		{FieldError{Key: "listen", Msg: "cause", Err: cause}, "listen (default): cause"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	for s, want := range map[Source]string{SourceDefault: "default", SourceFile: "config file", SourceEnv: "environment", SourceFlag: "flag"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}

func TestRateLimitsAndProxies(t *testing.T) {
	c := &Config{
		DataDir: "/d", ServerName: "example.org", Listen: ":8008", Database: "/d/axon.db",
		Roles: []Role{RoleClient}, Registration: RegistrationOpen,
		LogLevel: LogDebug, LogFormat: LogJSON, SigningKeyPath: "/d/key",
		RateLimitIP: "50/100", RateLimitUser: "off", TrustedProxies: []string{"10.0.0.0/8", "::1"},
		MaxRequests: "2048", MaxLongPolls: "20000",
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if r, b, _ := c.RateLimitIP.Parse(); r != 50 || b != 100 {
		t.Errorf("rate_limit_ip parsed as %v/%d", r, b)
	}
	if r, _, _ := c.RateLimitUser.Parse(); r != 0 {
		t.Errorf("off parsed as rate %v", r)
	}
	if got := c.TrustedProxyPrefixes(); len(got) != 2 || got[1].Bits() != 128 {
		t.Errorf("trusted proxies %v", got)
	}
	for _, bad := range []RateLimit{"50", "x/1", "-1/5", "5/0", "5/x", "NaN/2"} {
		c.RateLimitIP = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "rate_limit_ip") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
	c.RateLimitIP = "off"
	c.TrustedProxies = []string{"not-a-network"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
		t.Errorf("bad proxy: %v", err)
	}
}

// TestBounds checks that max_requests and max_long_polls take positive
// whole numbers only, and say which key is wrong.
func TestBounds(t *testing.T) {
	for _, bad := range []Bound{"0", "-5", "many", "1.5", ""} {
		c := &Config{
			DataDir: "/d", ServerName: "example.org", Listen: ":8008", Database: "/d/axon.db",
			Roles: []Role{RoleClient}, Registration: RegistrationOpen,
			LogLevel: LogDebug, LogFormat: LogJSON, SigningKeyPath: "/d/key",
			MaxRequests: bad, MaxLongPolls: "100",
		}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "max_requests") || strings.Contains(err.Error(), "max_long_polls") {
			t.Errorf("max_requests %q: %v", bad, err)
		}
	}
	if n, err := Bound(" 64 ").Int(); n != 64 || err != nil {
		t.Errorf("Bound(64) = %d, %v", n, err)
	}
}
