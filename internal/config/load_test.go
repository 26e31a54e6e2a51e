package config

import (
	"errors"
	"flag"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// files fakes a file system for readFile.
type files map[string]string

func (f files) read(name string) ([]byte, error) {
	if s, ok := f[name]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// fieldErrors returns the *FieldError values joined in err.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*FieldError, len(errs))
	for i, e := range errs {
		fe, ok := e.(*FieldError)
		if !ok {
			t.Fatalf("error %d is %T, not *FieldError: %v", i, e, e)
		}
		out[i] = fe
	}
	return out
}

// wantErr is an expected *FieldError: the fields that are not zero must match.
type wantErr struct {
	src     Source
	key     string
	setting string
	line    int
	msg     string // substring of Error()
}

func (w wantErr) matches(fe *FieldError) bool {
	return fe.Source == w.src && fe.Key == w.key &&
		(w.setting == "" || fe.Setting == w.setting) &&
		(w.line == 0 || fe.Line == w.line) &&
		strings.Contains(fe.Error(), w.msg)
}

// checkErrors checks that err holds exactly the errors of want, in any order.
func checkErrors(t *testing.T, err error, want ...wantErr) {
	t.Helper()
	got := fieldErrors(t, err)
	used := make([]bool, len(got))
	for _, w := range want {
		i := 0
		for i < len(got) && (used[i] || !w.matches(got[i])) {
			i++
		}
		if i == len(got) {
			t.Errorf("no error like %+v in:\n%v", w, err)
			continue
		}
		used[i] = true
	}
	for i, fe := range got {
		if !used[i] {
			t.Errorf("unexpected error: %v", fe)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, nil, files{}.read)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DataDir:          "./axon-data",
		ServerName:       "localhost",
		Listen:           "localhost:8008",
		FederationListen: "localhost:8448",
		MetricsListen:    "localhost:9090",
		Database:         filepath.Join("axon-data", "axon.db"),
		Roles:            AllRoles(),
		Registration:     RegistrationClosed,
		LogLevel:         LogInfo,
		LogFormat:        LogText,
		SigningKeyPath:   filepath.Join("axon-data", "signing.key"),
		RateLimitIP:      "50/100",
		RateLimitUser:    "10/50",
		MaxRequests:      "2048",
		MaxLongPolls:     "20000",
		NATSReplicas:     "1",
	}
	for _, s := range settings {
		if g, w := s.get(c), s.get(want); g != w {
			t.Errorf("%s = %q, want %q", s.key, g, w)
		}
		if o := c.origin(s.key); o.src != SourceDefault {
			t.Errorf("%s comes from %v, want the default", s.key, o)
		}
	}
	if c.DatabaseKind() != DatabaseSQLite || c.LogLevel.Level().String() != "INFO" || len(c.Args) != 0 {
		t.Errorf("kind %v, level %v, args %q", c.DatabaseKind(), c.LogLevel.Level(), c.Args)
	}
}

func TestDerivedDefaults(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args, env      []string
		wantDB, wantSK string
	}{
		{"flag", []string{"--data-dir", "/var/lib/axon"}, nil, "/var/lib/axon/axon.db", "/var/lib/axon/signing.key"},
		{"env", nil, []string{"AXON_DATA_DIR=/srv/x/"}, "/srv/x/axon.db", "/srv/x/signing.key"},
		{"set explicitly", []string{"--data-dir", "/a", "--database", "/b/db.sqlite"},
			[]string{"AXON_SIGNING_KEY_PATH=/c/key"}, "/b/db.sqlite", "/c/key"},
		{"postgres", []string{"--data-dir", "/a", "--database", "postgres://db/axon"}, nil, "postgres://db/axon", "/a/signing.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, tc.env, files{}.read)
			if err != nil {
				t.Fatal(err)
			}
			if c.Database != tc.wantDB || c.SigningKeyPath != tc.wantSK {
				t.Errorf("database %q, signing key %q; want %q, %q", c.Database, c.SigningKeyPath, tc.wantDB, tc.wantSK)
			}
		})
	}
}

// precedenceValues are three valid values of each setting, for the flag,
// the environment and the file, in the form the setting's get returns.
var precedenceValues = map[string][3]string{
	keyConfig:           {"flag.yaml", "env.yaml", ""},
	keyDataDir:          {"/flag", "/env", "/file"},
	keyServerName:       {"flag.example", "env.example:8448", "[::1]:8448"},
	keyListen:           {":1001", "127.0.0.1:1002", "[::1]:1003"},
	keyFederationListen: {":2001", "0.0.0.0:2002", "fed.internal:2003"},
	keyMetricsListen:    {":3001", "localhost:3002", ""},
	keyDatabase:         {"/flag.db", "postgres://u@env/axon", "postgresql://file:26257/axon?sslmode=verify-full"},
	keyNATS:             {"nats://a:4222,nats://b:4222", "tls://env:4222", "file:4222"},
	keyEtcd:             {"http://a:2379,https://b:2379", "env:2379", "unix:///run/etcd.sock"},
	keyRoles:            {"client,sync", "room", "federation,sender,prober"},
	keyRegistration:     {"open", "token", "closed"},
	keySecret:           {"flag-secret", "env-secret", "file-secret"},
	keySecretFile:       {"/run/flag", "/run/env", "/run/file"},
	keyLogLevel:         {"debug", "warn", "error"},
	keyLogFormat:        {"json", "text", "json"},
	keySigningKeyPath:   {"/flag.key", "/env.key", "/file.key"},
	keyRateLimitIP:      {"off", "1.5/3", "100/1000"},
	keyRateLimitUser:    {"2/2", "off", "0.2/10"},
	keyTrustedProxies:   {"10.0.0.0/8,192.168.1.1", "::1", "fd00::/8"},
	keyMaxRequests:      {"10", "20", "30"},
	keyMaxLongPolls:     {"100", "200", "300"},
	keyNATSReplicas:     {"1", "1", "1"},
	keyFedTLSCert:       {"/flag.crt", "/env.crt", "/file.crt"},
	keyFedTLSKey:        {"/flag.pem", "/env.pem", "/file.pem"},
	keyFedCAFile:        {"/flag-ca.pem", "/env-ca.pem", ""},
	keyTrustedKeyServer: {
		"matrix.org ed25519:auto Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw",
		"a.example ed25519:a CI9Wt5m43nhH0K6QnqFQ2nkF4MkrhffkhkIbHv1cHTM,[::1]:8448 ed25519:b Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw",
		"",
	},
}

// precedenceCompanions are settings that must be given along with the one
// under test for the configuration to be valid.
var precedenceCompanions = map[string]string{
	keyFedTLSCert: "AXON_FEDERATION_TLS_KEY=/companion.pem",
	keyFedTLSKey:  "AXON_FEDERATION_TLS_CERT=/companion.crt",
}

// TestPrecedence checks for every setting that a flag beats the
// environment, which beats the config file, which beats the default.
func TestPrecedence(t *testing.T) {
	for _, s := range settings {
		vals, ok := precedenceValues[s.key]
		if !ok {
			t.Errorf("precedenceValues lacks %s", s.key)
			continue
		}
		fsys := files{"/run/flag": "f\n", "/run/env": "e\n", "/run/file": "y\n", "flag.yaml": "", "env.yaml": ""}
		for _, tc := range []struct {
			layers int // 0: none; 1: file; 2: env and file; 3: all
			want   string
			src    Source
		}{
			{0, s.get(mustLoad(t, nil, nil, fsys)), SourceDefault},
			{1, vals[2], SourceFile},
			{2, vals[1], SourceEnv},
			{3, vals[0], SourceFlag},
		} {
			if s.noFile && tc.layers == 1 {
				continue
			}
			t.Run(s.key+"/"+strconv.Itoa(tc.layers), func(t *testing.T) {
				args := []string{}
				env := []string{"HOME=/root"}
				if !s.noFile {
					env = append(env, "AXON_CONFIG=axon.yaml")
				}
				fsys := mergeFiles(fsys, files{"axon.yaml": ""})
				if tc.layers >= 1 && !s.noFile {
					fsys["axon.yaml"] = s.key + ": " + strconv.Quote(vals[2]) + "\n"
					fsys["flag.yaml"], fsys["env.yaml"] = fsys["axon.yaml"], fsys["axon.yaml"]
				}
				if c, ok := precedenceCompanions[s.key]; ok && tc.layers >= 1 {
					env = append(env, c)
				}
				if tc.layers >= 2 {
					env = append(env, s.env()+"="+vals[1])
				}
				if tc.layers >= 3 {
					args = append(args, "--"+s.flag(), vals[0])
				}
				c := mustLoad(t, args, env, fsys)
				if got := s.get(c); got != tc.want {
					t.Errorf("%s = %q, want %q", s.key, got, tc.want)
				}
				if o := c.origin(s.key); o.src != tc.src {
					t.Errorf("%s comes from %v, want %v", s.key, o, tc.src)
				}
			})
		}
	}
}

func mustLoad(t *testing.T, args, env []string, f files) *Config {
	t.Helper()
	c, err := Load(args, env, f.read)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mergeFiles returns the union of fs, later ones winning.
func mergeFiles(fs ...files) files {
	out := files{}
	for _, f := range fs {
		for k, v := range f {
			out[k] = v
		}
	}
	return out
}

// TestAllErrorsAtOnce checks that bad values from every source, unknown
// names and parse failures all come back together, each named as its
// source names it.
func TestAllErrorsAtOnce(t *testing.T) {
	yaml := "" +
		"# axon\n" +
		"registration: maybe\n" +
		"server_nam: x\n" +
		"log_format: json\n" +
		"roles: [client, room, cook]\n"
	args := []string{"--listen", "localhost", "-metrics-listn=:9", "--config", "axon.yaml", "--log-level"}
	env := []string{
		"AXON_SERVER_NAME=bad name",
		"AXON_SERVRE_NAME=x",
		"AXON_DATABASE=mysql://root:hunter2@db/axon",
		"AXON_LOG_FORMAT=xml", // overrides the file's json
		"AXON_ETCD=http://e1:2379,,http://e3:99999",
		"AXON_SERVICE_PORT=8008", // Kubernetes service link: ignored
		"PATH=/bin",
	}
	_, err := Load(args, env, files{"axon.yaml": yaml}.read)
	checkErrors(t, err,
		wantErr{src: SourceFlag, key: "--metrics-listn", msg: "unknown flag (did you mean --metrics-listen?)"},
		wantErr{src: SourceFlag, key: "--log-level", setting: keyLogLevel, msg: "needs a value"},
		wantErr{src: SourceFlag, key: "--listen", setting: keyListen, msg: `flag --listen: "localhost" is not a listen address`},
		wantErr{src: SourceEnv, key: "AXON_SERVRE_NAME", msg: "did you mean AXON_SERVER_NAME?"},
		wantErr{src: SourceEnv, key: "AXON_SERVER_NAME", setting: keyServerName, msg: `environment variable AXON_SERVER_NAME: invalid server name "bad name"`},
		wantErr{src: SourceEnv, key: "AXON_DATABASE", msg: `scheme "mysql"`},
		wantErr{src: SourceEnv, key: "AXON_LOG_FORMAT", msg: `"xml" is not one of text, json`},
		wantErr{src: SourceEnv, key: "AXON_ETCD", msg: "entry 2 is not an etcd endpoint: it is empty"},
		wantErr{src: SourceEnv, key: "AXON_ETCD", msg: "entry 3 is not an etcd endpoint: port"},
		wantErr{src: SourceFile, key: "server_nam", line: 3, msg: "config file axon.yaml:3: server_nam: unknown setting (did you mean server_name?)"},
		wantErr{src: SourceFile, key: "registration", line: 2, msg: `"maybe" is not one of closed, token, open`},
		wantErr{src: SourceFile, key: "roles", line: 5, msg: `unknown role "cook"`},
	)
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("an error repeats a password:\n%v", err)
	}
}

func TestFlags(t *testing.T) {
	t.Run("help", func(t *testing.T) {
		for _, arg := range []string{"-h", "--help", "-help"} {
			if _, err := Load([]string{"--nope", arg}, nil, files{}.read); !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s: error %v, want flag.ErrHelp", arg, err)
			}
		}
	})
	t.Run("args after flags", func(t *testing.T) {
		c := mustLoad(t, []string{"-server-name=a.example", "alice", "--roles", "room"}, nil, files{})
		if !slices.Equal(c.Args, []string{"alice", "--roles", "room"}) || c.ServerName != "a.example" {
			t.Errorf("args %q, server name %q", c.Args, c.ServerName)
		}
		c = mustLoad(t, []string{"--", "--roles"}, nil, files{})
		if !slices.Equal(c.Args, []string{"--roles"}) {
			t.Errorf("args %q", c.Args)
		}
	})
	t.Run("last flag wins", func(t *testing.T) {
		c := mustLoad(t, []string{"--log-level", "debug", "--log-level=ERROR"}, nil, files{})
		if c.LogLevel != LogError {
			t.Errorf("log level %q", c.LogLevel)
		}
	})
	t.Run("bad syntax and unknown", func(t *testing.T) {
		_, err := Load([]string{"-=x", "---roles", "--zzz", "--listen", ":1"}, nil, files{}.read)
		checkErrors(t, err,
			wantErr{src: SourceFlag, key: "-=x", msg: "bad flag syntax"},
			wantErr{src: SourceFlag, key: "---roles", msg: "bad flag syntax"},
			wantErr{src: SourceFlag, key: "--zzz", msg: "unknown flag"},
		)
	})
	t.Run("caller's flags", func(t *testing.T) {
		fs := flag.NewFlagSet("user create", flag.ContinueOnError)
		admin := fs.Bool("admin", false, "make the user an administrator")
		c, err := LoadFlags(fs, []string{"--admin", "--server-name", "b.example", "alice"}, nil, files{}.read)
		if err != nil || !*admin || c.ServerName != "b.example" || !slices.Equal(c.Args, []string{"alice"}) {
			t.Fatalf("admin %v, config %v, error %v", *admin, c, err)
		}
		fs = flag.NewFlagSet("user create", flag.ContinueOnError)
		fs.Int("n", 0, "a number")
		_, err = LoadFlags(fs, []string{"-n", "x", "--admn"}, nil, files{}.read)
		checkErrors(t, err,
			wantErr{src: SourceFlag, key: "--n", msg: "bad value"},
			wantErr{src: SourceFlag, key: "--admn", msg: "unknown flag"},
		)
	})
}

func TestEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		yaml string
		want map[string]string // setting → value
		errs []wantErr
	}{
		{name: "empty counts as set", env: []string{"AXON_NATS="}, yaml: "nats: nats://file:4222",
			want: map[string]string{keyNATS: ""}},
		{name: "last wins", env: []string{"AXON_ROLES=room", "AXON_ROLES=sync"},
			want: map[string]string{keyRoles: "sync"}},
		{name: "not ours", env: []string{"axon_roles=x", "AXONROLES=x", "XAXON_ROLES=x", "AXON_ROLES"},
			want: map[string]string{keyRoles: "all"}},
		{name: "service links", env: []string{
			"AXON_SERVICE_HOST=10.0.0.1", "AXON_SERVICE_PORT=8008", "AXON_SERVICE_PORT_HTTP=8008",
			"AXON_PORT=tcp://10.0.0.1:8008", "AXON_PORT_8008_TCP=tcp://10.0.0.1:8008",
			"AXON_PORT_8008_TCP_PROTO=tcp", "AXON_PORT_8008_TCP_PORT=8008", "AXON_PORT_8008_TCP_ADDR=10.0.0.1",
			"AXON_SYNC_SERVICE_HOST=10.0.0.2", "AXON_FEDERATION_PORT_8448_TCP_ADDR=10.0.0.3",
		}, want: map[string]string{}},
		{name: "typos", env: []string{"AXON_LOGLEVEL=debug", "AXON_SHARED_SECRET=s", "AXON_=x"}, errs: []wantErr{
			{src: SourceEnv, key: "AXON_LOGLEVEL", msg: "unknown setting (did you mean AXON_LOG_LEVEL?)"},
			{src: SourceEnv, key: "AXON_SHARED_SECRET", msg: "unknown setting"},
			{src: SourceEnv, key: "AXON_", msg: "unknown setting"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"AXON_CONFIG=a.yaml"}, tc.env...)
			c, err := Load(nil, env, files{"a.yaml": tc.yaml}.read)
			checkErrors(t, err, tc.errs...)
			for key, want := range tc.want {
				if got := byKey[key].get(c); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestSharedSecretFile(t *testing.T) {
	fsys := files{"/run/secret": "s3cr3t\r\n\n", "/run/empty": "\n", "/run/spaces": " s p \n"}
	for _, tc := range []struct {
		name      string
		args, env []string
		want      string
		errs      []wantErr
	}{
		{name: "from file", env: []string{"AXON_REGISTRATION_SHARED_SECRET_FILE=/run/secret"}, want: "s3cr3t"},
		{name: "inner spaces kept", args: []string{"--registration-shared-secret-file", "/run/spaces"}, want: " s p "},
		{name: "from env", env: []string{"AXON_REGISTRATION_SHARED_SECRET=e\n"}, want: "e\n"},
		{name: "both", args: []string{"--registration-shared-secret-file=/run/secret"},
			env: []string{"AXON_REGISTRATION_SHARED_SECRET=x"}, errs: []wantErr{{src: SourceFlag,
				key: "--registration-shared-secret-file", msg: "which environment AXON_REGISTRATION_SHARED_SECRET sets"}}},
		{name: "missing", env: []string{"AXON_REGISTRATION_SHARED_SECRET_FILE=/run/none"}, errs: []wantErr{
			{src: SourceEnv, key: "AXON_REGISTRATION_SHARED_SECRET_FILE", msg: "cannot read the secret: open /run/none"}}},
		{name: "empty", env: []string{"AXON_REGISTRATION_SHARED_SECRET_FILE=/run/empty"}, errs: []wantErr{
			{src: SourceEnv, key: "AXON_REGISTRATION_SHARED_SECRET_FILE", msg: "the file /run/empty is empty"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, tc.env, fsys.read)
			checkErrors(t, err, tc.errs...)
			if err == nil && c.RegistrationSharedSecret.Reveal() != tc.want {
				t.Errorf("secret %q, want %q", c.RegistrationSharedSecret.Reveal(), tc.want)
			}
		})
	}
	_, err := Load(nil, []string{"AXON_REGISTRATION_SHARED_SECRET_FILE=/run/none"}, fsys.read)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}
