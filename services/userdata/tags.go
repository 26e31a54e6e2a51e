package userdata

import (
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/httpx"
)

// Bounds on tags (spec "Room Tagging": a tag name is at most 255 bytes).
const (
	maxTagLength  = 255
	maxTagsOnRoom = 100
	maxTagBody    = 4 << 10
)

// tagContent is the content of an m.tag account data event. Other keys
// than "tags" are kept as they are.
type tagContent map[string]json.RawMessage

// tags returns the tags of an m.tag content; a missing or malformed
// "tags" key (set through the generic endpoint) is no tags.
func (c tagContent) tags() map[string]json.RawMessage {
	var t map[string]json.RawMessage
	if raw, ok := c["tags"]; ok {
		_ = json.Unmarshal(raw, &t)
	}
	if t == nil {
		t = map[string]json.RawMessage{}
	}
	return t
}

func parseTagContent(b []byte) tagContent {
	var c tagContent
	if len(b) > 0 {
		_ = json.Unmarshal(b, &c)
	}
	if c == nil {
		c = tagContent{}
	}
	return c
}

// tagParams validates the path of a tags request.
func tagParams(r *http.Request, d Device, what string, withTag bool) (userID, roomID, tag string, err error) {
	userID = r.PathValue("userId")
	if err = requireSelf(d, userID, what); err != nil {
		return
	}
	if roomID, err = roomIDParam(r); err != nil {
		return
	}
	if withTag {
		tag = r.PathValue("tag")
		if tag == "" || len(tag) > maxTagLength || !utf8.ValidString(tag) {
			err = httpx.InvalidParam(fmt.Sprintf("A tag must be 1 to %d bytes of UTF-8", maxTagLength))
		}
	}
	return
}

func (s *Service) getTags(w http.ResponseWriter, r *http.Request, d Device) error {
	userID, roomID, _, err := tagParams(r, d, "read the tags of", false)
	if err != nil {
		return err
	}
	content, err := s.accountData(r.Context(), userID, roomID, "m.tag")
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"tags": parseTagContent(content).tags()})
}

func (s *Service) putTag(w http.ResponseWriter, r *http.Request, d Device) error {
	userID, roomID, tag, err := tagParams(r, d, "add tags for", true)
	if err != nil {
		return err
	}
	body, err := readObject(r, maxTagBody)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return httpx.BadJSON("The tag must be a JSON object")
	}
	if order, ok := fields["order"]; ok {
		var f float64
		if err := json.Unmarshal(order, &f); err != nil {
			return httpx.BadJSON("The tag's order must be a number")
		}
	}
	if err := s.requireJoined(r, roomID, userID); err != nil {
		return err
	}
	changed, err := s.updateAccountData(r.Context(), userID, roomID, "m.tag", func(old []byte) ([]byte, error) {
		c := parseTagContent(old)
		tags := c.tags()
		if _, exists := tags[tag]; !exists && len(tags) >= maxTagsOnRoom {
			return nil, httpx.InvalidParam(fmt.Sprintf("A room can have at most %d tags", maxTagsOnRoom))
		}
		tags[tag] = body
		return c.with(tags)
	})
	if err != nil {
		return err
	}
	if changed {
		s.wake([]string{userID}, nil)
	}
	return writeEmpty(w)
}

func (s *Service) deleteTag(w http.ResponseWriter, r *http.Request, d Device) error {
	userID, roomID, tag, err := tagParams(r, d, "remove tags of", true)
	if err != nil {
		return err
	}
	changed, err := s.updateAccountData(r.Context(), userID, roomID, "m.tag", func(old []byte) ([]byte, error) {
		c := parseTagContent(old)
		tags := c.tags()
		if _, ok := tags[tag]; !ok {
			return nil, nil // nothing to remove: no change
		}
		delete(tags, tag)
		return c.with(tags)
	})
	if err != nil {
		return err
	}
	if changed {
		s.wake([]string{userID}, nil)
	}
	return writeEmpty(w)
}

// with returns the content with its tags replaced, encoded.
func (c tagContent) with(tags map[string]json.RawMessage) ([]byte, error) {
	t, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	c["tags"] = t
	return json.Marshal(c)
}
