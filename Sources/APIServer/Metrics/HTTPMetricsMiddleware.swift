import Dispatch
import Hummingbird
import Metrics

/// Hummingbird's ``MetricsMiddleware`` with HEAD requests counted once they are answered.
///
/// The library counts a request and lowers `http_server_active_requests` in a closure that runs
/// after the response body is written; a HEAD answer has no body written, so the closure never
/// ran: every `curl -I` raised the gauge for good and was never counted in `hb_requests`. HEAD
/// is therefore recorded here when its handler returns, into the same series (swift-metrics hands
/// back one series per label and dimensions); every other method goes through the library.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let library = MetricsMiddleware<Context>()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .head else { return try await library.handle(request, context: context, next: next) }
        let start = DispatchTime.now().uptimeNanoseconds
        let status: HTTPResponse.Status
        let response: Response
        do {
            response = try await next(request, context)
            status = response.status
        } catch {
            let failed = (error as? any HTTPResponseError)?.status ?? .internalServerError
            Self.record(route: context.endpointPath ?? "NotFound", status: failed, since: start)
            Counter(label: "hb.request.errors", dimensions: Self.dimensions(context.endpointPath ?? "NotFound", failed, errorKey: true))
                .increment()
            throw error
        }
        Self.record(route: context.endpointPath ?? "Unknown", status: status, since: start)
        return response
    }

    private static func record(route: String, status: HTTPResponse.Status, since start: UInt64) {
        let dimensions = Self.dimensions(route, status, errorKey: false)
        Counter(label: "hb.requests", dimensions: dimensions).increment()
        Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
            .recordNanoseconds(DispatchTime.now().uptimeNanoseconds - start)
    }

    /// The library's dimensions for a HEAD answer (its errors name the status `error.type`).
    private static func dimensions(_ route: String, _ status: HTTPResponse.Status, errorKey: Bool) -> [(String, String)] {
        [("http.route", route), ("http.request.method", "HEAD"),
         (errorKey ? "error.type" : "http.response.status_code", status.code.description)]
    }
}
