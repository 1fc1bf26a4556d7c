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
            guard let previewer = link as? PreviewLink else {
                return AdminWire.response(PreviewError(error: .init(message: "this engine cannot preview")), status: .notImplemented)
            }
            let line: String
            switch PreviewRequest.parse(command: body.command, duration: body.duration) {
            case .failure(let error):
                return AdminWire.response(PreviewError(error: .init(message: error.message)), status: .badRequest)
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
            case .failure(let refusal):
                let unavailable = refusal.message.hasPrefix("engine") || refusal.message.hasPrefix("the engine did not")
                return AdminWire.response(PreviewError(error: .init(message: refusal.message)),
                                          status: unavailable ? .serviceUnavailable : .badRequest)
            }
        }
    }

    private struct PreviewError: Encodable {
        struct Message: Encodable { var message: String }
        var error: Message
    }
}
