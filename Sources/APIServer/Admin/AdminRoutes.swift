import Foundation
import Hummingbird
import PodModel
import ServingEngine

/// `/admin/*`: what a remote console or a script needs to operate the engine — the snapshot, the
/// command language, and a live stream of snapshots and events. All of it behind a bearer token;
/// a request without the right token is answered 401 before any handler runs, so it changes nothing.
///
/// ```
/// curl -H "Authorization: Bearer $T" localhost:8000/admin/state
/// curl -H "Authorization: Bearer $T" -d '{"command": "drain node 5"}' localhost:8000/admin/commands
/// curl -N -H "Authorization: Bearer $T" localhost:8000/admin/events
/// ```
struct AdminRoutes: Sendable {
    let link: any EngineLink
    let token: String
    let maxBodyBytes: Int
    let eventInterval: Duration
    /// The snapshot's JSON for every `/admin/events` stream of this server (``SnapshotJSONCache``).
    let snapshotJSON = SnapshotJSONCache()
    /// The `/admin/events` streams open now, at most ``AdminEventStream/maxConcurrentStreams``.
    let eventStreams = EventStreamSlots()

    func register(on router: Router<ServerContext>) {
        let admin = router.group("/admin").add(middleware: BearerTokenMiddleware(token: token))
        admin.get("/state") { request, _ in
            _ = try AdminQuery(route: "GET /admin/state").values(of: request)
            return AdminWire.response(link.latestSnapshot())
        }
        admin.post("/commands") { request, _ in
            var request = request
            let line = try await commandLine(from: &request)
            let reply = await send(line)
            let status = Self.status(of: reply)
            return AdminWire.response(
                CommandResult(accepted: reply.accepted, message: reply.message, capacityLost: reply.capacityLost,
                              error: reply.accepted ? nil : Self.error(of: reply, status: status).detail),
                status: status)
        }
        registerPreview(on: admin)
        registerRequests(on: admin)
        admin.get("/events") { request, _ in
            _ = try AdminQuery(route: "GET /admin/events").values(of: request)
            guard let slot = eventStreams.take() else { throw AdminEventStream.tooManyStreams }
            return AdminEventStream(link: link, interval: eventInterval, snapshotJSON: snapshotJSON)
                .response(for: request, holding: slot)
        }
    }

    private struct CommandBody: Decodable {
        var command: String
        private enum CodingKeys: String, CodingKey { case command }
        init(from decoder: any Decoder) throws {
            try AdminRoutes.refuseUnknownFields(of: decoder, route: "POST /admin/commands", takes: ["command"])
            command = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .command)
        }
    }
    /// `{"accepted", "message"}`; a rejected command also carries the `/v1/*` error object
    /// (`"error": {"message", "type", "param", "code"}`), so clients parse one error shape everywhere.
    /// `"capacity_lost": true` is added (only then) to an accepted command that leaves no TE of a
    /// side taking new work (``CommandReply/capacityLost``): a remote console warns on it.
    private struct CommandResult: Encodable {
        var accepted: Bool
        var message: String
        var capacityLost: Bool
        var error: APIError.Detail?

        private enum Keys: String, CodingKey { case accepted, message, capacityLost = "capacity_lost", error }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(accepted, forKey: .accepted)
            try c.encode(message, forKey: .message)
            if capacityLost { try c.encode(true, forKey: .capacityLost) }
            try c.encodeIfPresent(error, forKey: .error)
        }
    }

    /// A rejection as an error: 400 `command_rejected` (nothing changed), or 503 (engine unavailable).
    static func error(of reply: CommandReply, status: HTTPResponse.Status) -> APIError {
        status == .serviceUnavailable ? .engine(reason: reply.message, status: 503)
            : .invalidRequest(reply.message, param: "command", code: "command_rejected")
    }

    /// Longest command line taken (bytes of UTF-8); the language's longest command is ~50.
    static let maxCommandBytes = 1024

    private func commandLine(from request: inout Request) async throws -> String {
        let line = try await Self.body(CommandBody.self, of: &request, limitBytes: maxBodyBytes).command
        try Self.checkLength(ofCommand: line)
        return line
    }

    /// 400 `command_too_long` past ``maxCommandBytes`` (commands and previews alike).
    static func checkLength(ofCommand line: String) throws {
        guard line.utf8.count <= maxCommandBytes else {
            throw APIError.invalidRequest(
                "'command' must be within 0…\(maxCommandBytes) bytes (got \(line.utf8.count))", param: "command",
                code: "command_too_long")
        }
    }

    /// Any key of a JSON object.
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// A 400 `unknown_parameter` naming the first field of an admin body (a JSON object) that
    /// the route does not take. A misspelt field was ignored and its default used in its place
    /// (`{"command": "drain node 1", "duraton": "1h"}` previewed 10 minutes), as the admin query
    /// strings did before they were checked whole. A body that is no object is left to the
    /// decoder, which says so.
    static func refuseUnknownFields(of decoder: any Decoder, route: String, takes known: [String]) throws {
        guard let keys = try? decoder.container(keyedBy: AnyKey.self).allKeys else { return }
        // Sorted: the decoder's key order is not the body's, and the answer must be the same
        // bytes for the same body.
        guard let unknown = keys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first else { return }
        throw APIError.invalidRequest(
            "unknown field \(InputEcho.quoted(unknown)): \(route) takes \(known.joined(separator: ", "))",
            param: InputEcho.clean(unknown), code: "unknown_parameter")
    }

    /// An admin POST's JSON body. A body that is not the object the route takes (not JSON, a
    /// field of the wrong type or missing, a key given twice) is a 400 `invalid_body`: the admin
    /// API names every refusal with a code, where the `/v1/*` routes leave `code` null, as
    /// OpenAI does for these.
    static func body<Body: Decodable>(_ type: Body.Type, of request: inout Request, limitBytes: Int) async throws -> Body {
        do {
            return try await request.decodeJSON(type, limitBytes: limitBytes)
        } catch var error as APIError where error.code == nil {
            error.code = "invalid_body"
            throw error
        }
    }

    /// 200 applied; 400 rejected (malformed, or refused by the engine: nothing changed);
    /// 503 when the engine could not take it: not running, stopped, or it did not apply the
    /// command within its bound (EngineHost withdrew it: it will not apply later).
    static func status(of reply: CommandReply) -> HTTPResponse.Status {
        if reply.accepted { return .ok }
        let unavailable = ["the engine did not apply the command within", "engine is not running", "engine stopped"]
        if unavailable.contains(where: { reply.message.hasPrefix($0) }) || reply.message.hasSuffix("not applied, engine stopped") {
            return .serviceUnavailable
        }
        return .badRequest
    }

    /// `EngineLink.send` blocks until the engine thread applied the command (a few ms, at most
    /// seconds); it runs on a Dispatch thread so it never holds one of the server's event loops.
    private func send(_ line: String) async -> CommandReply {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: link.send(commandLine: line)) }
        }
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`; otherwise 401 in the OpenAI
/// error shape, with `WWW-Authenticate` as RFC 6750 asks.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        // Sent twice, the values were joined into one and refused as a wrong token, even when
        // both were right; a request carries one credential, and the 401 says what was wrong.
        let sent = request.headers[values: .authorization].count
        guard sent <= 1, AdminToken.authorizes(header: request.headers[.authorization], expected: token) else {
            var error = APIError.unauthorized
            if sent > 1 { error.message = "Authorization was sent \(sent) times; send the admin token once ('Authorization: Bearer TOKEN')" }
            var response = error.response
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}

/// JSON for the admin API. Snapshots may hold non-finite numbers (an imbalance over an idle pod);
/// plain JSON has none, so they are written as the strings "NaN", "Infinity", "-Infinity" — a
/// remote console decodes with the matching `nonConformingFloatDecodingStrategy`. Otherwise the
/// project's one writer configuration (``JSONOutput``): keys sorted, so the same answer is the same
/// bytes in every process (Linux's encoder follows dictionary order, which changes between runs).
enum AdminWire {
    static func encoder() -> JSONEncoder {
        let encoder = JSONOutput.encoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func string(_ value: some Encodable) -> String {
        guard let data = try? encoder().encode(value) else {
            return #"{"error":{"message":"encoding failed"}}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: string(value))))
    }
}
