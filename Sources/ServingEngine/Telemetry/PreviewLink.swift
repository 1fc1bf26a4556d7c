/// A link that can answer `preview COMMAND [for DURATION]` (issue 16): the embedded engine
/// (``EngineHost`` in EngineRuntime) and a remote `xds serve` (`POST /admin/preview`).
/// A face checks `link as? PreviewLink`; links without it cannot preview.
public protocol PreviewLink: AnyObject, Sendable {
    /// Computes a preview of `commandLine` (`preview drain node 20 for 10m`, or the command
    /// alone) without changing the live engine. Blocks for as long as the preview runs (about a
    /// second for ten minutes on the default pod): call it off a face's drawing thread.
    /// `progress` gets the share done (0…1) from time to time, on the calling thread.
    func preview(commandLine: String, progress: @escaping @Sendable (Double) -> Void) -> Result<PreviewResult, PreviewRefusal>
}
