import Dispatch
import Synchronization
import Hummingbird
import Metrics

/// The server's own HTTP series, under Hummingbird 2's names and labels (`hb.requests`,
/// `http.server.request.duration`, `http.server.active_requests`, `hb.request.errors`), recorded
/// for the answer the client got.
///
/// Hummingbird's ``MetricsMiddleware`` did not fit this server in three ways, so the series are
/// recorded here instead:
/// - It counts an error only when one is thrown past it, and ``APIErrorMiddleware`` turns every
///   error into a response first; the library also makes its error counter beside every request
///   counter, labelled with the response status. So `hb_request_errors` held one series per
///   answer — `error_type="200"`, `"204"` — and all stayed 0 after 400, 404, 413 or 499 answers.
///   Here every 4xx and 5xx answer counts once in it, `error_type` being its status, and no
///   series exists for a success.
/// - A known path asked with a method it does not take (OPTIONS → 204, GET on a POST route →
///   405) matched no route, so it was labelled `http_route="NotFound"` like an unknown path; it
///   is labelled with its route's path (``RouteMethods/route(_:)``).
/// - A HEAD answer has no body written, and the library counted a request (and lowered
///   `http_server_active_requests`) only after the body's write: every `curl -I` raised the gauge
///   for good and was never counted. HEAD is recorded when its handler returns.
///
/// - A request head that did not parse is answered before any route runs
///   (``HeadParseErrorAnswer``), so it passed no middleware and was never counted. It is counted
///   in `hb.requests` and `hb.request.errors` under `http_route="MalformedRequest"`,
///   `http_request_method="_OTHER"` and its status (400 or 431); it is not timed (its head never
///   arrived whole, so there is no start to time from). A connection past the cap
///   (``ConnectionLimit``), answered 503 before any request of its is read, is counted so too,
///   under `http_route="TooManyConnections"`.
///
/// Every other answer is recorded once its body is written (or its write failed: a client that
/// left), as the library did, so a stream's duration is the whole stream's.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The routes' paths, for requests that reached no route; nil labels them all `NotFound`.
    var routes: RouteMethods?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let method = request.method
        let label = HTTPAnswerMetrics.methodLabel(method.rawValue)
        let active = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", label)])
        active.increment()
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Only what escapes the error middleware (nothing, by design): its status, else a 500.
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            Self.record(route: routeLabel(request, context), method: label, status: status, since: start)
            active.decrement()
            throw error
        }
        let status = response.status
        let route = routeLabel(request, context)
        guard method != .head else {
            Self.record(route: route, method: label, status: status, since: start)
            active.decrement()
            return response
        }
        let body = response.body
        let answer = PendingAnswer { Self.record(route: route, method: label, status: status, since: start); active.decrement() }
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer { answer.recordOnce() }
            try await body.write(writer)
        }
        return response
    }

    /// An answer's bookkeeping, done once: when its body has been written (or its write failed),
    /// else when the answer is dropped unwritten. A client that reset its connection before the
    /// answer's head went out (a whole completion cancelled by a reset: its 499) never had the
    /// body written, so the answer was never counted and `http_server_active_requests` stayed
    /// one higher for good.
    final class PendingAnswer: Sendable {
        private let done = Atomic<Bool>(false)
        private let work: @Sendable () -> Void

        init(_ work: @escaping @Sendable () -> Void) { self.work = work }

        func recordOnce() {
            guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
            work()
        }

        deinit { recordOnce() }
    }

    /// The matched route's path; for a request no route took, the path of a route at its path
    /// (another method), else `NotFound`. The target `*` is labelled `*`: `OPTIONS *` is served
    /// (the server as a whole) and was filed under `NotFound` beside unknown paths, and any other
    /// method with it is the 400 of a malformed target, not a missing route.
    private func routeLabel(_ request: Request, _ context: Context) -> String {
        if request.uri.path == HTTPAnswerMetrics.asteriskRoute { return HTTPAnswerMetrics.asteriskRoute }
        if let matched = context.endpointPath, matched != "NotFound" { return matched }
        return routes?.route(request.uri.path) ?? "NotFound"
    }

    /// One answer: counted, timed, and counted as an error when its status is 4xx or 5xx.
    private static func record(route: String, method: String, status: HTTPResponse.Status, since start: UInt64) {
        HTTPAnswerMetrics.record(route: route, method: method, status: status,
                                 nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
    }
}

/// The series one HTTP answer adds, for the middleware and for answers given before any route
/// runs (``HeadParseErrorAnswer``).
enum HTTPAnswerMetrics {
    /// `http_route` of an answer to a head that did not parse: it names no route, and `NotFound`
    /// would read as a 404.
    static let malformedRoute = "MalformedRequest"
    /// `http_route` of a request whose target is `*` (asterisk form, RFC 9112 §3.2.4).
    static let asteriskRoute = "*"
    /// `http_route` of the 503 a connection past the cap gets (``ConnectionLimit``): it is
    /// answered before any request of its is read, so it names no route.
    static let refusedConnectionRoute = "TooManyConnections"
    /// `http_request_method` when the head did not parse (OpenTelemetry's name for a method
    /// that is not known).
    static let unknownMethod = "_OTHER"
    /// The methods labelled as sent (OpenTelemetry's list for `http.request.method`).
    static let standardMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

    /// `http_request_method` of an answer: the method as sent if standard, else `_OTHER`. Every
    /// series takes it from here: the routing middleware labelled `PROPFIND` as sent while the
    /// head check (``RequestHeadCheck``) said `_OTHER`; and a label per method a client cares to
    /// send (NIO parses some thirty) added each a counter, an error counter and a histogram's
    /// seventeen series.
    static func methodLabel(_ method: String) -> String {
        standardMethods.contains(method) ? method : unknownMethod
    }

    /// Counts the answer in `hb.requests` (and in `hb.request.errors` when its status is 4xx or
    /// 5xx); times it when `nanoseconds` is known.
    static func record(route: String, method: String, status: HTTPResponse.Status, nanoseconds: UInt64?) {
        let dimensions = [("http.route", route), ("http.request.method", method),
                          ("http.response.status_code", status.code.description)]
        Counter(label: "hb.requests", dimensions: dimensions).increment()
        if let nanoseconds {
            Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
                .recordNanoseconds(nanoseconds)
        }
        if status.code >= 400 {
            Counter(label: "hb.request.errors", dimensions: [("http.route", route), ("http.request.method", method),
                                                             ("error.type", status.code.description)])
                .increment()
        }
    }
}
