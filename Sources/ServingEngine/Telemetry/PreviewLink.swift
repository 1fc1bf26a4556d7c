/// A link that can answer `preview COMMAND [for DURATION]` (issue 16): the embedded engine
/// (``EngineHost`` in EngineRuntime) and a remote `xds serve` (`POST /admin/preview`).
/// A face checks `link as? PreviewLink`; links without it cannot preview.
public protocol PreviewLink: AnyObject, Sendable {
    /// Computes a preview of `request` without changing the live engine. Blocks for as long as
    /// the preview runs (about a second for ten minutes on the default pod): call it off a
    /// face's drawing thread. `progress` gets the share done (0…1) from time to time, on the
    /// calling thread.
    func preview(_ request: PreviewRequest, progress: @escaping @Sendable (Double) -> Void)
        -> Result<PreviewResult, PreviewRefusal>
}

extension PreviewLink {
    /// Reads `commandLine` (`preview drain node 20 for 10m`, or the command alone) and previews
    /// it; a line that does not parse is refused with the parser's one line, for every link.
    public func preview(commandLine: String, progress: @escaping @Sendable (Double) -> Void = { _ in })
        -> Result<PreviewResult, PreviewRefusal>
    {
        switch PreviewRequest.parse(commandLine) {
        case .failure(let error): .failure(PreviewRefusal(error.message))
        case .success(let request): preview(request, progress: progress)
        }
    }
}
