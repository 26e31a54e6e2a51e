package accounts

import (
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
)

const adminPath = "/_synapse/admin/v1/register"

func TestSharedSecretDisabled(t *testing.T) {
	h := newHarness(t, engines()[0], nil)
	h.expect(h.do("GET", adminPath, "", nil), 404, "M_UNRECOGNIZED")
	h.expect(h.do("POST", adminPath, "", map[string]any{}), 404, "M_UNRECOGNIZED")
}

func TestSharedSecretRegistration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		const secret = "s3cret"
		h := newHarness(t, e, func(c *Config) { c.SharedSecret = secret; c.Registration = RegistrationClosed })
		nonce := func() string {
			r := h.do("GET", adminPath, "", nil)
			h.expect(r, 200, "")
			if len(r.str("nonce")) != 32 {
				t.Fatalf("nonce %v", r.body)
			}
			return r.str("nonce")
		}
		body := func(n, user, pw string, admin bool, mac []byte) map[string]any {
			return map[string]any{"nonce": n, "username": user, "password": pw, "admin": admin, "mac": hex.EncodeToString(mac)}
		}

		n := nonce()
		b := body(n, "root", "pw", true, adminMAC(secret, n, "root", "pw", true, nil))
		r := h.do("POST", adminPath, "", b)
		h.expect(r, 200, "")
		if r.str("user_id") != "@root:test.example" || r.str("access_token") == "" || r.str("device_id") == "" {
			t.Fatalf("admin register %v", r.body)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+r.str("access_token"))
		if d, err := h.svc.Authenticate(req); err != nil || !d.IsAdmin {
			t.Fatalf("Authenticate = %+v, %v", d, err)
		}
		// The nonce is used up.
		h.expect(h.do("POST", adminPath, "", b), 400, "M_INVALID_PARAM")

		// A wrong MAC (here: the admin flag flipped) fails and burns the nonce.
		n = nonce()
		wrong := body(n, "eve", "pw", true, adminMAC(secret, n, "eve", "pw", false, nil))
		h.expect(h.do("POST", adminPath, "", wrong), 403, "M_FORBIDDEN")
		right := body(n, "eve", "pw", false, adminMAC(secret, n, "eve", "pw", false, nil))
		h.expect(h.do("POST", adminPath, "", right), 400, "M_INVALID_PARAM")
		n = nonce()
		h.expect(h.do("POST", adminPath, "", body(n, "eve", "pw", false, adminMAC("other", n, "eve", "pw", false, nil))), 403, "M_FORBIDDEN")
		n = nonce()
		notHex := body(n, "eve", "pw", false, nil)
		notHex["mac"] = "zz"
		h.expect(h.do("POST", adminPath, "", notHex), 403, "M_FORBIDDEN")

		// An expired nonce.
		n = nonce()
		h.clock.Advance(61 * time.Second)
		h.expect(h.do("POST", adminPath, "", body(n, "eve", "pw", false, adminMAC(secret, n, "eve", "pw", false, nil))), 400, "M_INVALID_PARAM")

		// user_type is covered by the MAC when present; displayname is used.
		n = nonce()
		ut := "bot"
		b = body(n, "eve", "pw", false, adminMAC(secret, n, "eve", "pw", false, &ut))
		b["user_type"], b["displayname"] = ut, "Eve"
		h.expect(h.do("POST", adminPath, "", b), 200, "")
		if p := h.do("GET", v3+"/profile/@eve:test.example/displayname", "", nil); p.str("displayname") != "Eve" {
			t.Fatalf("profile %v", p.body)
		}
		h.loginOK("eve", "pw", nil)

		// Username checks come after the MAC.
		n = nonce()
		h.expect(h.do("POST", adminPath, "", body(n, "eve", "pw", false, adminMAC(secret, n, "eve", "pw", false, nil))), 400, "M_USER_IN_USE")
		n = nonce()
		h.expect(h.do("POST", adminPath, "", body(n, "Eve", "pw", false, adminMAC(secret, n, "Eve", "pw", false, nil))), 400, "M_INVALID_USERNAME")
		h.expect(h.do("POST", adminPath, "", map[string]any{"nonce": "x", "username": "y"}), 400, "M_MISSING_PARAM")
	})
}

func TestCreateUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		ctx := h.ctx()
		u, err := h.svc.CreateUser(ctx, "ops", "pw", false)
		if err != nil || u != "@ops:test.example" {
			t.Fatalf("CreateUser = %q, %v", u, err)
		}
		_, err = h.svc.CreateUser(ctx, "ops", "pw", false)
		if !errors.Is(err, ErrUserInUse) || httpx.CodeOf(err) != httpx.CodeUserInUse {
			t.Fatalf("duplicate CreateUser: %v", err)
		}
		if _, err := h.svc.CreateUser(ctx, "Ops", "pw", false); httpx.CodeOf(err) != httpx.CodeInvalidUsername {
			t.Fatalf("CreateUser(Ops): %v", err)
		}
		if _, err := h.svc.CreateUser(ctx, "nopw", "", false); httpx.CodeOf(err) != httpx.CodeMissingParam {
			t.Fatalf("CreateUser without password: %v", err)
		}
		a := h.loginOK("ops", "pw", nil)
		if a.userID != u {
			t.Fatalf("login as %q", a.userID)
		}
	})
}
