package auth

import (
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"strings"
)

// validatePowerLevels applies the rules about the shape of m.room.power_levels
// content: in v10+ every integer property, events, notifications and users
// must hold integers; in v1–9 users must map user IDs to integers or
// integer strings (v1–5: or numbers, truncated); in v1–5 a number beyond
// the range of a double anywhere rejects the event; in v12 the creators
// must not be listed in users.
func validatePowerLevels(v *roomversion.Version, n numbering, content cjson.Value, create *event.Event) *Rejection {
	reject := func(reason string, rule ...int) *Rejection {
		return &Rejection{RoomVersion: v.ID, Rule: ruleString(rule), Reason: reason}
	}
	pl := n.powerLevels
	if v.IntegerPowerLevels {
		for _, name := range propNames {
			if val := content.Get(name); val.Exists() {
				if _, st := parseLevel(v, val); st != valueOK {
					return reject("content."+name+" is "+val.String()+", not an integer", pl, n.pProps)
				}
			}
		}
		for _, name := range [...]string{"events", "notifications"} {
			obj := content.Get(name)
			if !obj.Exists() {
				continue
			}
			if obj.Kind() != cjson.Object {
				return reject("content."+name+" is a "+obj.Kind().String()+", not an object", pl, n.pMaps)
			}
			for _, m := range obj.Members() {
				if _, st := parseLevel(v, m.Value); st != valueOK {
					return reject("content."+name+"["+quote(m.Key)+"] is "+m.Value.String()+", not an integer", pl, n.pMaps)
				}
			}
		}
	}
	users := content.Get("users")
	if users.Exists() {
		if users.Kind() != cjson.Object {
			return reject("content.users is a "+users.Kind().String()+", not an object", pl, n.pUsers)
		}
		for _, m := range users.Members() {
			// Only the shape "@…:…" is checked, as the reference
			// implementation does: refusing a key it accepts (an odd server
			// name, say) would reject a power levels event the rest of the
			// room accepted, and with it every later event citing it.
			if !looksLikeUserID(m.Key) {
				return reject("content.users has a key that is not a user ID: "+quote(m.Key), pl, n.pUsers)
			}
			switch _, st := parseLevel(v, m.Value); st {
			case valueInvalid:
				return reject("content.users["+quote(m.Key)+"] is "+m.Value.String()+", not a power level", pl, n.pUsers)
			case valueOutOfRange:
				return reject("content.users["+quote(m.Key)+"] is "+m.Value.String()+", beyond the range of a double", pl, n.pUsers)
			}
		}
	}
	if v.FloatPowerLevels {
		// "Values outside the range represented by IEEE754 binary64 ... cause
		// the powerlevel event to be rejected": not a numbered sub-rule, so
		// the rejection names the power levels rule itself.
		for _, name := range propNames {
			if val := content.Get(name); val.Kind() == cjson.Number {
				if _, st := parseLevel(v, val); st == valueOutOfRange {
					return reject("content."+name+" is "+val.String()+", beyond the range of a double", pl)
				}
			}
		}
		for _, name := range [...]string{"events", "notifications"} {
			for _, m := range content.Get(name).Members() {
				if m.Value.Kind() == cjson.Number {
					if _, st := parseLevel(v, m.Value); st == valueOutOfRange {
						return reject("content."+name+"["+quote(m.Key)+"] is "+m.Value.String()+", beyond the range of a double", pl)
					}
				}
			}
		}
	}
	if v.PrivilegedCreators && create != nil && users.Kind() == cjson.Object {
		if users.Has(create.Sender()) {
			return reject("content.users lists the room creator "+create.Sender(), pl, n.pCreators)
		}
		if ac := create.Content().Get("additional_creators"); ac.Kind() == cjson.Array {
			for _, m := range ac.Elems() {
				if s, ok := m.Value.Str(); ok && users.Has(s) {
					return reject("content.users lists the room creator "+s+" (an additional creator)", pl, n.pCreators)
				}
			}
		}
	}
	return nil
}

// checkPowerLevels applies the m.room.power_levels rule (10 in v1–5 and v12,
// 9 in v6–11) to the event being authorised; sender is its sender's level.
func (c *checker) checkPowerLevels(sender level) *Rejection {
	n := &c.n
	content := c.ev.Content()
	if r := validatePowerLevels(c.v, c.n, content, c.create); r != nil {
		return r
	}
	// The previous event is the one with this event's own state key, as the
	// reference implementation looks it up: a power levels event with
	// another state key replaces nothing and is not compared.
	prev := c.pl
	if sk, _ := c.ev.StateKey(); sk != "" {
		if p := c.state.Get(typePowerLevels, sk); p != nil {
			prev = lenientPowerLevels(c.v, c.create, p)
		} else {
			return nil
		}
	}
	if !prev.hasEvent {
		return nil
	}
	old := prev.content

	for _, name := range propNames {
		ol, hasOld := validLevel(c.v, old.Get(name))
		nl, hasNew := validLevel(c.v, content.Get(name))
		if hasOld == hasNew && (!hasOld || ol.cmp(nl) == 0) {
			continue
		}
		if hasOld && ol.cmp(sender) > 0 {
			return c.reject("changing "+name+" from "+ol.String()+", which is above the sender's power level "+sender.String(), n.powerLevels, n.pAltered, 1)
		}
		if hasNew && nl.cmp(sender) > 0 {
			return c.reject("setting "+name+" to "+nl.String()+" is above the sender's power level "+sender.String(), n.powerLevels, n.pAltered, 2)
		}
	}

	mapNames := [...]string{"events", "notifications"}
	maps := mapNames[:1]
	if c.v.NotificationsPowerLevels {
		maps = mapNames[:2]
	}
	for _, name := range maps {
		if r := c.eachChange(old.Get(name), content.Get(name), func(key string, ol, _ level, hasOld, _ bool) *Rejection {
			if hasOld && ol.cmp(sender) > 0 {
				return c.reject("changing "+name+"["+quote(key)+"] from "+ol.String()+", which is above the sender's power level "+sender.String(), n.powerLevels, n.pMapOld, 1)
			}
			return nil
		}); r != nil {
			return r
		}
	}
	for _, name := range maps {
		if r := c.eachChange(old.Get(name), content.Get(name), func(key string, _, nl level, _, hasNew bool) *Rejection {
			if hasNew && nl.cmp(sender) > 0 {
				return c.reject("setting "+name+"["+quote(key)+"] to "+nl.String()+" is above the sender's power level "+sender.String(), n.powerLevels, n.pMapNew, 1)
			}
			return nil
		}); r != nil {
			return r
		}
	}

	me := c.ev.Sender()
	oldUsers, newUsers := old.Get("users"), content.Get("users")
	if r := c.eachChange(oldUsers, newUsers, func(user string, ol, _ level, hasOld, _ bool) *Rejection {
		if user != me && hasOld && ol.cmp(sender) >= 0 {
			return c.reject("changing the level of "+user+" from "+ol.String()+
				", which is not below the sender's power level "+sender.String(), n.powerLevels, n.pUserOld, 1)
		}
		return nil
	}); r != nil {
		return r
	}
	return c.eachChange(oldUsers, newUsers, func(user string, _, nl level, _, hasNew bool) *Rejection {
		if hasNew && nl.cmp(sender) > 0 {
			return c.reject("setting the level of "+user+" to "+nl.String()+" is above the sender's power level "+sender.String(),
				n.powerLevels, n.pUserNew, 1)
		}
		return nil
	})
}

// eachChange calls f for every key of the objects before and after whose
// power level was added, changed or removed (values that are not power
// levels count as absent), in key order, and stops at the first rejection.
func (c *checker) eachChange(before, after cjson.Value, f func(key string, old, new level, hasOld, hasNew bool) *Rejection) *Rejection {
	bm, am := before.Members(), after.Members()
	i, j := 0, 0
	for i < len(bm) || j < len(am) {
		var key string
		var ov, nv cjson.Value
		switch {
		case j >= len(am) || (i < len(bm) && bm[i].Key < am[j].Key):
			key, ov = bm[i].Key, bm[i].Value
			i++
		case i >= len(bm) || am[j].Key < bm[i].Key:
			key, nv = am[j].Key, am[j].Value
			j++
		default:
			key, ov, nv = bm[i].Key, bm[i].Value, am[j].Value
			i++
			j++
		}
		ol, hasOld := validLevel(c.v, ov)
		nl, hasNew := validLevel(c.v, nv)
		if hasOld == hasNew && (!hasOld || ol.cmp(nl) == 0) {
			continue
		}
		if r := f(key, ol, nl, hasOld, hasNew); r != nil {
			return r
		}
	}
	return nil
}

// looksLikeUserID is the check the reference implementation makes of
// power levels user keys: a leading '@' and a ':' after it.
func looksLikeUserID(s string) bool {
	return len(s) > 1 && s[0] == '@' && strings.IndexByte(s[1:], ':') >= 0
}
