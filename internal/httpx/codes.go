package httpx

import "net/http"

// Matrix error codes emitted by Axon (client-server API, "Standard error
// response", "Common error codes", "Other error codes").
const (
	CodeBadJSON                     = "M_BAD_JSON"
	CodeBadState                    = "M_BAD_STATE"
	CodeCannotLeaveServerNoticeRoom = "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"
	CodeExclusive                   = "M_EXCLUSIVE"
	CodeForbidden                   = "M_FORBIDDEN"
	CodeGuestAccessForbidden        = "M_GUEST_ACCESS_FORBIDDEN"
	CodeIncompatibleRoomVersion     = "M_INCOMPATIBLE_ROOM_VERSION"
	CodeInvalidParam                = "M_INVALID_PARAM"
	CodeInvalidRoomState            = "M_INVALID_ROOM_STATE"
	CodeInvalidUsername             = "M_INVALID_USERNAME"
	CodeLimitExceeded               = "M_LIMIT_EXCEEDED"
	CodeMissingParam                = "M_MISSING_PARAM"
	CodeMissingToken                = "M_MISSING_TOKEN"
	CodeNotFound                    = "M_NOT_FOUND"
	CodeNotJSON                     = "M_NOT_JSON"
	CodeResourceLimitExceeded       = "M_RESOURCE_LIMIT_EXCEEDED"
	CodeRoomInUse                   = "M_ROOM_IN_USE"
	CodeThreePIDInUse               = "M_THREEPID_IN_USE"
	CodeTooLarge                    = "M_TOO_LARGE"
	CodeUnauthorized                = "M_UNAUTHORIZED"
	CodeUnknown                     = "M_UNKNOWN"
	CodeUnknownToken                = "M_UNKNOWN_TOKEN"
	CodeUnrecognized                = "M_UNRECOGNIZED"
	CodeUnsupportedRoomVersion      = "M_UNSUPPORTED_ROOM_VERSION"
	CodeUserDeactivated             = "M_USER_DEACTIVATED"
	CodeUserInUse                   = "M_USER_IN_USE"
	CodeUserLocked                  = "M_USER_LOCKED"
	CodeUserSuspended               = "M_USER_SUSPENDED"
)

// defaultStatus is the one table mapping an error code to the HTTP status
// it is sent with unless a caller overrides it ([Error.WithStatus]). The
// spec gives most statuses per endpoint; these are the statuses its
// endpoints use for each code (e.g. 403 for M_USER_DEACTIVATED on /login,
// 400 for M_USER_IN_USE on /register, 401 for M_USER_LOCKED, 405 is only
// used for M_UNRECOGNIZED on a wrong method).
//
// It is never written after initialisation.
var defaultStatus = map[string]int{
	CodeBadJSON:                     http.StatusBadRequest,
	CodeBadState:                    http.StatusBadRequest,
	CodeCannotLeaveServerNoticeRoom: http.StatusForbidden,
	CodeExclusive:                   http.StatusBadRequest,
	CodeForbidden:                   http.StatusForbidden,
	CodeGuestAccessForbidden:        http.StatusForbidden,
	CodeIncompatibleRoomVersion:     http.StatusBadRequest,
	CodeInvalidParam:                http.StatusBadRequest,
	CodeInvalidRoomState:            http.StatusBadRequest,
	CodeInvalidUsername:             http.StatusBadRequest,
	CodeLimitExceeded:               http.StatusTooManyRequests,
	CodeMissingParam:                http.StatusBadRequest,
	CodeMissingToken:                http.StatusUnauthorized,
	CodeNotFound:                    http.StatusNotFound,
	CodeNotJSON:                     http.StatusBadRequest,
	CodeResourceLimitExceeded:       http.StatusForbidden,
	CodeRoomInUse:                   http.StatusBadRequest,
	CodeThreePIDInUse:               http.StatusBadRequest,
	CodeTooLarge:                    http.StatusRequestEntityTooLarge,
	CodeUnauthorized:                http.StatusUnauthorized,
	CodeUnknown:                     http.StatusInternalServerError,
	CodeUnknownToken:                http.StatusUnauthorized,
	CodeUnrecognized:                http.StatusNotFound,
	CodeUnsupportedRoomVersion:      http.StatusBadRequest,
	CodeUserDeactivated:             http.StatusForbidden,
	CodeUserInUse:                   http.StatusBadRequest,
	CodeUserLocked:                  http.StatusUnauthorized,
	CodeUserSuspended:               http.StatusForbidden,
}

// StatusFor returns the default HTTP status for a Matrix error code: the
// table entry, or 400 for a code this package does not know (custom,
// namespaced codes are client errors unless the caller says otherwise).
func StatusFor(code string) int {
	if s, ok := defaultStatus[code]; ok {
		return s
	}
	return http.StatusBadRequest
}
