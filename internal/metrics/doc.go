// Package metrics is Axon's Prometheus plumbing: the per-process registry,
// the /metrics handler, HTTP server instrumentation, and [Names], which
// lists what a registry exports so that dashboards and alert rules can be
// tested against it.
//
// # What it owns
//
//   - [NewRegistry]: the one *prometheus.Registry of a process, with the Go
//     runtime and process collectors. It is created in main and passed to
//     every constructor that has metrics (as a prometheus.Registerer);
//     nothing registers on prometheus.DefaultRegisterer.
//   - [Handler]: the scrape endpoint, bounded in concurrency and time, that
//     logs (and counts) collection errors instead of failing the scrape.
//   - [HTTP]: request count, latency and concurrency per listener and
//     route. The route label is the http.ServeMux pattern that matched
//     ("GET /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"),
//     never the raw path, so its cardinality is bounded by the routes the
//     code registers; requests that matched no pattern (404, 405, and those
//     answered by middleware before routing, such as CORS preflights, rate
//     limiting or body limits) are labelled "unmatched". Methods other than
//     the standard ones are labelled "other". See [CaptureRoute] for how the
//     pattern reaches the middleware.
//
// # Metric names
//
// Metric names and labels are a public contract: dashboards, alert rules
// and runbooks refer to them, and tests check those references against
// what the code registers (see [Names]). Names follow
// axon_<area>_<thing>_<unit>; counters end in _total. Renaming one is a
// breaking change for operators.
//
// Registered by [NewHTTP] (one set per registry, shared by listeners):
//
//   - axon_http_requests_total{listener, method, route, code} counter:
//     requests completed, by final status code.
//   - axon_http_request_duration_seconds{listener, method, route}
//     histogram: time from the middleware receiving the request to the
//     handler returning. Buckets run from 1 ms to 60 s ([DurationBuckets])
//     so that a long-polling /sync (clients commonly wait 30 s) falls
//     inside the range; latency SLOs should exclude the long-poll routes.
//   - axon_http_requests_in_flight{listener} gauge: requests being served,
//     including long-polls.
//
// Registered by [NewRegistry]: the go_* and process_* families of
// client_golang's Go and process collectors. Registered by [Handler]:
// promhttp_metric_handler_errors_total{cause}.
//
// Other packages register their own axon_<area>_* metrics through the
// Registerer they are given, and list them in their own package docs.
//
// # What it must never do
//
//   - Use the global registry, promauto's default registerer, or any other
//     package-level state: two servers in one test process must not share
//     metrics.
//   - Put unbounded values in labels: no raw paths, user IDs, room IDs,
//     server names or client-chosen methods.
//   - Know about Matrix: it instruments HTTP, it does not interpret it. It
//     does not import services/.
package metrics
