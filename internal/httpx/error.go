package httpx

import (
	"errors"
	"net/http"
	"time"
)

// Error is a Matrix standard error response. Handlers return it (possibly
// wrapped); [Handle] writes it as
//
//	{"errcode": Code, "error": Message, ...Extra}
//
// with status Status. Message is sent to the client and must not contain
// internal detail; Err is the underlying cause, logged but never sent.
// RetryAfter, if positive, is sent as a Retry-After header (and as
// retry_after_ms for M_LIMIT_EXCEEDED).
type Error struct {
	Status     int
	Code       string
	Message    string
	Extra      map[string]any
	RetryAfter time.Duration
	Err        error
}

// Error implements error. It includes the cause, so it is for logs, not
// for clients.
func (e *Error) Error() string {
	s := e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with the given code, message and the code's default
// status ([StatusFor]).
func New(code, message string) *Error {
	return &Error{Status: StatusFor(code), Code: code, Message: message}
}

func (e *Error) clone() *Error {
	c := *e
	if e.Extra != nil {
		c.Extra = make(map[string]any, len(e.Extra))
		for k, v := range e.Extra {
			c.Extra[k] = v
		}
	}
	return &c
}

// WithStatus returns a copy of e sent with the given HTTP status, for
// endpoints whose spec says a different status for the code.
func (e *Error) WithStatus(status int) *Error {
	c := e.clone()
	c.Status = status
	return c
}

// WithCause returns a copy of e that wraps err. The cause is logged and
// visible to errors.Is/As, never sent to the client.
func (e *Error) WithCause(err error) *Error {
	c := e.clone()
	c.Err = err
	return c
}

// WithExtra returns a copy of e with an extra top-level key in the body.
// The keys "errcode" and "error" cannot be overridden.
func (e *Error) WithExtra(key string, value any) *Error {
	c := e.clone()
	if c.Extra == nil {
		c.Extra = make(map[string]any, 1)
	}
	c.Extra[key] = value
	return c
}

// CodeOf returns the Matrix error code of err, or "" if err is not (and
// does not wrap) an *Error.
func CodeOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ""
}

// Constructors, one per code. Messages are for humans and are sent to the
// client.

// Forbidden is 403 M_FORBIDDEN.
func Forbidden(msg string) *Error { return New(CodeForbidden, msg) }

// UnknownToken is 401 M_UNKNOWN_TOKEN. softLogout tells the client it may
// log in again keeping its device and keys (spec "Soft logout").
func UnknownToken(msg string, softLogout bool) *Error {
	return &Error{Status: StatusFor(CodeUnknownToken), Code: CodeUnknownToken, Message: msg,
		Extra: map[string]any{"soft_logout": softLogout}}
}

// MissingToken is 401 M_MISSING_TOKEN.
func MissingToken(msg string) *Error { return New(CodeMissingToken, msg) }

// BadJSON is 400 M_BAD_JSON: valid JSON of the wrong shape.
func BadJSON(msg string) *Error { return New(CodeBadJSON, msg) }

// NotJSON is 400 M_NOT_JSON: the body is not valid JSON.
func NotJSON(msg string) *Error { return New(CodeNotJSON, msg) }

// NotFound is 404 M_NOT_FOUND.
func NotFound(msg string) *Error { return New(CodeNotFound, msg) }

// LimitExceeded is 429 M_LIMIT_EXCEEDED. If retryAfter is positive the
// response carries Retry-After (whole seconds, rounded up) and the
// deprecated retry_after_ms.
func LimitExceeded(msg string, retryAfter time.Duration) *Error {
	e := New(CodeLimitExceeded, msg)
	e.RetryAfter = retryAfter
	return e
}

// Unknown is 500 M_UNKNOWN. Use [Error.WithStatus] for the spec's other
// M_UNKNOWN statuses.
func Unknown(msg string) *Error { return New(CodeUnknown, msg) }

// Unrecognized is 404 M_UNRECOGNIZED: the server does not know the endpoint.
func Unrecognized(msg string) *Error { return New(CodeUnrecognized, msg) }

// UnrecognizedMethod is 405 M_UNRECOGNIZED: the endpoint exists but not
// with this method.
func UnrecognizedMethod(msg string) *Error {
	return New(CodeUnrecognized, msg).WithStatus(http.StatusMethodNotAllowed)
}

// Unauthorized is 401 M_UNAUTHORIZED.
func Unauthorized(msg string) *Error { return New(CodeUnauthorized, msg) }

// UserDeactivated is 403 M_USER_DEACTIVATED.
func UserDeactivated(msg string) *Error { return New(CodeUserDeactivated, msg) }

// UserInUse is 400 M_USER_IN_USE.
func UserInUse(msg string) *Error { return New(CodeUserInUse, msg) }

// InvalidUsername is 400 M_INVALID_USERNAME.
func InvalidUsername(msg string) *Error { return New(CodeInvalidUsername, msg) }

// RoomInUse is 400 M_ROOM_IN_USE.
func RoomInUse(msg string) *Error { return New(CodeRoomInUse, msg) }

// InvalidRoomState is 400 M_INVALID_ROOM_STATE.
func InvalidRoomState(msg string) *Error { return New(CodeInvalidRoomState, msg) }

// ThreePIDInUse is 400 M_THREEPID_IN_USE.
func ThreePIDInUse(msg string) *Error { return New(CodeThreePIDInUse, msg) }

// UnsupportedRoomVersion is 400 M_UNSUPPORTED_ROOM_VERSION.
func UnsupportedRoomVersion(msg string) *Error { return New(CodeUnsupportedRoomVersion, msg) }

// IncompatibleRoomVersion is 400 M_INCOMPATIBLE_ROOM_VERSION with the
// room's version in room_version.
func IncompatibleRoomVersion(msg, roomVersion string) *Error {
	return New(CodeIncompatibleRoomVersion, msg).WithExtra("room_version", roomVersion)
}

// BadState is 400 M_BAD_STATE.
func BadState(msg string) *Error { return New(CodeBadState, msg) }

// GuestAccessForbidden is 403 M_GUEST_ACCESS_FORBIDDEN.
func GuestAccessForbidden(msg string) *Error { return New(CodeGuestAccessForbidden, msg) }

// MissingParam is 400 M_MISSING_PARAM.
func MissingParam(msg string) *Error { return New(CodeMissingParam, msg) }

// InvalidParam is 400 M_INVALID_PARAM.
func InvalidParam(msg string) *Error { return New(CodeInvalidParam, msg) }

// TooLarge is 413 M_TOO_LARGE.
func TooLarge(msg string) *Error { return New(CodeTooLarge, msg) }

// Exclusive is 400 M_EXCLUSIVE.
func Exclusive(msg string) *Error { return New(CodeExclusive, msg) }

// ResourceLimitExceeded is 403 M_RESOURCE_LIMIT_EXCEEDED. The spec
// requires admin_contact; limitType (e.g. "monthly_active_user") is added
// as limit_type when non-empty.
func ResourceLimitExceeded(msg, adminContact, limitType string) *Error {
	e := New(CodeResourceLimitExceeded, msg).WithExtra("admin_contact", adminContact)
	if limitType != "" {
		e.Extra["limit_type"] = limitType
	}
	return e
}

// CannotLeaveServerNoticeRoom is 403 M_CANNOT_LEAVE_SERVER_NOTICE_ROOM.
func CannotLeaveServerNoticeRoom(msg string) *Error {
	return New(CodeCannotLeaveServerNoticeRoom, msg)
}

// UserLocked is 401 M_USER_LOCKED with soft_logout true, as the spec's
// "Account locking" requires.
func UserLocked(msg string) *Error {
	return New(CodeUserLocked, msg).WithExtra("soft_logout", true)
}

// UserSuspended is 403 M_USER_SUSPENDED.
func UserSuspended(msg string) *Error { return New(CodeUserSuspended, msg) }
