import Foundation
import NIOCore
import ServingEngine

/// Previews from a remote console (`xds console --connect`): `POST /admin/preview`.
extension RemoteEngineLink: PreviewLink {
    /// Longest a remote preview may take before the console gives up waiting (an hour's preview
    /// of a saturated pod in a debug build); the server's own bounds come first.
    static let previewTimeout = TimeAmount.seconds(300)

    public func preview(_ request: PreviewRequest, progress: @escaping @Sendable (Double) -> Void = { _ in })
        -> Result<PreviewResult, PreviewRefusal>
    {
        preview(request, cancellation: PreviewCancellation(), progress: progress)
    }

    /// Gives up once `cancellation` is cancelled (the console's Esc): the request's connection
    /// is closed, which stops the preview on the server within a slice and frees its place.
    public func preview(_ request: PreviewRequest, cancellation: PreviewCancellation,
                        progress: @escaping @Sendable (Double) -> Void = { _ in }) -> Result<PreviewResult, PreviewRefusal>
    {
        let body = (try? JSONOutput.encoder().encode(
            AdminPreviewBody(
                command: request.command.description, duration: PreviewRequest.format(duration: request.duration))))
            .map { [UInt8]($0) } ?? []
        let answer = http.exchange(baseURL.appendingPathComponent("admin/preview"), method: .POST, json: body,
                                   timeout: Self.previewTimeout, cancelled: { cancellation.isCancelled })
        progress(1)
        switch answer {
        case .failure(.cancelled):
            return .failure(PreviewRefusal("preview cancelled"))
        case .failure(let failure):
            return .failure(PreviewRefusal("not connected to \(baseURL.absoluteString): \(failure.explanation)"))
        case .success(let answer):
            return read(answer, as: PreviewResult.self).mapError { PreviewRefusal($0.message) }
        }
    }
}

/// The body of `POST /admin/preview` (interfaces.md, "What-if preview"):
/// `{"command": "drain node 20", "duration": "10m"}`.
struct AdminPreviewBody: Encodable {
    var command: String
    var duration: String
}
