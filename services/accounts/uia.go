package accounts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Authentication types (stages) this server offers.
const (
	stageDummy             = "m.login.dummy"
	stagePassword          = "m.login.password"
	stageRegistrationToken = "m.login.registration_token"
)

// Operations a UIA session can be started for.
const (
	opRegister      = "register"
	opDeleteDevices = "delete_devices" // DELETE /devices/{id} and POST /delete_devices
	opPassword      = "password"
	opDeactivate    = "deactivate"
	opGetLoginToken = "get_login_token"
)

const (
	uiaSessionLifetime = 15 * time.Minute
	uiaSessionIDLength = 32
	uiaSessionAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// uiaRequest describes the request being authenticated.
type uiaRequest struct {
	op     string
	userID id.UserID  // the requester, "" when unknown (registration; no access token)
	bind   []byte     // digest of the parameters the session is bound to (bindDigest)
	flows  [][]string // the flows offered
}

// bindDigest is the digest of an operation's security-relevant parameters:
// a session started for one set cannot complete another.
func bindDigest(op string, parts ...string) []byte {
	h := sha256.New()
	for _, p := range append([]string{op}, parts...) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

type uiaSession struct {
	id        string
	op        string
	userID    id.UserID
	bind      []byte
	completed []string
	regToken  *string
}

func (sess *uiaSession) matches(req uiaRequest) bool {
	return sess.op == req.op && bytes.Equal(sess.bind, req.bind) &&
		(req.userID == "" || sess.userID == "" || sess.userID == req.userID)
}

// flowDone reports whether completed finishes one of flows. Stages are
// only ever added in an order some flow allows, so a prefix test suffices.
func flowDone(flows [][]string, completed []string) bool {
	for _, f := range flows {
		if len(completed) >= len(f) && slices.Equal(completed[:len(f)], f) {
			return true
		}
	}
	return false
}

// nextStageAllowed reports whether stage comes right after completed in one
// of flows.
func nextStageAllowed(flows [][]string, completed []string, stage string) bool {
	for _, f := range flows {
		if len(f) > len(completed) && slices.Equal(f[:len(completed)], completed) && f[len(completed)] == stage {
			return true
		}
	}
	return false
}

// challenge is the body of a 401 answer asking for (more) authentication.
type challenge struct {
	Errcode   string          `json:"errcode,omitempty"`
	Error     string          `json:"error,omitempty"`
	Completed []string        `json:"completed,omitempty"`
	Flows     []challengeFlow `json:"flows"`
	Params    map[string]any  `json:"params"`
	Session   string          `json:"session"`
}

type challengeFlow struct {
	Stages []string `json:"stages"`
}

func writeChallenge(w http.ResponseWriter, req uiaRequest, sess *uiaSession, failure *httpx.Error) error {
	c := challenge{Completed: sess.completed, Params: map[string]any{}, Session: sess.id}
	for _, f := range req.flows {
		c.Flows = append(c.Flows, challengeFlow{Stages: f})
	}
	if failure != nil {
		c.Errcode, c.Error = failure.Code, failure.Message
	}
	return httpx.WriteJSON(w, http.StatusUnauthorized, c)
}

// runUIA takes one step of User-Interactive Authentication for req with
// the request's auth dict (nil when the request had none). When a flow is
// complete it returns the session ID and done; the handler then performs
// the operation and consumes the session in the same transaction
// (consumeUIATx). Otherwise it has written the 401 answer itself and
// returns done false and a nil error, or it returns an error to answer.
//
// An unknown or expired session is replaced by a fresh one (the answer
// names it), and a stage sent along is processed in the fresh session.
// A live session started for another operation, user or parameters is
// refused with 403 M_FORBIDDEN: its completed stages never carry over.
func (s *Service) runUIA(w http.ResponseWriter, r *http.Request, req uiaRequest, auth *authDict) (string, bool, error) {
	ctx := r.Context()
	var sess *uiaSession
	if auth != nil && auth.Session != "" {
		var err error
		if sess, err = loadUIA(ctx, s.db, auth.Session, s.nowMS()); err != nil {
			return "", false, err
		}
		if sess != nil && !sess.matches(req) {
			return "", false, httpx.Forbidden("This authentication session was started for a different request; " +
				"start a new one by sending the request without a session")
		}
	}
	if sess == nil {
		var err error
		if sess, err = s.newUIA(ctx, req); err != nil {
			return "", false, err
		}
	}
	if auth == nil || auth.Type == "" || slices.Contains(sess.completed, auth.Type) {
		// Nothing to do but report where the session stands: completed
		// stages are not retried.
		if flowDone(req.flows, sess.completed) {
			return sess.id, true, nil
		}
		return "", false, writeChallenge(w, req, sess, nil)
	}
	if !nextStageAllowed(req.flows, sess.completed, auth.Type) {
		return "", false, writeChallenge(w, req, sess, httpx.Forbidden(
			"Authentication type '"+truncate(auth.Type, 64)+"' is not the next stage of any offered flow"))
	}
	failure, err := s.checkStage(ctx, req, sess, auth)
	if err != nil {
		return "", false, err
	}
	if failure != nil {
		return "", false, writeChallenge(w, req, sess, failure)
	}
	sess.completed = append(sess.completed, auth.Type)
	if err := saveUIA(ctx, s.db, sess); err != nil {
		return "", false, err
	}
	if flowDone(req.flows, sess.completed) {
		return sess.id, true, nil
	}
	return "", false, writeChallenge(w, req, sess, nil)
}

// checkStage verifies one stage. A failed attempt is the returned
// *httpx.Error, sent inside the 401 so that the client may try again.
func (s *Service) checkStage(ctx context.Context, req uiaRequest, sess *uiaSession, auth *authDict) (*httpx.Error, error) {
	switch auth.Type {
	case stageDummy:
		return nil, nil
	case stageRegistrationToken:
		if auth.Token == "" {
			return httpx.MissingParam("'auth.token' is required for " + stageRegistrationToken), nil
		}
		ok, err := s.registrationTokenValid(ctx, s.db, auth.Token)
		if err != nil || !ok {
			return httpx.Forbidden("Invalid, expired or used-up registration token"), err
		}
		tok := auth.Token
		sess.regToken = &tok
		return nil, nil
	case stagePassword:
		creds := auth.passwordCreds
		var userID id.UserID
		if creds.Identifier == nil && creds.User == "" && creds.Medium == "" && creds.Address == "" && req.userID != "" {
			userID = req.userID // an authenticated request may leave the identifier out
		} else {
			u, err := s.identifiedUser(creds)
			if err != nil {
				if e, ok := errors.AsType[*httpx.Error](err); ok {
					return e, nil
				}
				return nil, err
			}
			userID = u
		}
		if creds.Password == nil || *creds.Password == "" {
			return httpx.MissingParam("'auth.password' is required for " + stagePassword), nil
		}
		st, ok, err := s.checkPassword(ctx, userID, *creds.Password)
		if err != nil {
			return nil, err
		}
		if !ok || st.deactivated {
			return errBadCredentials(), nil
		}
		if (req.userID != "" && st.userID != req.userID) || (sess.userID != "" && st.userID != sess.userID) {
			return httpx.Forbidden("The password must be that of the user making the request"), nil
		}
		sess.userID = st.userID
		return nil, nil
	}
	return httpx.Forbidden("Unsupported authentication type"), nil
}

func (s *Service) newUIA(ctx context.Context, req uiaRequest) (*uiaSession, error) {
	sid, err := s.randomString(uiaSessionIDLength, uiaSessionAlphabet)
	if err != nil {
		return nil, err
	}
	sess := &uiaSession{id: sid, op: req.op, userID: req.userID, bind: req.bind}
	now := s.now()
	_, err = s.db.Exec(ctx, `INSERT INTO accounts_uia_sessions
		(session_id, operation, user_id, bind_hash, completed, registration_token, created_at, expires_at)
		VALUES ($1, $2, $3, $4, '[]', NULL, $5, $6)`,
		sid, req.op, string(req.userID), req.bind, now.UnixMilli(), now.Add(uiaSessionLifetime).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("accounts: create UIA session: %w", err)
	}
	return sess, nil
}

// loadUIA returns the live session with the given ID, or nil.
func loadUIA(ctx context.Context, q store.Querier, sessionID string, now int64) (*uiaSession, error) {
	if len(sessionID) > 255 {
		return nil, nil
	}
	sess := &uiaSession{id: sessionID}
	var userID, completed string
	err := q.QueryRow(ctx, `SELECT operation, user_id, bind_hash, completed, registration_token
		FROM accounts_uia_sessions WHERE session_id = $1 AND expires_at > $2`, sessionID, now).
		Scan(&sess.op, &userID, &sess.bind, &completed, &sess.regToken)
	if errors.Is(err, store.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: load UIA session: %w", err)
	}
	sess.userID = id.UserID(userID)
	if err := json.Unmarshal([]byte(completed), &sess.completed); err != nil {
		return nil, fmt.Errorf("accounts: UIA session %q has a corrupt stage list: %w", sessionID, err)
	}
	return sess, nil
}

func saveUIA(ctx context.Context, db *store.DB, sess *uiaSession) error {
	completed, err := json.Marshal(sess.completed)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `UPDATE accounts_uia_sessions SET completed = $2, user_id = $3, registration_token = $4
		WHERE session_id = $1`, sess.id, string(completed), string(sess.userID), nullString(sess.regToken))
	if err != nil {
		return fmt.Errorf("accounts: save UIA session: %w", err)
	}
	return nil
}

// consumeUIATx checks, inside the operation's transaction, that the session
// completed a flow for req, and deletes it: a session authorises one
// operation once, so two concurrent requests cannot both use it. Every
// operation but registration needs the session to know its user.
func consumeUIATx(ctx context.Context, tx *store.Tx, sessionID string, req uiaRequest, now int64) (*uiaSession, error) {
	sess, err := loadUIA(ctx, tx, sessionID, now)
	if err != nil {
		return nil, err
	}
	if sess == nil || !sess.matches(req) || !flowDone(req.flows, sess.completed) ||
		(req.op != opRegister && sess.userID == "") {
		return nil, httpx.Forbidden("The authentication session expired or was already used; start again")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM accounts_uia_sessions WHERE session_id = $1`, sessionID); err != nil {
		return nil, fmt.Errorf("accounts: delete UIA session: %w", err)
	}
	return sess, nil
}
