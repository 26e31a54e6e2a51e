package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestRedaction checks that no way of printing a Config shows a secret:
// the shared secret, the database password, NATS tokens and passwords.
func TestRedaction(t *testing.T) {
	secrets := []string{"sh4red", "dbpass", "qpass", "natstoken", "natspass", "etcdpass"}
	c := mustLoad(t, []string{
		"--database", "postgres://axon:dbpass@db:5432/axon?password=qpass&sslmode=require",
		"--nats", "nats://natstoken@a:4222,nats://user:natspass@b:4222,c:4222",
		"--etcd", "https://root:etcdpass@e:2379",
	}, []string{"AXON_REGISTRATION_SHARED_SECRET=sh4red"}, files{})

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c, "secret", c.RegistrationSharedSecret)
	secretJSON, err := json.Marshal(c.RegistrationSharedSecret)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":      c.String(),
		"%v pointer":  fmt.Sprintf("%v", c),
		"%+v value":   fmt.Sprintf("%+v", *c),
		"%#v value":   fmt.Sprintf("%#v", *c),
		"%#v secret":  fmt.Sprintf("%#v", c.RegistrationSharedSecret),
		"%s secret":   fmt.Sprintf("<%s>", c.RegistrationSharedSecret),
		"slog":        logged.String(),
		"json secret": string(secretJSON),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q:\n%s", name, s, out)
			}
		}
	}
	for _, want := range []string{
		`registration_shared_secret: "[redacted]" # environment AXON_REGISTRATION_SHARED_SECRET`,
		`database: "postgres://axon:xxxxx@db:5432/axon?password=xxxxx&sslmode=require" # flag --database`,
		`nats: "nats://xxxxx@a:4222,nats://user:xxxxx@b:4222,c:4222" # flag --nats`,
		`etcd: "https://root:xxxxx@e:2379" # flag --etcd`,
		`server_name: "localhost" # default`,
	} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String lacks %q:\n%s", want, c.String())
		}
	}
	if c.RegistrationSharedSecret.Reveal() != "sh4red" || Secret("").String() != "" {
		t.Error("Secret.Reveal or empty Secret.String")
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct {
		in        string
		tokenUser bool
		want      string
	}{
		{"postgres://u@h/db", false, "postgres://u@h/db"},
		{"postgres://u:p@h/db", false, "postgres://u:xxxxx@h/db"},
		{"nats://tok@h:4222", true, "nats://xxxxx@h:4222"},
		{"h:4222", true, "h:4222"},
		{"postgres://u:p@h/%zz", false, redacted}, // does not parse, has "@"
		{"/var/lib/axon.db", false, "/var/lib/axon.db"},
		{"", true, ""},
	} {
		if got := redactURL(tc.in, tc.tokenUser); got != tc.want {
			t.Errorf("redactURL(%q, %v) = %q, want %q", tc.in, tc.tokenUser, got, tc.want)
		}
	}
}

// TestStringIsAConfigFile checks that the dump of a configuration without
// secrets loads back as a config file to the same configuration.
func TestStringIsAConfigFile(t *testing.T) {
	c := mustLoad(t, []string{"--server-name", "example.org", "--roles", "room,sender", "--nats", "nats://a:4222,nats://b:4222"}, nil, files{})
	var dump strings.Builder
	for line := range strings.Lines(c.String()) {
		if !strings.HasPrefix(line, keyConfig+":") { // the file may not name itself
			dump.WriteString(line)
		}
	}
	c2 := mustLoad(t, []string{"--config", "dump.yaml"}, nil, files{"dump.yaml": dump.String()})
	for _, s := range settings {
		if s.key != keyConfig && s.get(c) != s.get(c2) {
			t.Errorf("%s: %q, after the round trip %q", s.key, s.get(c), s.get(c2))
		}
	}
}
