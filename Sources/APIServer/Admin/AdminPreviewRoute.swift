import Foundation
import Hummingbird
import ServingEngine

/// `POST /admin/preview` (interfaces.md, "What-if preview"): `{"command": "drain node 20",
/// "duration": "10m"}` → `{"command", "duration_s", "from_s", "reply", "baseline", "with_command",
/// "wall_seconds"}`, each side with the run report's `requests`, `latency_ms`, `slo`,
/// `throughput` and `kv` over the previewed window. 400 for a malformed or refused preview (a
/// command the engine would reject, a duration outside 1s…1h), 501 if the engine cannot preview,
/// 503 if it cannot compute one now; every refusal carries a `code` (README, "Serving real clients").
///
/// ```
/// curl -H "Authorization: Bearer $T" -d '{"command": "drain node 20", "duration": "10m"}' localhost:8000/admin/preview
/// ```
extension AdminRoutes {
    private struct PreviewBody: Decodable {
        var command: String
        var duration: String?
        private enum CodingKeys: String, CodingKey { case command, duration }
        init(from decoder: any Decoder) throws {
            try AdminRoutes.refuseUnknownFields(
                of: decoder, route: "POST /admin/preview", takes: ["command", "duration"])
            let container = try decoder.container(keyedBy: CodingKeys.self)
            command = try container.decode(String.self, forKey: .command)
            duration = try container.decodeIfPresent(String.self, forKey: .duration)
        }
    }

    func registerPreview(on admin: RouterGroup<ServerContext>) {
        admin.post("/preview") { request, context in
            var request = request
            let body = try await Self.body(PreviewBody.self, of: &request, limitBytes: maxBodyBytes)
            try Self.checkLength(ofCommand: body.command)
            guard let previewer = link as? PreviewLink else { throw Self.cannotPreview }
            let line: String
            // Parsed against the served pod, so a bad index names its range ("the pod has nodes
            // 0…47"), as POST /admin/commands answers the same command.
            let pod = link.latestSnapshot().podTopology
            switch PreviewRequest.parse(command: body.command, duration: body.duration, on: pod) {
            case .failure(let error): throw Self.malformed(error, body: body)
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

    /// A request that does not parse: the message names the field; `param` says which, `code`
    /// why: `invalid_duration`; `not_previewable` for a command the live engine takes but a
    /// preview does not (`speed`, `pause`, `resume`: pace only; a preview of a preview);
    /// `command_rejected` for one that does not parse, as `POST /admin/commands` answers it.
    private static func malformed(_ error: CommandParseError, body: PreviewBody) -> APIError {
        if error == PreviewHint.emptyCommand {
            return .invalidRequest(PreviewHint.forAdminAPI, param: "command", code: "command_rejected")
        }
        // The duration is read last: a command that parses leaves only the duration to blame.
        if body.duration != nil && PreviewRequest.parse(command: body.command, duration: nil).isSuccess {
            return .invalidRequest(error.message, param: "duration", code: "invalid_duration")
        }
        let unparsed = !PreviewRequest.isPreview(body.command) && !OperatorCommand.parse(body.command).isSuccess
        return .invalidRequest(error.message, param: "command", code: unparsed ? "command_rejected" : "not_previewable")
    }

    /// The engine's refusal: 503 when it could not compute (stopped, busy, withdrawn), else 400
    /// (the command it would reject).
    static func refused(_ refusal: PreviewRefusal) -> APIError {
        let unavailable = refusal.message.hasPrefix("engine") || refusal.message.hasPrefix("the engine did not")
        return unavailable ? .engine(reason: refusal.message, status: 503)
            : .invalidRequest(refusal.message, param: "command", code: "command_rejected")
    }
}

/// What `POST /admin/preview` answers a request with no command. The parser's own hint,
/// "e.g. 'preview drain node 20 for 10m'", is the console's form: sent as `command` it was
/// refused ("a preview cannot preview a preview"), and node 20 is missing from smaller pods.
enum PreviewHint {
    /// The parser's refusal of an empty command, asked of the parser rather than copied.
    static let emptyCommand: CommandParseError? = {
        if case .failure(let error) = PreviewRequest.parse(command: "", duration: nil) { error } else { nil }
    }()

    static var forAdminAPI: String {
        let words = PreviewRequest.commandWords
        return "'command' is empty: give the command to preview as POST /admin/commands takes it, starting with "
            + words.dropLast().joined(separator: ", ") + " or " + (words.last ?? "")
            + ", without 'preview' or 'for'; the simulated time goes in 'duration' (\(PreviewRequest.durationsText))"
    }
}

extension Result {
    fileprivate var isSuccess: Bool { if case .success = self { true } else { false } }
}
