package auth

import (
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
)

// Keys of an identity server for third-party invites.
var (
	idKey    = seededKey("ed25519:0", 0x42)
	otherKey = seededKey("ed25519:1", 0x43)
)

func seededKey(kid keys.KeyID, b byte) *keys.SigningKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = b
	}
	k, err := keys.FromSeed(kid, seed)
	if err != nil {
		panic(err)
	}
	return k
}

// tpiEvent is an m.room.third_party_invite with token "tok" by sender,
// publishing publicKey as public_key and listKey in public_keys.
func (r *room) tpiEvent(sender string, publicKey, listKey *keys.SigningKey) *event.Event {
	r.t.Helper()
	c := js(`{"display_name":"c...","key_validity_url":"https://id.example.org/_matrix/identity/v2/pubkey/isvalid"}`)
	if publicKey != nil {
		c = c.With("public_key", cjson.StringValue(publicKey.PublicBase64()))
	}
	if listKey != nil {
		c = c.With("public_keys", cjson.ArrayValue(cjson.ObjectValue(
			cjson.Member{Key: "public_key", Value: cjson.StringValue(listKey.PublicBase64())})))
	}
	return r.stateEv("m.room.third_party_invite", "tok", sender, c.String())
}

// signedBlock is a third_party_invite.signed object signed by the identity
// server with key.
func signedBlock(mxid, token string, key *keys.SigningKey) cjson.Value {
	obj := js(`{}`).With("mxid", cjson.StringValue(mxid)).With("token", cjson.StringValue(token))
	signed, err := keys.SignJSON(obj, "id.example.org", key)
	if err != nil {
		panic(err)
	}
	return signed
}

// tpInvite is alice's invite of carol carrying the third_party_invite
// object tpi.
func (r *room) tpInvite(sender string, tpi cjson.Value) *event.Event {
	r.t.Helper()
	c := js(`{"membership":"invite"}`).With("third_party_invite", tpi)
	return r.stateEv("m.room.member", carol, sender, c.String())
}

func withSigned(signed cjson.Value) cjson.Value {
	return js(`{"display_name":"carol"}`).With("signed", signed)
}

// The invite, leave, ban and knock sub-rules of the m.room.member rule, and
// unknown memberships.
func TestRulesMemberInvite(t *testing.T) {
	good := func(r *room) *event.Event {
		r.put(r.tpiEvent(alice, idKey, nil))
		return r.tpInvite(alice, withSigned(signedBlock(carol, "tok", idKey)))
	}
	I := func(sub string) map[string]string {
		return at("v1 v3:5.3"+sub, "v6 v7:4.3"+sub, "v8 v10 v11:4.4"+sub, "v12:5.4"+sub)
	}
	runRuleCases(t, []ruleCase{
		{rules: I(".1.1"), desc: "third-party invite of a banned user rejected", setup: func(r *room) *event.Event {
			r.setMember(carol, "ban")
			return good(r)
		}},
		{rules: I(".1.2"), desc: "third-party invite without signed rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			return r.tpInvite(alice, js(`{"display_name":"carol"}`))
		}},
		{rules: I(".1.2"), desc: "third-party invite that is not an object rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			return r.tpInvite(alice, cjson.StringValue("x"))
		}},
		{rules: I(".1.3"), desc: "third-party invite signed without token rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			s, _ := keys.SignJSON(js(`{"mxid":"`+carol+`"}`), "id.example.org", idKey)
			return r.tpInvite(alice, withSigned(s))
		}},
		{rules: I(".1.3"), desc: "third-party invite signed without mxid rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			s, _ := keys.SignJSON(js(`{"token":"tok"}`), "id.example.org", idKey)
			return r.tpInvite(alice, withSigned(s))
		}},
		{rules: I(".1.4"), desc: "third-party invite whose mxid is not the state_key rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			return r.tpInvite(alice, withSigned(signedBlock(dave, "tok", idKey)))
		}},
		{rules: I(".1.5"), desc: "third-party invite without a matching m.room.third_party_invite rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			return r.tpInvite(alice, withSigned(signedBlock(carol, "other-token", idKey)))
		}},
		{rules: I(".1.6"), desc: "third-party invite by someone other than the m.room.third_party_invite sender rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.put(r.tpiEvent(bob, idKey, nil))
			return r.tpInvite(alice, withSigned(signedBlock(carol, "tok", idKey)))
		}},
		{rules: I(".1.7"), desc: "third-party invite validly signed with public_key allowed", allow: true, setup: good},
		{rules: I(".1.7"), desc: "third-party invite validly signed with a key of public_keys allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.put(r.tpiEvent(alice, otherKey, idKey))
				return r.tpInvite(alice, withSigned(signedBlock(carol, "tok", idKey)))
			}},
		// Only the first ed25519 signature (in signer, then key ID order) is
		// tried, as the reference implementation does.
		{rules: I(".1.7"), desc: "third-party invite whose first signature is valid allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.put(r.tpiEvent(alice, idKey, nil))
				s := signedBlock(carol, "tok", idKey)
				s, _ = keys.SignJSON(s, "zz.example", seededKey("ed25519:x", 9)) // a later signer
				return r.tpInvite(alice, withSigned(s))
			}},
		{rules: I(".1.8"), desc: "third-party invite whose valid signature is not the first rejected",
			setup: func(r *room) *event.Event {
				r.put(r.tpiEvent(alice, idKey, nil))
				s := signedBlock(carol, "tok", idKey)
				s, _ = keys.SignJSON(s, "elsewhere.example", seededKey("ed25519:x", 9)) // an earlier signer
				return r.tpInvite(alice, withSigned(s))
			}},
		{rules: I(".1.8"), desc: "third-party invite signed by another key rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			return r.tpInvite(alice, withSigned(signedBlock(carol, "tok", otherKey)))
		}},
		{rules: I(".1.8"), desc: "third-party invite whose signed object was altered rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			s := signedBlock(carol, "tok", idKey).With("extra", cjson.StringValue("added after signing"))
			return r.tpInvite(alice, withSigned(s))
		}},
		{rules: I(".1.8"), desc: "third-party invite whose m.room.third_party_invite has no keys rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, nil, nil))
			return r.tpInvite(alice, withSigned(signedBlock(carol, "tok", idKey)))
		}},
		{rules: I(".1.8"), desc: "third-party invite without signatures rejected", setup: func(r *room) *event.Event {
			r.put(r.tpiEvent(alice, idKey, nil))
			return r.tpInvite(alice, withSigned(signedBlock(carol, "tok", idKey).Without("signatures")))
		}},

		{rules: I(".2"), desc: "invite by a non-member rejected", setup: func(r *room) *event.Event {
			return r.member(bob, carol, "invite", "")
		}},
		{rules: I(".2"), desc: "invite by an invited user rejected", setup: func(r *room) *event.Event {
			r.setMember(bob, "invite")
			return r.member(bob, carol, "invite", "")
		}},
		{rules: I(".3"), desc: "invite of a joined user rejected", setup: func(r *room) *event.Event {
			r.join(carol)
			return r.member(alice, carol, "invite", "")
		}},
		{rules: I(".3"), desc: "invite of a banned user rejected", setup: func(r *room) *event.Event {
			r.setMember(carol, "ban")
			return r.member(alice, carol, "invite", "")
		}},
		{rules: I(".4"), desc: "invite by a member at the invite level allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.member(bob, carol, "invite", "")
		}},
		{rules: I(".4"), desc: "invite of a user who left allowed", allow: true, setup: func(r *room) *event.Event {
			r.setMember(carol, "leave")
			return r.member(alice, carol, "invite", "")
		}},
		{rules: I(".5"), desc: "invite below the invite level rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"invite":50`)
			return r.member(bob, carol, "invite", "")
		}},
	})
}

func TestRulesMemberLeaveBan(t *testing.T) {
	L := func(sub string) map[string]string {
		return at("v1 v3:5.4"+sub, "v6 v7:4.4"+sub, "v8 v10 v11:4.5"+sub, "v12:5.5"+sub)
	}
	B := func(sub string) map[string]string {
		return at("v1 v3:5.5"+sub, "v6 v7:4.5"+sub, "v8 v10 v11:4.6"+sub, "v12:5.6"+sub)
	}
	const top = "9007199254740991" // the largest power level canonical JSON allows
	withMods := func(r *room) {
		r.setPL(`"`+mod+`":50,"@mod2:example.org":50`, "")
		r.join(mod, "@mod2:example.org", bob)
	}
	runRuleCases(t, []ruleCase{
		{rules: L(".1"), desc: "leave of a joined user allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.member(bob, bob, "leave", "")
		}},
		{rules: L(".1"), desc: "rejecting an invite allowed", allow: true, setup: func(r *room) *event.Event {
			r.setMember(bob, "invite")
			return r.member(bob, bob, "leave", "")
		}},
		{rules: L(".1"), desc: "leave of a banned user rejected", setup: func(r *room) *event.Event {
			r.setMember(bob, "ban")
			return r.member(bob, bob, "leave", "")
		}},
		{rules: L(".1"), desc: "leave of a non-member rejected", setup: func(r *room) *event.Event {
			return r.member(bob, bob, "leave", "")
		}},
		{rules: at("v7:4.4.1", "v8 v10 v11:4.5.1", "v12:5.5.1"), desc: "retracting a knock allowed", allow: true, setup: func(r *room) *event.Event {
			r.setMember(bob, "knock")
			return r.member(bob, bob, "leave", "")
		}},
		{rules: at("v1 v3:5.4.1", "v6:4.4.1"), desc: "leave after a knock rejected before v7", setup: func(r *room) *event.Event {
			r.setMember(bob, "knock")
			return r.member(bob, bob, "leave", "")
		}},
		{rules: L(".2"), desc: "kick by a non-member rejected", setup: func(r *room) *event.Event {
			r.join(carol)
			return r.member(bob, carol, "leave", "")
		}},
		{rules: L(".3"), desc: "unban below the ban level rejected", setup: func(r *room) *event.Event {
			withMods(r)
			r.setPL(`"`+mod+`":50`, `"ban":75`)
			r.setMember(carol, "ban")
			return r.member(mod, carol, "leave", "")
		}},
		{rules: L(".4"), desc: "kick by a moderator allowed", allow: true, setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(mod, bob, "leave", "")
		}},
		{rules: L(".4"), desc: "unban by an admin allowed", allow: true, setup: func(r *room) *event.Event {
			r.setMember(carol, "ban")
			return r.member(alice, carol, "leave", "")
		}},
		{rules: L(".5"), desc: "kick of an equal rejected", setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(mod, "@mod2:example.org", "leave", "")
		}},
		{rules: L(".5"), desc: "kick below the kick level rejected", setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(bob, mod, "leave", "")
		}},
		{rules: L(".5"), desc: "kick of a non-member below the kick level rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			return r.member(bob, carol, "leave", "")
		}},
		{rules: at("v12:5.5.5"), desc: "kick of the creator by a user at the top power level rejected", setup: func(r *room) *event.Event {
			r.setPL(`"`+bob+`":`+top, "")
			r.join(bob)
			return r.member(bob, alice, "leave", "")
		}},
		{rules: at("v12:5.5.5"), desc: "kick of an additional creator by a user at the top power level rejected",
			createExtra: `"additional_creators":["` + carol + `"]`, setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":`+top, "")
				r.join(bob, carol)
				return r.member(bob, carol, "leave", "")
			}},
		{rules: at("v12:5.5.5"), desc: "kick of one creator by another rejected",
			createExtra: `"additional_creators":["` + carol + `"]`, setup: func(r *room) *event.Event {
				r.join(carol)
				return r.member(carol, alice, "leave", "")
			}},
		{rules: at("v12:5.5.4"), desc: "kick of a user at the top power level by the creator allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":`+top, "")
				r.join(bob)
				return r.member(alice, bob, "leave", "")
			}},
		{rules: at("v1 v3:5.4.5", "v6 v7:4.4.5", "v8 v10 v11:4.5.5"), desc: "kick of the creator by a user at the creator's level rejected before v12",
			setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":100`, "")
				r.join(bob)
				return r.member(bob, alice, "leave", "")
			}},
		{rules: at("v1 v3:5.4.4", "v6 v7:4.4.4", "v8 v10 v11:4.5.4"), desc: "kick of the creator by a user above the creator allowed before v12", allow: true,
			setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":101`, "")
				r.join(bob)
				return r.member(bob, alice, "leave", "")
			}},

		{rules: B(".1"), desc: "ban by a non-member rejected", setup: func(r *room) *event.Event {
			r.setPL(`"`+mod+`":50`, "")
			return r.member(mod, bob, "ban", "")
		}},
		{rules: B(".2"), desc: "ban by a moderator allowed", allow: true, setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(mod, bob, "ban", "")
		}},
		{rules: B(".2"), desc: "ban of a non-member allowed", allow: true, setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(mod, carol, "ban", "")
		}},
		{rules: B(".3"), desc: "ban below the ban level rejected", setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(bob, carol, "ban", "")
		}},
		{rules: B(".3"), desc: "ban of an equal rejected", setup: func(r *room) *event.Event {
			withMods(r)
			return r.member(mod, "@mod2:example.org", "ban", "")
		}},
		{rules: at("v12:5.6.3"), desc: "ban of the creator by a user at the top power level rejected", setup: func(r *room) *event.Event {
			r.setPL(`"`+bob+`":`+top, "")
			r.join(bob)
			return r.member(bob, alice, "ban", "")
		}},
		{rules: at("v12:5.6.2"), desc: "ban of a user at the top power level by an additional creator allowed", allow: true,
			createExtra: `"additional_creators":["` + carol + `"]`, setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":`+top, "")
				r.join(bob, carol)
				return r.member(carol, bob, "ban", "")
			}},
	})
}

func TestRulesMemberKnock(t *testing.T) {
	K := func(sub string) map[string]string {
		return at("v7:4.6"+sub, "v8 v10 v11:4.7"+sub, "v12:5.7"+sub)
	}
	runRuleCases(t, []ruleCase{
		{rules: K(".1"), desc: "knock on an invite-only room rejected", setup: func(r *room) *event.Event {
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".1"), desc: "knock on a public room rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("public")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: at("v7:4.6.1", "v8:4.7.1"), desc: "knock on a knock_restricted room rejected before v10", setup: func(r *room) *event.Event {
			r.setJoinRule("knock_restricted")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: at("v10 v11:4.7.3", "v12:5.7.3"), desc: "knock on a knock_restricted room allowed", allow: true, setup: func(r *room) *event.Event {
			r.setJoinRule("knock_restricted")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: at("v8 v10 v11:4.7.1", "v12:5.7.1"), desc: "knock on a restricted room rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("restricted")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".2"), desc: "knock for someone else rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			return r.member(alice, bob, "knock", "")
		}},
		{rules: K(".3"), desc: "knock on a knock room allowed", allow: true, setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".3"), desc: "knock after leaving allowed", allow: true, setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			r.setMember(bob, "leave")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".3"), desc: "knock again after knocking allowed", allow: true, setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			r.setMember(bob, "knock")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".4"), desc: "knock when invited rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			r.setMember(bob, "invite")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".4"), desc: "knock when joined rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			r.join(bob)
			return r.member(bob, bob, "knock", "")
		}},
		{rules: K(".4"), desc: "knock when banned rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			r.setMember(bob, "ban")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: at("v1 v3:5.6", "v6:4.6"), desc: "knock is an unknown membership before v7", setup: func(r *room) *event.Event {
			r.setJoinRule("knock")
			return r.member(bob, bob, "knock", "")
		}},
		{rules: at("v1 v3:5.6", "v6:4.6", "v7:4.7", "v8 v10 v11:4.8", "v12:5.8"), desc: "unknown membership rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("public")
			return r.member(bob, bob, "wander", "")
		}},
		{rules: at("v1 v3:5.6", "v6:4.6", "v7:4.7", "v8 v10 v11:4.8", "v12:5.8"), desc: "non-string membership rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("public")
			return r.stateEv("m.room.member", bob, bob, `{"membership":["join"]}`)
		}},
	})
}
