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
    /// As above, but gives up once `cancellation` is cancelled (nobody waits for the answer any
    /// more), freeing what the preview held, and is then refused. Links that cannot stop a
    /// preview midway keep the default, which runs it to the end.
    func preview(_ request: PreviewRequest, cancellation: PreviewCancellation,
                 progress: @escaping @Sendable (Double) -> Void) -> Result<PreviewResult, PreviewRefusal>
}

extension PreviewLink {
    public func preview(_ request: PreviewRequest, cancellation: PreviewCancellation,
                        progress: @escaping @Sendable (Double) -> Void) -> Result<PreviewResult, PreviewRefusal>
    {
        preview(request, progress: progress)
    }

    /// Reads `commandLine` (`preview drain node 20 for 10m`, or the command alone) and previews
    /// it; a line that does not parse is refused with the parser's one line, for every link.
    public func preview(commandLine: String, cancellation: PreviewCancellation? = nil,
                        progress: @escaping @Sendable (Double) -> Void = { _ in })
        -> Result<PreviewResult, PreviewRefusal>
    {
        // Against the link's pod when it pictures one, so a bad index names the pod's range.
        switch PreviewRequest.parse(commandLine, on: (self as? any EngineLink)?.latestSnapshot().podTopology) {
        case .failure(let error): .failure(PreviewRefusal(error.message))
        case .success(let request):
            if let cancellation { preview(request, cancellation: cancellation, progress: progress) }
            else { preview(request, progress: progress) }
        }
    }
}
