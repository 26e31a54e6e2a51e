// Package pushrules owns each user's push rules (spec "Push Rules", v1.19)
// and serves the Client-Server push rules API under /v3 and /r0:
//
//	GET    /pushrules/                              {"global": ruleset}
//	GET    /pushrules/global/                       the ruleset
//	GET    /pushrules/global/{kind}/{ruleId}        one rule
//	PUT    /pushrules/global/{kind}/{ruleId}        create or replace a user rule (?before=, ?after=)
//	DELETE /pushrules/global/{kind}/{ruleId}        delete a user rule
//	GET|PUT /pushrules/global/{kind}/{ruleId}/enabled
//	GET|PUT /pushrules/global/{kind}/{ruleId}/actions
//
// Service.Ruleset gives the same ruleset to the sync role for the
// m.push_rules account data event (content {"global": Ruleset}).
//
// # What it must never do
//
//   - Store the server-default rules: they are built per user from the
//     spec's list (rules.go, checked against the spec's text in
//     testdata/spec_predefined_rules.json), so a server upgrade that
//     changes them reaches every user. Only what a user changed is stored
//     (pushrules_user, pushrules_default, migrations 0600–0699).
//   - Let a user create, delete or move a server-default rule, or show one
//     user's rules to another (every endpoint acts on the caller's rules).
//   - Read or write other areas' tables, or m.push_rules in userdata's
//     account data (that area refuses client writes of it and never
//     writes it; the sync role takes the content from Ruleset).
//
// # Order
//
// The ruleset lists, per kind in the spec's order (override, content,
// room, sender, underride): .m.rule.master first when it is of the kind,
// then the user's rules in their order, then the remaining server-default
// rules in the spec's order (spec "Predefined Rules": server-default rules
// are less important than user rules, except .m.rule.master). Every kind
// is present, as [] when empty.
//
// A user rule's place is a bigint position within (user, kind): smaller is
// more important, ties broken by rule ID. PUT without before/after puts a
// new rule first among the user's rules and leaves a replaced one where it
// is; before/after put it right before/after that user rule of the same
// kind (before wins when both are given, per the spec). The new position
// is the midpoint of its neighbours, or a neighbour's ∓ 2^20 at either
// end; when there is no integer left between the neighbours (about 20
// insertions at one spot) the same transaction renumbers the user's rules
// of that kind 0, 2^20, 2·2^20, … (position.go). No sequence or counter
// row is involved, so users never contend with each other; two requests
// of one user are serialised by the SERIALIZABLE transaction and retried.
//
// # Choices where the spec is silent
//
// Rule IDs of user rules: 1–255 bytes of UTF-8, not starting with '.', no
// '/' or '\' (400 M_INVALID_PARAM). A room rule's ID must be a room ID and
// a sender rule's a user ID. PUT of an ID starting with '.' is
// 400 M_INVALID_PARAM (reserved for server-default rules, which cannot be
// created); DELETE of a server-default rule is 400 M_INVALID_PARAM (it
// exists, so 404 would mislead: disable it instead), and of any other
// unknown rule 404 M_NOT_FOUND. before/after naming a server-default rule
// or the rule itself is 400 M_INVALID_PARAM; naming no user rule of the
// kind is 400 M_UNKNOWN, as in the spec's example. An unknown {kind} is
// 400 M_INVALID_PARAM; a scope other than global is 404 M_UNRECOGNIZED.
//
// Bodies: at most 64 KiB. actions is required (M_MISSING_PARAM; not an
// array: M_BAD_JSON); each action must be "notify" or a set_tweak object
// with a non-empty tweak name (highlight's value a boolean, sound's a
// string); the historical dont_notify and coalesce are stripped when
// stored, as the spec allows; anything else is 400 M_INVALID_PARAM. At
// most 100 actions and 100 conditions. conditions (override and underride
// only; absent means []) are objects with a string kind; the parameters
// of the spec's condition kinds are checked (event_match key and pattern;
// event_property_is/contains key and a canonical-JSON scalar value;
// room_member_count is; sender_notification_permission key). Conditions
// of unknown kinds are kept: they never match, which the spec says
// disables the rule, and a newer client may know them. A content rule
// needs a non-empty pattern. Fields that do not apply to the kind are
// ignored. A replaced rule keeps its enabled flag; a new one is enabled.
// A user has at most 1,000 rules of their own (413 M_TOO_LARGE).
//
// enabled and actions of a server-default rule are stored per user in
// pushrules_default and applied over the server's definition; the rule
// keeps its conditions and place. Such changes are kept even when equal
// to the default.
//
// The spec's v1.17 removed the legacy body-matching rules
// (.m.rule.contains_user_name, .m.rule.contains_display_name,
// .m.rule.roomnotif), so there are no server-default content rules: the
// per-user defaults are .m.rule.invite_for_me and .m.rule.is_user_mention,
// which name the user's Matrix ID.
//
// # Not done
//
// Pushing: no pushers, no push to gateways, no /notifications. Rules are
// evaluated (eval.go) for the sync role's unread and highlight counts.
// No wake-up or stream position on change: the sync role does not yet
// learn that m.push_rules changed (a Config hook or a shared stream
// position is the way); its counts pick up changed rules within the few
// seconds it caches them. No kind-level GET /pushrules/global/{kind}/
// (not in the spec). No guest check (the Authenticator may refuse guests:
// push rules are not among the spec's guest endpoints). No rate limits
// (wrap the routes) or metrics. Config.Now is unused for now.
package pushrules
