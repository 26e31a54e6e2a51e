package pushrules

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
)

// load reads a user's rules and changes to server-default rules in one
// statement (one snapshot) and assembles the ruleset.
func load(ctx context.Context, q store.Querier, userID string) (ruleset, error) {
	rows, err := q.Query(ctx, `
		SELECT 0, kind, rule_id, position, enabled, conditions, pattern, actions
			FROM pushrules_user WHERE user_id = $1
		UNION ALL
		SELECT 1, kind, rule_id, 0, enabled, NULL, NULL, actions
			FROM pushrules_default WHERE user_id = $1
		ORDER BY 1, 4, 3`, userID)
	if err != nil {
		return ruleset{}, fmt.Errorf("pushrules: load %s: %w", userID, err)
	}
	defer func() { _ = rows.Close() }()
	user := make(map[string][]rule)
	changes := make(map[[2]string]defaultChange)
	for rows.Next() {
		var (
			src                 int
			k, ruleID           string
			pos                 int64
			enabled             sql.NullBool
			conditions, actions []byte
			pattern             sql.NullString
		)
		if err := rows.Scan(&src, &k, &ruleID, &pos, &enabled, &conditions, &pattern, &actions); err != nil {
			return ruleset{}, fmt.Errorf("pushrules: load %s: %w", userID, err)
		}
		if !validKind(k) {
			continue
		}
		if src == 1 {
			var c defaultChange
			if enabled.Valid {
				c.Enabled = &enabled.Bool
			}
			if actions != nil {
				c.Actions = actions
			}
			changes[[2]string{k, ruleID}] = c
			continue
		}
		r := rule{RuleID: ruleID, Enabled: enabled.Bool, Actions: actions}
		if hasConditions(k) {
			r.Conditions = conditions
			if r.Conditions == nil {
				r.Conditions = json.RawMessage("[]")
			}
		}
		if patternKind(k) && pattern.Valid {
			r.Pattern = &pattern.String
		}
		user[k] = append(user[k], r)
	}
	if err := rows.Err(); err != nil {
		return ruleset{}, fmt.Errorf("pushrules: load %s: %w", userID, err)
	}
	return assemble(userID, user, changes), nil
}

// placedRule is one of a kind's user rules in order.
type placedRule struct {
	ruleID string
	pos    int64
}

// kindOrder reads a user's rules of kind k in order.
func kindOrder(ctx context.Context, tx *store.Tx, userID, k string) ([]placedRule, error) {
	rows, err := tx.Query(ctx, `SELECT rule_id, position FROM pushrules_user
		WHERE user_id = $1 AND kind = $2 ORDER BY position, rule_id`, userID, k)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []placedRule
	for rows.Next() {
		var p placedRule
		if err := rows.Scan(&p.ruleID, &p.pos); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// putRule creates or replaces a user rule, placed by before/after (see
// handlePutRule). A new rule is enabled; a replaced one keeps its enabled
// flag and, without before/after, its place.
func putRule(ctx context.Context, tx *store.Tx, userID, k, ruleID, before, after string, nr newRule) error {
	order, err := kindOrder(ctx, tx, userID, k)
	if err != nil {
		return err
	}
	self := slices.IndexFunc(order, func(p placedRule) bool { return p.ruleID == ruleID })
	exists := self >= 0
	if !exists {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pushrules_user WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return err
		}
		if n >= maxUserRules {
			return httpx.TooLarge(fmt.Sprintf("At most %d push rules are stored per user; delete one first", maxUserRules))
		}
	}
	var pos int64
	if exists && before == "" && after == "" {
		pos = order[self].pos
	} else {
		others := slices.Clone(order)
		if exists {
			others = slices.Delete(others, self, self+1)
		}
		at := 0
		if anchor := cmp.Or(before, after); anchor != "" {
			i := slices.IndexFunc(others, func(p placedRule) bool { return p.ruleID == anchor })
			if i < 0 {
				return httpx.Unknown("before/after rule not found: " + quote(anchor)).WithStatus(http.StatusBadRequest)
			}
			at = i
			if before == "" {
				at = i + 1
			}
		}
		ps := make([]int64, len(others))
		for i, p := range others {
			ps[i] = p.pos
		}
		var ok bool
		if pos, ok = place(ps, at); !ok {
			if pos, err = renumber(ctx, tx, userID, k, others, at); err != nil {
				return err
			}
		}
	}
	var pattern any
	if nr.Pattern != nil {
		pattern = *nr.Pattern
	}
	var conditions any
	if nr.Conditions != nil {
		conditions = []byte(nr.Conditions)
	}
	_, err = tx.Exec(ctx, `INSERT INTO pushrules_user
		(user_id, kind, rule_id, position, enabled, conditions, pattern, actions)
		VALUES ($1, $2, $3, $4, TRUE, $5, $6, $7)
		ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET position = excluded.position,
			conditions = excluded.conditions, pattern = excluded.pattern, actions = excluded.actions`,
		userID, k, ruleID, pos, conditions, pattern, []byte(nr.Actions))
	return err
}

// renumber spaces the kind's rules evenly with a hole at index at, writes
// the positions that changed and returns the hole's position.
func renumber(ctx context.Context, tx *store.Tx, userID, k string, others []placedRule, at int) (int64, error) {
	ps := rebalance(len(others) + 1)
	for i, p := range others {
		j := i
		if i >= at {
			j = i + 1
		}
		if p.pos == ps[j] {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE pushrules_user SET position = $4
			WHERE user_id = $1 AND kind = $2 AND rule_id = $3`, userID, k, p.ruleID, ps[j]); err != nil {
			return 0, err
		}
	}
	return ps[at], nil
}

// deleteRule deletes a user rule and reports whether there was one.
func deleteRule(ctx context.Context, db *store.DB, userID, k, ruleID string) (bool, error) {
	res, err := db.Exec(ctx, `DELETE FROM pushrules_user WHERE user_id = $1 AND kind = $2 AND rule_id = $3`,
		userID, k, ruleID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// setEnabled sets a rule's enabled flag: a user rule's own, or a change
// to a server-default rule. It reports whether the rule exists.
func setEnabled(ctx context.Context, db *store.DB, userID, k, ruleID string, enabled bool) (bool, error) {
	if isDefault(k, ruleID) {
		_, err := db.Exec(ctx, `INSERT INTO pushrules_default (user_id, kind, rule_id, enabled, actions)
			VALUES ($1, $2, $3, $4, NULL)
			ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET enabled = excluded.enabled`,
			userID, k, ruleID, enabled)
		return err == nil, err
	}
	return updated(db.Exec(ctx, `UPDATE pushrules_user SET enabled = $4
		WHERE user_id = $1 AND kind = $2 AND rule_id = $3`, userID, k, ruleID, enabled))
}

// setActions sets a rule's actions, as setEnabled.
func setActions(ctx context.Context, db *store.DB, userID, k, ruleID string, actions json.RawMessage) (bool, error) {
	if isDefault(k, ruleID) {
		_, err := db.Exec(ctx, `INSERT INTO pushrules_default (user_id, kind, rule_id, enabled, actions)
			VALUES ($1, $2, $3, NULL, $4)
			ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET actions = excluded.actions`,
			userID, k, ruleID, []byte(actions))
		return err == nil, err
	}
	return updated(db.Exec(ctx, `UPDATE pushrules_user SET actions = $4
		WHERE user_id = $1 AND kind = $2 AND rule_id = $3`, userID, k, ruleID, []byte(actions)))
}

func updated(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
