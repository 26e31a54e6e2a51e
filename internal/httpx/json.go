package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// DefaultBodyLimit bounds a JSON request body when DecodeJSON is given no
// limit, and is a sensible [BodyLimit] for non-media routes. Matrix events
// are at most 64 KiB; the slack is for batch endpoints (keys, to-device).
const DefaultBodyLimit = 1 << 20

// WriteJSON writes v as a JSON response with the given status and
// Content-Type application/json. HTML characters are not escaped. v is
// encoded before anything is written, so an encoding failure returns an
// error (for [Handle] to turn into a 500) instead of a half-written body.
//
// A v that is an [Appender] encodes itself.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	var b []byte
	if a, ok := v.(Appender); ok {
		var err error
		if b, err = a.AppendJSON(make([]byte, 0, 4096)); err != nil {
			return fmt.Errorf("httpx: encode response: %w", err)
		}
	} else {
		var err error
		if b, err = MarshalNoEscape(v); err != nil {
			return fmt.Errorf("httpx: encode response: %w", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

// Appender is a response body that encodes itself, for large responses
// made mostly of JSON encoded already (a /sync response's events):
// encoding/json validates and compacts again whatever a MarshalJSON
// method returns, a second pass over every byte. AppendJSON must append
// valid JSON to b.
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// MarshalNoEscape is json.Marshal without the escaping of HTML
// characters, as WriteJSON writes.
func MarshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeJSON reads r's body, at most limit bytes (DefaultBodyLimit if
// limit <= 0), and decodes it into v. The body must be a single JSON
// object in UTF-8; unknown fields are ignored, since clients send extras.
//
// The returned error is an *Error ready to be returned from a handler:
//
//   - M_TOO_LARGE (413) if the body is longer than the limit (also when a
//     [BodyLimit] middleware's smaller limit is hit first);
//   - M_NOT_JSON if the body is empty, is not valid JSON or UTF-8, or has
//     anything but whitespace after the value;
//   - M_BAD_JSON if it is valid JSON of the wrong shape (not an object, a
//     field of the wrong type, or an UnmarshalJSON method that refused it).
//     An *Error returned by an UnmarshalJSON method is passed through.
func DecodeJSON(r *http.Request, limit int64, v any) error {
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	if r.Body == nil || r.Body == http.NoBody {
		return NotJSON("Request body is empty; expected a JSON object")
	}
	// A nil ResponseWriter is allowed by MaxBytesReader; it only uses it to
	// ask the server to close the connection after an oversized body.
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return TooLarge(fmt.Sprintf("Request body is larger than %d bytes", limit)).WithCause(err)
		}
		return NotJSON("Could not read request body").WithCause(err)
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return NotJSON("Request body is empty; expected a JSON object")
	}
	if !utf8.Valid(body) {
		return NotJSON("Request body is not valid UTF-8")
	}
	if !json.Valid(body) {
		// json.Valid rejects trailing data too; find out which to say.
		dec := json.NewDecoder(bytes.NewReader(body))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return NotJSON("Request body is not valid JSON: " + describeSyntax(err)).WithCause(err)
		}
		return NotJSON(fmt.Sprintf("Unexpected data after the JSON value at offset %d", dec.InputOffset()))
	}
	if trimmed[0] != '{' {
		return BadJSON("Request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		if e, ok := errors.AsType[*Error](err); ok {
			return e
		}
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			where := te.Field
			if where == "" {
				where = "value"
			} else {
				where = "field '" + where + "'"
			}
			return BadJSON(fmt.Sprintf("Invalid type for %s: expected %s, got JSON %s", where, te.Type, te.Value)).WithCause(err)
		}
		if _, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
			// A programming error in the caller, not bad input.
			return fmt.Errorf("httpx: decode request: %w", err)
		}
		return BadJSON("Invalid request body: " + err.Error()).WithCause(err)
	}
	return nil
}

func describeSyntax(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("%s (offset %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}
