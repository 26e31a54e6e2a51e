package auth

import (
	"crypto/ed25519"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
)

// checkMember applies the m.room.member rule (5 in v1–5 and v12, 4 in v6–11).
func (c *checker) checkMember() *Rejection {
	ev, n := c.ev, &c.n
	target, hasStateKey := ev.StateKey()
	mv := ev.Content().Get("membership")
	if !hasStateKey || !mv.Exists() {
		return c.reject("m.room.member event has no state_key or no content.membership", n.member, n.mMissing)
	}
	// The spec applies this to every membership; the reference
	// implementation only to joins, and refusing a leave or ban it accepts
	// would split the room's membership. We follow it.
	if c.v.RestrictedJoins && mv.StrOr("") == memberJoin {
		if via := ev.Content().Get("join_authorised_via_users_server"); via.Exists() {
			s, ok := via.Str()
			if !ok {
				return c.reject("content.join_authorised_via_users_server is a "+via.Kind().String()+", not a user ID", n.member, n.mVia, 1)
			}
			uid, err := id.ParseUserID(s)
			if err != nil {
				return c.reject("content.join_authorised_via_users_server: "+err.Error(), n.member, n.mVia, 1)
			}
			if !ev.HasSignatureFrom(string(uid.Server())) {
				return c.reject("the event is not signed by "+string(uid.Server())+", the server of join_authorised_via_users_server "+s, n.member, n.mVia, 1)
			}
		}
	}
	membership, _ := mv.Str()
	senderM := c.membership(ev.Sender())
	switch membership {
	case memberJoin:
		return c.checkJoin(target, senderM)
	case memberInvite:
		return c.checkInvite(target, senderM)
	case memberLeave:
		return c.checkLeave(target, senderM)
	case memberBan:
		return c.checkBan(target, senderM)
	case memberKnock:
		if c.v.Knocking {
			return c.checkKnock(target, senderM)
		}
	}
	return c.reject("unknown membership "+mv.String(), n.member, n.mUnknown)
}

func (c *checker) checkJoin(target, senderM string) *Rejection {
	ev, n := c.ev, &c.n
	rule := func(reason string, sub ...int) *Rejection {
		return c.reject(reason, append([]int{n.member, n.mJoin}, sub...)...)
	}
	if p := ev.PrevEvents(); len(p) == 1 && p[0] == c.create.ID() {
		if creator := creatorOf(c.v, c.create); creator != "" && target == creator {
			return nil
		}
	}
	if ev.Sender() != target {
		return rule("sender "+ev.Sender()+" does not match state_key "+target, n.jSender)
	}
	if senderM == memberBan {
		return rule("sender "+ev.Sender()+" is banned", n.jBanned)
	}
	joinRule := c.joinRule()
	switch {
	case joinRule == "invite" || (c.v.Knocking && joinRule == "knock"):
		if senderM == memberInvite || senderM == memberJoin {
			return nil
		}
		return rule("the join rule is "+joinRule+" and "+ev.Sender()+" is not invited (membership "+quoteMembership(senderM)+")", n.jOther)
	case c.v.RestrictedJoins && (joinRule == "restricted" || (c.v.KnockRestricted && joinRule == "knock_restricted")):
		if senderM == memberJoin || senderM == memberInvite {
			return nil
		}
		via, ok := ev.Content().Get("join_authorised_via_users_server").Str()
		if !ok {
			return rule("the join rule is "+joinRule+" and content has no join_authorised_via_users_server", n.jRestricted, 2)
		}
		if m := c.membership(via); m != memberJoin {
			return rule("join_authorised_via_users_server "+via+" is not joined to the room (membership "+quoteMembership(m)+")", n.jRestricted, 2)
		}
		if l, inv := c.pl.level(via), c.pl.prop(propInvite); l.cmp(inv) < 0 {
			return rule("join_authorised_via_users_server "+via+" has power level "+l.String()+", below the invite level "+inv.String(), n.jRestricted, 2)
		}
		return nil
	case joinRule == "public":
		return nil
	}
	return rule("join rule "+quote(joinRule)+" does not let "+ev.Sender()+" join", n.jOther)
}

func (c *checker) checkInvite(target, senderM string) *Rejection {
	ev, n := c.ev, &c.n
	rule := func(reason string, sub ...int) *Rejection {
		return c.reject(reason, append([]int{n.member, n.mInvite}, sub...)...)
	}
	if tpi := ev.Content().Get("third_party_invite"); tpi.Exists() {
		if c.membership(target) == memberBan {
			return rule("target "+target+" is banned", 1, 1)
		}
		signed := tpi.Get("signed")
		if signed.Kind() != cjson.Object {
			return rule("content.third_party_invite has no signed object", 1, 2)
		}
		mxid, okMXID := signed.Get("mxid").Str()
		token, okToken := signed.Get("token").Str()
		if !okMXID || !okToken {
			return rule("content.third_party_invite.signed lacks a string mxid or token", 1, 3)
		}
		if mxid != target {
			return rule("signed mxid "+mxid+" does not match state_key "+target, 1, 4)
		}
		invite := c.state.Get(typeThirdParty, token)
		if invite == nil {
			return rule("there is no m.room.third_party_invite event with state_key "+quote(token), 1, 5)
		}
		if invite.Sender() != ev.Sender() {
			return rule("sender "+ev.Sender()+" is not the sender "+invite.Sender()+" of the m.room.third_party_invite", 1, 6)
		}
		if thirdPartySignatureValid(signed, invite) {
			return nil
		}
		return rule("no signature in content.third_party_invite.signed verifies with a public key of the m.room.third_party_invite", 1, 8)
	}
	if senderM != memberJoin {
		return rule("sender "+ev.Sender()+" is not joined (membership "+quoteMembership(senderM)+")", 2)
	}
	if m := c.membership(target); m == memberJoin || m == memberBan {
		return rule("target "+target+" has membership "+m, 3)
	}
	if l, inv := c.pl.level(ev.Sender()), c.pl.prop(propInvite); l.cmp(inv) < 0 {
		return rule("sender "+ev.Sender()+" has power level "+l.String()+", below the invite level "+inv.String(), 5)
	}
	return nil
}

func (c *checker) checkLeave(target, senderM string) *Rejection {
	ev, n := c.ev, &c.n
	rule := func(reason string, sub ...int) *Rejection {
		return c.reject(reason, append([]int{n.member, n.mLeave}, sub...)...)
	}
	if ev.Sender() == target {
		if senderM == memberInvite || senderM == memberJoin || (c.v.Knocking && senderM == memberKnock) {
			return nil
		}
		return rule(target+" cannot leave with membership "+quoteMembership(senderM), 1)
	}
	if senderM != memberJoin {
		return rule("sender "+ev.Sender()+" is not joined (membership "+quoteMembership(senderM)+")", 2)
	}
	sl := c.pl.level(ev.Sender())
	if ban := c.pl.prop(propBan); c.membership(target) == memberBan && sl.cmp(ban) < 0 {
		return rule("target "+target+" is banned and sender "+ev.Sender()+" has power level "+sl.String()+
			", below the ban level "+ban.String(), 3)
	}
	kick, tl := c.pl.prop(propKick), c.pl.level(target)
	if sl.cmp(kick) >= 0 && tl.cmp(sl) < 0 {
		return nil
	}
	return rule("sender "+ev.Sender()+" has power level "+sl.String()+" (kick level "+kick.String()+
		") and target "+target+" has "+tl.String(), 5)
}

func (c *checker) checkBan(target, senderM string) *Rejection {
	ev, n := c.ev, &c.n
	if senderM != memberJoin {
		return c.reject("sender "+ev.Sender()+" is not joined (membership "+quoteMembership(senderM)+")", n.member, n.mBan, 1)
	}
	sl, ban, tl := c.pl.level(ev.Sender()), c.pl.prop(propBan), c.pl.level(target)
	if sl.cmp(ban) >= 0 && tl.cmp(sl) < 0 {
		return nil
	}
	return c.reject("sender "+ev.Sender()+" has power level "+sl.String()+" (ban level "+ban.String()+
		") and target "+target+" has "+tl.String(), n.member, n.mBan, 3)
}

func (c *checker) checkKnock(target, senderM string) *Rejection {
	ev, n := c.ev, &c.n
	joinRule := c.joinRule()
	if joinRule != "knock" && !(c.v.KnockRestricted && joinRule == "knock_restricted") {
		return c.reject("join rule "+quote(joinRule)+" does not allow knocking", n.member, n.mKnock, 1)
	}
	if ev.Sender() != target {
		return c.reject("sender "+ev.Sender()+" does not match state_key "+target, n.member, n.mKnock, 2)
	}
	switch senderM {
	case memberBan, memberInvite, memberJoin:
		return c.reject("sender "+ev.Sender()+" cannot knock with membership "+senderM, n.member, n.mKnock, 4)
	}
	return nil
}

// thirdPartySignatureValid reports whether the first ed25519 signature in
// signed (the content.third_party_invite.signed object of an invite; first
// in key order: signer, then key ID) verifies with any public key of the
// m.room.third_party_invite event. Only the first is tried, as the
// reference implementation does: trying every signature would honour
// invites that other servers refuse.
func thirdPartySignatureValid(signed cjson.Value, invite *event.Event) bool {
	pubs := thirdPartyPublicKeys(invite.Content())
	for _, signer := range signed.Get("signatures").Members() {
		for _, sig := range signer.Value.Members() {
			if keys.KeyID(sig.Key).Algorithm() != keys.AlgorithmEd25519 {
				continue
			}
			one := signed.With("signatures", cjson.ObjectValue(cjson.Member{Key: signer.Key, Value: cjson.ObjectValue(sig)}))
			msg := signed.AppendCanonicalWithout(nil, "signatures", "unsigned")
			for _, pk := range pubs {
				lookup := func(string, keys.KeyID) (keys.VerifyKey, bool) {
					return keys.VerifyKey{Key: pk, ValidUntilTS: keys.NoExpiry}, true
				}
				if keys.VerifyCanonical(msg, one, signer.Key, lookup, keys.VerifyOptions{}) == nil {
					return true
				}
			}
			return false
		}
	}
	return false
}

// thirdPartyPublicKeys collects the ed25519 keys of an
// m.room.third_party_invite content: public_key and public_keys[].public_key,
// unpadded base64 (standard or URL-safe). Undecodable keys are skipped.
func thirdPartyPublicKeys(content cjson.Value) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	add := func(v cjson.Value) {
		s, ok := v.Str()
		if !ok {
			return
		}
		b, err := keys.DecodeBase64(s)
		if err != nil {
			b, err = keys.DecodeBase64URL(s)
		}
		if err == nil && len(b) == ed25519.PublicKeySize {
			out = append(out, ed25519.PublicKey(b))
		}
	}
	add(content.Get("public_key"))
	if list := content.Get("public_keys"); list.Kind() == cjson.Array {
		for _, m := range list.Elems() {
			add(m.Value.Get("public_key"))
		}
	}
	return out
}
