package pushrules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
)

// Device is the authenticated caller of a request.
type Device struct {
	UserID string
}

// Authenticator resolves a request's access token; its errors are
// *httpx.Error (M_MISSING_TOKEN, M_UNKNOWN_TOKEN).
type Authenticator func(r *http.Request) (Device, error)

// Config configures the service. The zero value of every field is usable.
type Config struct {
	Now    func() time.Time
	Logger *slog.Logger
}

// Service serves and stores push rules.
type Service struct {
	db   *store.DB
	auth Authenticator
	cfg  Config
	log  *slog.Logger
}

// New returns the service.
func New(db *store.DB, auth Authenticator, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, auth: auth, cfg: cfg, log: cfg.Logger}
}

// Routes registers the endpoints under /v3 and /r0.
func (s *Service) Routes(mux *http.ServeMux) {
	routes := []struct {
		method, path string
		h            func(w http.ResponseWriter, r *http.Request, d Device) error
	}{
		{"GET", "/pushrules/{$}", s.getAll},
		{"GET", "/pushrules/global/{$}", s.getGlobal},
		{"GET", "/pushrules/global/{kind}/{ruleId}", s.getRule},
		{"PUT", "/pushrules/global/{kind}/{ruleId}", s.putRule},
		{"DELETE", "/pushrules/global/{kind}/{ruleId}", s.deleteRule},
		{"GET", "/pushrules/global/{kind}/{ruleId}/enabled", s.getEnabled},
		{"PUT", "/pushrules/global/{kind}/{ruleId}/enabled", s.putEnabled},
		{"GET", "/pushrules/global/{kind}/{ruleId}/actions", s.getActions},
		{"PUT", "/pushrules/global/{kind}/{ruleId}/actions", s.putActions},
	}
	for _, v := range []string{"v3", "r0"} {
		for _, rt := range routes {
			mux.Handle(rt.method+" /_matrix/client/"+v+rt.path, s.authed(rt.h))
		}
	}
}

// authed wraps a handler that needs an access token.
func (s *Service) authed(h func(w http.ResponseWriter, r *http.Request, d Device) error) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		d, err := s.auth(r)
		if err != nil {
			return err
		}
		return h(w, r, d)
	}, httpx.WithErrorLogger(s.log))
}

// Ruleset returns userID's global ruleset as JSON (spec PushRuleset):
// the server-default rules with the user's changes and the user's own
// rules in their places. The content of the m.push_rules account data
// event is {"global": Ruleset}.
func (s *Service) Ruleset(ctx context.Context, userID string) (json.RawMessage, error) {
	rs, err := load(ctx, s.db, userID)
	if err != nil {
		return nil, err
	}
	return encode(rs)
}

func encode(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("pushrules: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (s *Service) getAll(w http.ResponseWriter, r *http.Request, d Device) error {
	rs, err := s.Ruleset(r.Context(), d.UserID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]json.RawMessage{"global": rs})
}

func (s *Service) getGlobal(w http.ResponseWriter, r *http.Request, d Device) error {
	rs, err := s.Ruleset(r.Context(), d.UserID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, rs)
}

// pathRule returns the validated kind and the rule ID of the path.
func pathRule(r *http.Request) (kind, ruleID string, err error) {
	kind = r.PathValue("kind")
	if err := kindParam(kind); err != nil {
		return "", "", err
	}
	return kind, r.PathValue("ruleId"), nil
}

// findRule returns the caller's rule named by the path: 404 M_NOT_FOUND
// when there is none.
func (s *Service) findRule(r *http.Request, d Device) (rule, error) {
	k, ruleID, err := pathRule(r)
	if err != nil {
		return rule{}, err
	}
	rs, err := load(r.Context(), s.db, d.UserID)
	if err != nil {
		return rule{}, err
	}
	found := rs.find(k, ruleID)
	if found == nil {
		return rule{}, notFound(k, ruleID)
	}
	return *found, nil
}

func notFound(k, ruleID string) error {
	return httpx.NotFound(fmt.Sprintf("There is no %s push rule %s", k, quote(ruleID)))
}

func (s *Service) getRule(w http.ResponseWriter, r *http.Request, d Device) error {
	found, err := s.findRule(r, d)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, found)
}

func (s *Service) getEnabled(w http.ResponseWriter, r *http.Request, d Device) error {
	found, err := s.findRule(r, d)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]bool{"enabled": found.Enabled})
}

func (s *Service) getActions(w http.ResponseWriter, r *http.Request, d Device) error {
	found, err := s.findRule(r, d)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]json.RawMessage{"actions": found.Actions})
}

// readBody reads a JSON object body of at most maxBody bytes.
func readBody(r *http.Request) ([]byte, error) {
	var raw json.RawMessage
	if err := httpx.DecodeJSON(r, maxBody, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func (s *Service) putRule(w http.ResponseWriter, r *http.Request, d Device) error {
	k, ruleID, err := pathRule(r)
	if err != nil {
		return err
	}
	if err := checkNewRuleID(k, ruleID); err != nil {
		return err
	}
	q := r.URL.Query()
	before, after := q.Get("before"), q.Get("after")
	for _, anchor := range []string{before, after} {
		switch {
		case strings.HasPrefix(anchor, "."):
			return httpx.InvalidParam("A rule cannot be placed relative to a server-default rule (" + quote(anchor) + ")")
		case anchor != "" && anchor == ruleID:
			return httpx.InvalidParam("A rule cannot be placed relative to itself")
		}
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	nr, err := parseRuleBody(k, body)
	if err != nil {
		return err
	}
	if err := s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		return putRule(ctx, tx, d.UserID, k, ruleID, before, after, nr)
	}); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Service) deleteRule(w http.ResponseWriter, r *http.Request, d Device) error {
	k, ruleID, err := pathRule(r)
	if err != nil {
		return err
	}
	if isDefault(k, ruleID) {
		return httpx.InvalidParam("Server-default push rules cannot be deleted; disable " + quote(ruleID) + " instead")
	}
	ok, err := deleteRule(r.Context(), s.db, d.UserID, k, ruleID)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(k, ruleID)
	}
	return writeEmpty(w)
}

func (s *Service) putEnabled(w http.ResponseWriter, r *http.Request, d Device) error {
	k, ruleID, err := pathRule(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	enabled, err := parseEnabled(body)
	if err != nil {
		return err
	}
	ok, err := setEnabled(r.Context(), s.db, d.UserID, k, ruleID, enabled)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(k, ruleID)
	}
	return writeEmpty(w)
}

func (s *Service) putActions(w http.ResponseWriter, r *http.Request, d Device) error {
	k, ruleID, err := pathRule(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	actions, err := parseActionsBody(body)
	if err != nil {
		return err
	}
	ok, err := setActions(r.Context(), s.db, d.UserID, k, ruleID, actions)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(k, ruleID)
	}
	return writeEmpty(w)
}

func writeEmpty(w http.ResponseWriter) error {
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// Rules returns the user's ruleset compiled for evaluation: the ruleset
// that Ruleset returns.
func (s *Service) Rules(ctx context.Context, userID string) (*Rules, error) {
	rs, err := load(ctx, s.db, userID)
	if err != nil {
		return nil, err
	}
	return compileRuleset(userID, &rs), nil
}
