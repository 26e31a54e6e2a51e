package accounts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// post sends a JSON POST from any goroutine and returns the status and
// errcode (no t.Fatal off the test goroutine).
func (h *harness) post(path, token string, body any) (int, string, error) {
	enc, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest("POST", h.srv.URL+path, bytes.NewReader(enc))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var out struct {
		Errcode string `json:"errcode"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return res.StatusCode, "", fmt.Errorf("decode: %w", err)
	}
	return res.StatusCode, out.Errcode, nil
}

// parallel runs f n times at once and counts the outcomes ("200", or the
// status and errcode).
func parallel(t *testing.T, n int, f func(i int) (int, string, error)) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, code, err := f(i)
			key := fmt.Sprintf("%d %s", status, code)
			if err != nil {
				key = "error " + err.Error()
			}
			mu.Lock()
			counts[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return counts
}

// TestConcurrentRequests: racing writers get one answer each, never a 500,
// on every engine (PostgreSQL runs them SERIALIZABLE with retries).
func TestConcurrentRequests(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, func(c *Config) { c.AccessTokenLifetime = time.Minute })
		const n = 8
		got := parallel(t, n, func(int) (int, string, error) {
			return h.post(v3+"/register", "", map[string]any{"username": "race", "password": "pw", "auth": map[string]any{"type": stageDummy}})
		})
		if got["200 "] != 1 || got["200 "]+got["400 M_USER_IN_USE"] != n {
			t.Fatalf("racing registrations: %v", got)
		}

		// Racing refreshes of one token: all succeed (each revoking the
		// previous attempt's pair), and exactly one new pair survives.
		r := h.login("race", "pw", map[string]any{"refresh_token": true, "device_id": "RACE"})
		h.expect(r, 200, "")
		var mu sync.Mutex
		var pairs [][2]string
		got = parallel(t, n, func(int) (int, string, error) {
			res, err := h.srv.Client().Post(h.srv.URL+v3+"/refresh", "application/json",
				bytes.NewBufferString(`{"refresh_token":"`+r.str("refresh_token")+`"}`))
			if err != nil {
				return 0, "", err
			}
			defer res.Body.Close()
			var out struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				Errcode      string `json:"errcode"`
			}
			_ = json.NewDecoder(res.Body).Decode(&out)
			if res.StatusCode == 200 {
				mu.Lock()
				pairs = append(pairs, [2]string{out.AccessToken, out.RefreshToken})
				mu.Unlock()
			}
			return res.StatusCode, out.Errcode, nil
		})
		if got["200 "] != n {
			t.Fatalf("racing refreshes: %v", got)
		}
		live := 0
		for _, p := range pairs {
			if h.whoami(p[0]).status == 200 {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("%d live access tokens after %d refreshes of one token, want 1", live, n)
		}

		// Racing logins on one device ID leave one working token.
		var tokens []string
		got = parallel(t, n, func(int) (int, string, error) {
			body, _ := json.Marshal(map[string]any{"type": "m.login.password", "user": "race", "password": "pw", "device_id": "SHARED"})
			res, err := h.srv.Client().Post(h.srv.URL+v3+"/login", "application/json", bytes.NewReader(body))
			if err != nil {
				return 0, "", err
			}
			defer res.Body.Close()
			var out struct {
				AccessToken string `json:"access_token"`
				Errcode     string `json:"errcode"`
			}
			_ = json.NewDecoder(res.Body).Decode(&out)
			mu.Lock()
			tokens = append(tokens, out.AccessToken)
			mu.Unlock()
			return res.StatusCode, out.Errcode, nil
		})
		if got["200 "] != n {
			t.Fatalf("racing logins: %v", got)
		}
		live = 0
		for _, tok := range tokens {
			if h.whoami(tok).status == 200 {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("%d live tokens on one device after racing logins, want 1", live)
		}
	})
}
