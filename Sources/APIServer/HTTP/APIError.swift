import Foundation
import Hummingbird
import PodModel
import ServingEngine

/// An error as a client sees it: a status and OpenAI's error body,
/// `{"error": {"message", "type", "param", "code"}}`.
///
/// Every failure the server reports goes through this type, on every route (admin included), so
/// clients parse one shape and no Swift error description ever leaks into a response.
struct APIError: Error, Sendable, Equatable {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?

    static func invalidRequest(_ message: String, param: String?, code: String? = nil) -> APIError {
        APIError(
            status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// An option the simulated engine cannot honour (OpenAI's `unsupported_parameter`): refused
    /// rather than answered without what it asked for.
    static func unsupported(_ message: String, param: String) -> APIError {
        invalidRequest(message, param: param, code: "unsupported_parameter")
    }

    static func modelNotFound(_ model: String) -> APIError {
        APIError(
            status: .notFound, message: "The model \(InputEcho.quoted(model)) does not exist", type: "invalid_request_error",
            param: "model", code: "model_not_found")
    }

    static func bodyTooLarge(limitBytes: Int) -> APIError {
        APIError(
            status: .contentTooLarge, message: "request body exceeds \(limitBytes) bytes",
            type: "invalid_request_error", param: nil, code: "request_too_large")
    }

    /// The body's HTTP framing did not parse (e.g. a chunk size that is not hexadecimal).
    static let malformedBody = APIError(
        status: .badRequest, message: "the request body is malformed: its chunked encoding or length does not parse",
        type: "invalid_request_error", param: nil, code: "malformed_body")

    /// A body sent with a content coding (`Content-Encoding: gzip`, …): bodies are read as sent, so
    /// a compressed one would be judged "not valid JSON". RFC 9110 §15.5.16: 415, with
    /// `Accept-Encoding` naming the codings taken (identity alone).
    static func unsupportedContentEncoding(_ coding: String) -> APIError {
        APIError(
            status: .unsupportedMediaType,
            message: "Content-Encoding \(InputEcho.quoted(coding)) is not supported; send the body uncompressed (identity)",
            type: "invalid_request_error", param: nil, code: "unsupported_content_encoding")
    }

    /// A body declared in a charset other than UTF-8 (`Content-Type: application/json;
    /// charset=utf-16`): JSON is UTF-8 (RFC 8259 §8.1), and the body is read as such, so another
    /// charset is refused rather than misread. 415, as RFC 9110 §15.5.16 gives for a body in a
    /// form the route does not take.
    static func unsupportedCharset(_ charset: String) -> APIError {
        APIError(
            status: .unsupportedMediaType,
            message: "charset \(InputEcho.quoted(charset)) is not supported; send the JSON body as UTF-8 "
                + "(Content-Type: application/json; charset=utf-8, or no charset)",
            type: "invalid_request_error", param: nil, code: "unsupported_charset")
    }

    /// The client began a request and did not send the rest in time (``APIServer/ReadTimeouts``);
    /// the connection closes after this answer.
    static func requestTimeout(_ message: String) -> APIError {
        APIError(status: .requestTimeout, message: message, type: "invalid_request_error", param: nil, code: "request_timeout")
    }

    static let unauthorized = APIError(
        status: .unauthorized, message: "missing or wrong admin token (send 'Authorization: Bearer TOKEN')",
        type: "authentication_error", param: nil, code: "invalid_token")

    static func methodNotAllowed(_ method: HTTPRequest.Method, _ path: String, allow: String) -> APIError {
        APIError(
            status: .methodNotAllowed, message: "\(path) does not take \(method); it takes \(allow)",
            type: "invalid_request_error", param: nil, code: "method_not_allowed")
    }

    /// A request with the target `*` and a method other than OPTIONS, the only one it is valid
    /// for (RFC 9112 §3.2.4).
    static func asteriskTarget(_ method: HTTPRequest.Method) -> APIError {
        invalidRequest("only OPTIONS takes the request target * (RFC 9112 §3.2.4); \(method) needs a path, such as /v1/models",
                       param: nil, code: "invalid_request_target")
    }

    static func routeNotFound(_ method: HTTPRequest.Method, _ path: String) -> APIError {
        APIError(
            status: .notFound, message: "no route for \(method) \(path)", type: "invalid_request_error",
            param: nil,
            code: "not_found")
    }

    /// The request's task was cancelled because its client hung up (or the server is stopping):
    /// nobody reads this answer, but the HTTP metrics see its status. nginx's 499 "client closed
    /// request", not a 500: a client that leaves is not a server error.
    static let clientClosedRequest = APIError(
        status: .init(code: 499, reasonPhrase: "Client Closed Request"), message: "client closed the request",
        type: "invalid_request_error", param: nil, code: "client_closed_request")

    /// A completion under way when the server began to stop: its request was cancelled in the
    /// engine. 503, as for any request a stopping server cannot serve.
    static let serverStopping = APIError(
        status: .serviceUnavailable, message: "the server is shutting down; the request was cancelled",
        type: "service_unavailable_error", param: nil, code: "server_shutting_down")

    static let internalError = APIError(
        status: .internalServerError, message: "internal server error", type: "server_error", param: nil,
        code: nil)

    /// The engine refused or lost the request. 429 = overloaded (retry later), 503 = cannot serve.
    static func engine(reason: String, status: Int) -> APIError {
        switch status {
        case 429:
            APIError(
                status: .tooManyRequests, message: reason, type: "rate_limit_error", param: nil,
                code: "rate_limit_exceeded")
        case 400..<500:
            APIError(
                status: .init(code: status), message: reason, type: "invalid_request_error", param: nil,
                code: nil)
        default:
            APIError(
                status: .serviceUnavailable, message: reason, type: "service_unavailable_error", param: nil,
                code: "service_unavailable")
        }
    }

    /// The JSON body; `param` and `code` are `null` when absent, as OpenAI does.
    var json: String { JSONWire.string(self) }

    var response: Response {
        var response = JSONWire.response(json: json, status: status)
        // After a body that does not parse, the connection's framing is lost: close it.
        if code == "malformed_body" { response.headers[.connection] = "close" }
        if status == .tooManyRequests { response.headers[.retryAfter] = String(Self.retryAfterSeconds) }
        if code == "unsupported_content_encoding" { response.headers[.acceptEncoding] = "identity" }
        return response
    }

    /// `Retry-After` of a 429 (RFC 9110 §10.2.3, whole seconds), which clients such as the openai
    /// package's retry loop honour: the engine refuses while its queues are full, and a decode
    /// step frees places every few tens of milliseconds, so a second is a fair wait without
    /// stalling a benchmark.
    static let retryAfterSeconds = 1
}

/// OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`.
extension APIError: Encodable {
    private enum BodyKeys: String, CodingKey { case error }

    func encode(to encoder: any Encoder) throws {
        var body = encoder.container(keyedBy: BodyKeys.self)
        try body.encode(detail, forKey: .error)
    }

    /// The object under `"error"`, for bodies that carry it beside their own keys
    /// (`POST /admin/commands`: `{"accepted": false, "message", "error": {…}}`).
    var detail: Detail { Detail(error: self) }

    struct Detail: Encodable {
        let error: APIError
        private enum Keys: String, CodingKey { case message, type, param, code }

        func encode(to encoder: any Encoder) throws {
            var detail = encoder.container(keyedBy: Keys.self)
            try detail.encode(error.message, forKey: .message)
            try detail.encode(error.type, forKey: .type)
            try detail.encodeOrNull(error.param, forKey: .param)
            try detail.encodeOrNull(error.code, forKey: .code)
        }
    }
}

/// JSON out: the server's one writer, Foundation's `JSONEncoder` in the project's one
/// configuration (``JSONOutput``: keys sorted, so the same body is the same bytes every run;
/// clients read keys by name).
enum JSONWire {
    /// Shared by every route and stream: `encode` does not change the encoder, and `JSONEncoder`
    /// is `Sendable` in Swift 6's Foundation (the compiler checks this `static let`).
    static let encoder = JSONOutput.encoder()

    static func data(_ value: some Encodable) -> Data {
        // Our own value types always encode; a failure would be a programming error, and the
        // client still gets valid JSON rather than a crash.
        (try? encoder.encode(value)) ?? Data(#"{"error":{"message":"encoding failed"}}"#.utf8)
    }

    static func string(_ value: some Encodable) -> String { String(decoding: data(value), as: UTF8.self) }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        response(json: string(value), status: status)
    }

    /// A body already rendered as JSON text.
    static func response(json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

extension KeyedEncodingContainer {
    /// `null` for nil rather than leaving the key out: OpenAI writes `finish_reason`, `logprobs`,
    /// `param` and `code` as `null`, and some clients index them.
    mutating func encodeOrNull(_ value: String?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}

/// Turns whatever a route throws into the OpenAI error shape, and unknown paths into a JSON 404;
/// a known path asked with a method it does not take gets 405 with `Allow`, and `OPTIONS` on a
/// known path (or `OPTIONS *`) 204 with `Allow` (``RouteMethods``).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The routes' methods; nil: every unmatched request is a 404.
    var routes: RouteMethods?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch is CancellationError {
            return APIError.clientClosedRequest.response
        } catch let error as HTTPError where error.status == .notFound {
            // `OPTIONS *` asks about the server, not a resource (RFC 9110 §9.3.7): answered as
            // OPTIONS on a path is, with every method some route takes. It was a 404, saying to a
            // client probing the server that there was nothing there.
            if request.method == .options, request.uri.path == "*", let routes {
                return Response(status: .noContent, headers: [.allow: RouteMethods.header(routes.all())])
            }
            // The asterisk form is valid only for OPTIONS (RFC 9112 §3.2.4): `GET *` names no
            // resource, so it is a malformed request (400), not a resource that is missing (404).
            if request.uri.path == "*" { return APIError.asteriskTarget(request.method).response }
            // A route's own 404 (an unknown request id) comes with a method the route takes: kept.
            if let allowed = routes?.allowed(request.uri.path), !allowed.contains(request.method) || request.method == .options {
                let allow = RouteMethods.header(allowed)
                if request.method == .options { return Response(status: .noContent, headers: [.allow: allow]) }
                var response = APIError.methodNotAllowed(request.method, request.uri.path, allow: allow).response
                response.headers[.allow] = allow
                return response
            }
            return APIError.routeNotFound(request.method, request.uri.path).response
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return APIError.bodyTooLarge(limitBytes: context.maxUploadSize).response
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            // Hummingbird's own 4xx (e.g. 405 method not allowed): keep the status, our shape.
            return APIError(
                status: error.status, message: error.status.reasonPhrase, type: "invalid_request_error",
                param: nil, code: nil
            ).response
        } catch {
            return APIError.internalError.response
        }
    }
}

/// Echoes a request's `X-Request-Id` header on its response (also on errors), as vLLM does, so
/// a client can match replies to requests in its own logs. Only an id ``RequestIDCheck`` accepts
/// is echoed; any other is refused (400) by that check, so an id is echoed exactly or not taken.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response = try await next(request, context)
        if let field = RequestIDRule.echoed(request.headers) { response.headers.append(field) }
        return response
    }
}

/// Refuses (400, `invalid_request_id`) an `X-Request-Id` that could not be echoed exactly: one
/// over 256 bytes, or with a byte outside printable ASCII; or two different ids in one request. NIO decodes header values as UTF-8 and
/// replaces a byte that is not (Latin-1 `é`, 0xE9) with U+FFFD before the server sees it, so such
/// an id came back as other bytes than were sent (and a long one was silently not echoed); a
/// client matching replies by id would then lose them without a word. Placed inside the metrics
/// middleware, so the 400 is counted as one.
struct RequestIDCheck<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let problem = RequestIDRule.problem(request.headers) {
            throw APIError.invalidRequest(problem, param: "X-Request-Id", code: "invalid_request_id")
        }
        return try await next(request, context)
    }
}

/// What an `X-Request-Id` must be to be echoed (``RequestIDCheck``), for the answers made below
/// the router too (``ReadTimeoutHandler``'s 408).
enum RequestIDRule {
    static var maxBytes: Int { 256 }

    /// The request's id as it is echoed: its `X-Request-Id`, if the request's ids can be (``problem(_:)``).
    static func echoed(_ fields: HTTPFields) -> HTTPFields.Element? {
        guard let field = fields.first(where: isID), problem(fields) == nil else { return nil }
        return field
    }

    /// Whether `field` is an `X-Request-Id` that names an id. An empty (or blank) one names none:
    /// it is taken as absent, as a missing header is (not echoed), instead of an empty
    /// `X-Request-Id:` coming back, which a client matching replies by id cannot match to anything.
    /// The HTTP parser already trims the spaces around a value, so a blank one arrives empty.
    private static func isID(_ field: HTTPFields.Element) -> Bool {
        field.name.canonicalName == "x-request-id" && field.value.contains { $0 != " " && $0 != "\t" }
    }

    /// Why the request's `X-Request-Id` headers cannot be echoed as its one id; nil if they can (or
    /// there are none; empty ones are none, ``isID(_:)``). Two different ids cannot both be the request's id: only the first was
    /// echoed, so a client or proxy that added its own id to one already set got the other back
    /// and lost the reply. Repeats of the same id are that id, echoed once.
    static func problem(_ fields: HTTPFields) -> String? {
        var sent = 0
        var values: [String] = []
        for field in fields where isID(field) {
            if let problem = problem(field) { return problem }
            sent += 1
            if !values.contains(field.value) { values.append(field.value) }
        }
        guard values.count <= 1 else {
            return "X-Request-Id was sent \(sent) times with \(values.count) different values ("
                + values.prefix(3).map { InputEcho.quoted($0) }.joined(separator: ", ") + (values.count > 3 ? ", …" : "")
                + "); a request has one id: send one"
        }
        return nil
    }

    /// Why `field` cannot be echoed exactly; nil if it can.
    static func problem(_ field: HTTPFields.Element) -> String? {
        let (count, outside) = field.withUnsafeBytesOfValue { bytes in
            (bytes.count, bytes.firstIndex { !(0x20...0x7E).contains($0) })
        }
        if count > maxBytes {
            return "X-Request-Id is \(count) bytes; it must be at most \(maxBytes) printable ASCII characters"
        }
        if let outside {
            return "X-Request-Id has a character outside printable ASCII at byte \(outside + 1); it must be at most "
                + "\(maxBytes) printable ASCII characters (space to '~'), so that it can be echoed exactly"
        }
        return nil
    }
}
