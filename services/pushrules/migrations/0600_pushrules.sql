-- 0600_pushrules: each user's push rules (spec "Push Rules").
--
-- The server-default rules are not stored: they are built per user from
-- the spec's list (defaults.go). Only what a user changed is kept here.

-- pushrules_user holds the rules a user created, one row per (user, kind,
-- rule ID). Within a user's rules of one kind, a smaller position is more
-- important, and ties (which only a race could make) are broken by
-- rule_id. Positions are spaced by a gap (1<<20), so a rule placed between
-- two others takes the midpoint. When two neighbours have no room left,
-- the transaction that needs it renumbers that user's rules of that kind
-- (at most maxUserRules rows). No sequence or counter row is needed.
-- conditions is the JSON array of an override/underride rule (NULL for the
-- other kinds), pattern the glob of a content rule (NULL otherwise), and
-- actions the JSON array as stored (historical actions stripped).
CREATE TABLE IF NOT EXISTS pushrules_user (
	user_id    {{text}} NOT NULL,
	kind       {{text}} NOT NULL,
	rule_id    {{text}} NOT NULL,
	position   {{bigint}} NOT NULL,
	enabled    {{bool}} NOT NULL,
	conditions {{bytes}},
	pattern    {{text}},
	actions    {{bytes}} NOT NULL,
	PRIMARY KEY (user_id, kind, rule_id)
);
CREATE INDEX IF NOT EXISTS pushrules_user_position ON pushrules_user (user_id, kind, position);

-- pushrules_default holds a user's changes to server-default rules: the
-- enabled flag and/or the actions (NULL: as the server defines it). A
-- row for a rule ID the server no longer defines is ignored.
CREATE TABLE IF NOT EXISTS pushrules_default (
	user_id {{text}} NOT NULL,
	kind    {{text}} NOT NULL,
	rule_id {{text}} NOT NULL,
	enabled {{bool}},
	actions {{bytes}},
	PRIMARY KEY (user_id, kind, rule_id)
);
