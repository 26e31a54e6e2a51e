package config

import (
	"errors"
	"io/fs"
	"testing"
)

// TestConfigFile checks the YAML file: what it may hold, and the errors
// for what it may not, with their lines.
func TestConfigFile(t *testing.T) {
	fileErr := func(key string, line int, msg string) wantErr {
		return wantErr{src: SourceFile, key: key, line: line, msg: msg}
	}
	for _, tc := range []struct {
		name string
		yaml string
		want map[string]string // setting → value, checked when there are no errors
		errs []wantErr
	}{
		{name: "empty file", yaml: "", want: map[string]string{keyRoles: "all"}},
		{name: "only comments", yaml: "# nothing\n---\n", want: map[string]string{keyServerName: "localhost"}},
		{name: "all kinds of scalars", yaml: "" +
			"server_name: example.org\n" +
			"registration_shared_secret: 0123\n" + // stays as written, not the number 83 or 123
			"listen: ':8008'\n" +
			"federation_listen:\n" + // null: empty
			"roles: [client, sync, room]\n" +
			"nats:\n  - nats://a:4222\n  - nats://b:4222\n" +
			"etcd: \"http://e:2379, http://f:2379\"\n" +
			"log_level: DEBUG\n",
			want: map[string]string{
				keyServerName: "example.org", keySecret: "0123", keyListen: ":8008", keyFederationListen: "",
				keyRoles: "client,sync,room", keyNATS: "nats://a:4222,nats://b:4222",
				keyEtcd: "http://e:2379,http://f:2379", keyLogLevel: "debug",
			}},
		{name: "anchors", yaml: "data_dir: &d /srv/axon\nsigning_key_path: *d\n",
			want: map[string]string{keyDataDir: "/srv/axon", keySigningKeyPath: "/srv/axon"}},
		{name: "unknown keys", yaml: "server_name: a\nserver-name: b\nlisten_addr: c\nlistne: x\nfoo: d\n",
			errs: []wantErr{
				fileErr("server-name", 2, "unknown setting (did you mean server_name?)"),
				fileErr("listen_addr", 3, "unknown setting"),
				fileErr("listne", 4, "unknown setting (did you mean listen?)"),
				fileErr("foo", 5, "unknown setting"),
			}},
		{name: "config in the file", yaml: "config: other.yaml\n",
			errs: []wantErr{fileErr("config", 1, "cannot be set in the config file; use --config or AXON_CONFIG")}},
		{name: "twice", yaml: "listen: ':1'\nroles: room\nlisten: ':2'\n",
			errs: []wantErr{fileErr("listen", 3, "is set twice; first on line 1")}},
		{name: "list for a single value", yaml: "server_name: [a, b]\n",
			errs: []wantErr{fileErr("server_name", 1, "must be a single value, not a list")}},
		{name: "mapping for a value", yaml: "data_dir:\n  path: /x\nnats: {url: x}\n",
			errs: []wantErr{
				fileErr("data_dir", 2, "must be a single value"),
				fileErr("nats", 3, "must be a string or a list of strings"),
			}},
		{name: "nested list", yaml: "roles: [client, [sync]]\n",
			errs: []wantErr{fileErr("roles", 1, "list item 2 must be a string")}},
		{name: "non-string key", yaml: "[a]: b\n",
			errs: []wantErr{fileErr("", 1, "a key must be a string")}},
		{name: "malformed", yaml: "server_name: a\n  listen: b\n",
			errs: []wantErr{fileErr("", 0, "config file axon.yaml: not valid YAML: yaml: line 2")}},
		{name: "tab indentation", yaml: "roles:\n\t- client\n",
			errs: []wantErr{fileErr("", 0, "not valid YAML")}},
		{name: "not a mapping", yaml: "- server_name: a\n",
			errs: []wantErr{fileErr("", 1, "must be a mapping of setting keys to values")}},
		{name: "scalar document", yaml: "hello\n",
			errs: []wantErr{fileErr("", 1, "must be a mapping")}},
		{name: "two documents", yaml: "listen: ':1'\n---\nlisten: ':2'\n",
			errs: []wantErr{fileErr("", 2, "holds more than one YAML document")}},
		{name: "bad second document", yaml: "listen: ':1'\n---\n[\n",
			errs: []wantErr{fileErr("", 0, "not valid YAML")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load([]string{"--config", "axon.yaml"}, nil, files{"axon.yaml": tc.yaml}.read)
			checkErrors(t, err, tc.errs...)
			if err != nil {
				return
			}
			for key, want := range tc.want {
				if got := byKey[key].get(c); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestConfigFileMissing(t *testing.T) {
	_, err := Load([]string{"--server-name=a b"}, []string{"AXON_CONFIG=/etc/axon.yaml"}, files{}.read)
	checkErrors(t, err,
		wantErr{src: SourceEnv, key: "AXON_CONFIG", msg: "cannot read the config file: open /etc/axon.yaml"},
		wantErr{src: SourceFlag, key: "--server-name", msg: "invalid server name"},
	)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}
