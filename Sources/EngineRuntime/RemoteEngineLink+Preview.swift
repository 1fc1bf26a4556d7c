import Foundation
import ServingEngine
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Previews from a remote console (`xds console --connect`): `POST /admin/preview`.
extension RemoteEngineLink: PreviewLink {
    /// Longest a remote preview may take before the console gives up waiting (an hour's preview
    /// of a saturated pod in a debug build); the server's own bounds come first.
    static let previewTimeout: TimeInterval = 300

    public func preview(_ request: PreviewRequest, progress: @escaping @Sendable (Double) -> Void = { _ in })
        -> Result<PreviewResult, PreviewRefusal>
    {
        var http = URLRequest(url: baseURL.appendingPathComponent("admin/preview"))
        http.httpMethod = "POST"
        http.setValue("application/json", forHTTPHeaderField: "Content-Type")
        http.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        http.httpBody = try? JSONEncoder().encode(
            AdminPreviewBody(
                command: request.command.description, duration: PreviewRequest.format(duration: request.duration)))
        http.timeoutInterval = Self.previewTimeout
        let answer = Mutex<Result<PreviewResult, PreviewRefusal>>(
            .failure(PreviewRefusal("no answer from \(baseURL.absoluteString)")))
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: http) { data, _, error in
            defer { done.signal() }
            if let error {
                answer.withLock { $0 = .failure(PreviewRefusal("not connected to \(self.baseURL.absoluteString): \(Self.explain(error))")) }
                return
            }
            guard let data else { return }
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(
                positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            if let result = try? decoder.decode(PreviewResult.self, from: data) {
                answer.withLock { $0 = .success(result) }
            } else if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let error = object["error"] as? [String: Any] {
                answer.withLock { $0 = .failure(PreviewRefusal(error["message"] as? String ?? "refused")) }
            }
        }.resume()
        done.wait()
        progress(1)
        return answer.withLock { $0 }
    }
}

/// The body of `POST /admin/preview` (interfaces.md, "What-if preview"):
/// `{"command": "drain node 20", "duration": "10m"}`.
struct AdminPreviewBody: Encodable {
    var command: String
    var duration: String
}
