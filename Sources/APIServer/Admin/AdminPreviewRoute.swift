import Foundation
import Hummingbird
import ServingEngine

/// `POST /admin/preview` (interfaces.md, "What-if preview"): `{"command": "drain node 20",
/// "duration": "10m"}` → `{"command", "duration_s", "from_s", "reply", "baseline", "with_command",
/// "wall_seconds"}`, each side with the run report's `requests`, `latency_ms`, `slo`,
/// `throughput` and `kv` over the previewed window. 400 for a malformed or refused preview (a
/// command the engine would reject, a duration outside 1s…1h), 501 if the engine cannot preview.
///
/// ```
/// curl -H "Authorization: Bearer $T" -d '{"command": "drain node 20", "duration": "10m"}' localhost:8000/admin/preview
/// ```
extension AdminRoutes {
    private struct PreviewBody: Decodable {
        var command: String
        var duration: String?
    }

    func registerPreview(on admin: RouterGroup<ServerContext>) {
        admin.post("/preview") { request, context in
            var request = request
            let body = try await request.decodeJSON(PreviewBody.self, limitBytes: maxBodyBytes)
            guard body.command.utf8.count <= Self.maxCommandBytes else {
                throw APIError.invalidRequest(
                    "'command' must be within 0…\(Self.maxCommandBytes) bytes (got \(body.command.utf8.count))", param: "command")
            }
            guard let previewer = link as? PreviewLink else { throw Self.cannotPreview }
            let line: String
            switch PreviewRequest.parse(command: body.command, duration: body.duration) {
            case .failure(let error): throw Self.malformed(error.message, body: body)
            case .success(let parsed): line = parsed.description
            }
            // Nobody waiting, nothing computed: when the client hangs up or the server stops (which
            // closes its connections), the watch cancels the wait, which cancels the preview.
            let cancellation = PreviewCancellation()
            let answer: Result<PreviewResult, PreviewRefusal>
            do {
                answer = try await ClientWatch.run(on: context.channel) {
                    await withTaskCancellationHandler {
                        await withCheckedContinuation { continuation in
                            DispatchQueue.global().async {
                                continuation.resume(returning: previewer.preview(commandLine: line, cancellation: cancellation))
                            }
                        }
                    } onCancel: {
                        cancellation.cancel()
                    }
                }
            } catch {
                // Like a completion whose client left: nobody to answer; the server's log says so.
                cancellation.cancel()
                context.logger.info("preview cancelled: the client left or the server is stopping")
                throw error
            }
            switch answer {
            case .success(let result): return AdminWire.response(result)
            case .failure(let refusal): throw Self.refused(refusal)
            }
        }
    }

    // Errors in the `/v1/*` shape (``APIError``: `message`, `type`, `param`, `code`), so a client
    // parses one error body on every route.

    static let cannotPreview = APIError(
        status: .notImplemented, message: "this engine cannot preview", type: "invalid_request_error", param: nil,
        code: "not_implemented")

    /// A request that does not parse: the message names the field; `param` says which.
    private static func malformed(_ message: String, body: PreviewBody) -> APIError {
        // The duration is read last: a command that parses leaves only the duration to blame.
        let durationAtFault = body.duration != nil && PreviewRequest.parse(command: body.command, duration: nil).isSuccess
        return .invalidRequest(message, param: durationAtFault ? "duration" : "command")
    }

    /// The engine's refusal: 503 when it could not compute (stopped, busy, withdrawn), else 400
    /// (the command it would reject).
    static func refused(_ refusal: PreviewRefusal) -> APIError {
        let unavailable = refusal.message.hasPrefix("engine") || refusal.message.hasPrefix("the engine did not")
        return unavailable ? .engine(reason: refusal.message, status: 503)
            : .invalidRequest(refusal.message, param: "command", code: "command_rejected")
    }
}

extension Result {
    fileprivate var isSuccess: Bool { if case .success = self { true } else { false } }
}
