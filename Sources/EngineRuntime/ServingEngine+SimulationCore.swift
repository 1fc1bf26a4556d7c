import ServingEngine
import SimKit

extension ServingEngine: SimulationCore {
    /// A fork (copy-on-write values: cheap here, the buffers are copied by whichever side writes
    /// next) whose snapshot is the live engine's at this instant.
    public func detachedSnapshot() -> (@Sendable () -> Snapshot)? {
        guard let copy = try? fork() else { return nil }
        let held = DetachedCore(core: copy)
        return { held.core.snapshot() }
    }

    public var simTime: SimTime { now }
    public func submitExternal(promptTokens: Int, maxTokens: Int) -> Int {
        submitExternal(promptTokens: promptTokens, maxTokens: maxTokens, tag: "chat")
    }
    public func submitExternal(_ request: CompletionRequest) -> Int {
        submitExternal(promptTokens: request.promptTokens, maxTokens: request.maxTokens, minTokens: request.minTokens,
                       ignoreEOS: request.ignoreEOS, prefixHashes: request.prefixHashes,
                       prefixBlockTokens: request.prefixBlockTokens, tag: "chat")
    }
}

/// A forked engine handed to the snapshot thread; nothing else ever touches it.
private struct DetachedCore: @unchecked Sendable {
    let core: ServingEngine
}
