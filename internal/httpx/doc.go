// Package httpx is the HTTP plumbing shared by every Axon API handler: the
// Matrix standard error response, JSON request decoding and response
// encoding, and the middleware that every listener wraps its routes in.
//
// # What it owns
//
//   - [Error], the one error type a handler returns to produce a Matrix
//     "standard error response" ({"errcode": …, "error": …} plus extra
//     keys). Every Matrix error code this server emits and its default HTTP
//     status are defined once, in the table in codes.go; the constructors
//     ([Forbidden], [UnknownToken], [LimitExceeded], …) read from it.
//   - [Handle], which adapts a [HandlerFunc] (a handler that returns an
//     error) to an [http.Handler]. It is the only place that turns an error
//     into a response. An error that is not an [*Error] becomes a 500
//     M_UNKNOWN whose body never contains the error text; the error is
//     logged with the request ID instead, and the request ID is put in the
//     body so an operator can find the log line.
//   - [WriteJSON] and [DecodeJSON]: bounded, strict-enough JSON in and out
//     (M_NOT_JSON, M_BAD_JSON, M_TOO_LARGE as the spec says).
//   - Middleware: [RequestID], [AccessLog], [Recover], [CORS], [BodyLimit],
//     [InFlight] (a bound on concurrent requests, answering 503 at once),
//     composed with [Chain], and [WrapMux], which makes an
//     [http.ServeMux] answer unknown endpoints with 404 M_UNRECOGNIZED and
//     wrong methods with 405 M_UNRECOGNIZED.
//
// A typical listener:
//
//	mux := http.NewServeMux()
//	mux.Handle("GET /_matrix/client/v3/account/whoami", httpx.Handle(whoami))
//	h := httpx.Chain(
//		httpx.RequestID,
//		httpx.AccessLog(logger),
//		httpx.Recover(logger),
//		httpx.CORS,
//		httpx.BodyLimit(httpx.DefaultBodyLimit),
//	)(httpx.WrapMux(mux))
//
// # What it must never do
//
//   - Contain business logic: it knows Matrix's error envelope and HTTP, not
//     rooms, users or tokens. (It never validates an access token; it only
//     makes sure one is never logged.)
//   - Hold global state: no package-level loggers, registries or mutable
//     variables. Loggers are passed in; per-request data travels in the
//     request context under unexported key types.
//   - Log secrets: access tokens (query string or Authorization header),
//     passwords and request or response bodies are never logged. The access
//     log records the method, route pattern, path (without its query),
//     status, size, duration and request ID only.
//   - Leak internal error text to clients.
//   - Import anything from services/.
package httpx
