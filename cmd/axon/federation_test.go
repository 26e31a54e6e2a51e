package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "axon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for ips and names, and its key, as PEM files
// in dir, and returns their paths.
func (ca *testCA) issue(t *testing.T, dir string, ips []net.IP, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "axon test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: ips, DNSNames: names, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The federation listener serves this server's keys over HTTPS with the
// configured certificate, and a rotation shows in them after a restart.
func TestFederationKeysOverTLS(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, t.TempDir(), []net.IP{net.ParseIP("127.0.0.1")})
	dataDir := t.TempDir()
	extra := []string{"--data-dir", dataDir, "--federation-tls-cert", certFile, "--federation-tls-key", keyFile}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}, Timeout: 10 * time.Second}

	fetch := func(ts *testServer) *keys.ServerKeys {
		t.Helper()
		resp, err := hc.Get("https://" + ts.srv.addrs[1] + "/_matrix/key/v2/server")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		v, err := cjson.Parse(body, cjson.Strict)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s %v", resp.StatusCode, body, err)
		}
		sk, err := keys.ParseServerKeys(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := sk.CheckSelfSigned(); err != nil || sk.ServerName != ts.name {
			t.Fatalf("document of %q: %v", sk.ServerName, err)
		}
		return sk
	}
	ts := startServer(t, backends()[0], extra...)
	first := fetch(ts)
	if len(first.VerifyKeys) != 1 || len(first.OldKeys) != 0 {
		t.Fatalf("keys before rotation: %+v", first)
	}
	// Plain HTTP is refused on a TLS listener.
	if resp, err := http.Get("http://" + ts.srv.addrs[1] + "/_matrix/key/v2/server"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS listener")
		}
		resp.Body.Close()
	}
	resp, err := hc.Get("https://" + ts.srv.addrs[1] + "/_matrix/federation/v1/version")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("version: %v", err)
	}
	resp.Body.Close()
	ts.srv.shutdown()

	code, out, errs := runAxon(t, nil, "key", "rotate", "--data-dir", dataDir)
	if code != exitOK || !strings.Contains(out, "new signing key ed25519:") {
		t.Fatalf("key rotate: %d %q %q", code, out, errs)
	}
	second := fetch(startServer(t, backends()[0], extra...))
	var oldID keys.KeyID
	for id := range first.VerifyKeys {
		oldID = id
	}
	if _, ok := second.VerifyKeys[oldID]; ok || len(second.VerifyKeys) != 1 {
		t.Errorf("verify_keys after rotation: %v", second.VerifyKeys)
	}
	if o, ok := second.OldKeys[oldID]; !ok || o.ExpiredTS <= 0 || o.ExpiredTS > time.Now().UnixMilli() {
		t.Errorf("old_verify_keys after rotation: %v", second.OldKeys)
	}
}
