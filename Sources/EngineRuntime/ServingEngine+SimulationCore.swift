import PodModel
import ServingEngine
import SimKit

extension ServingEngine: SimulationCore {
    public var simTime: SimTime { now }
    public var podTopology: PodTopology? { topology }
    public func submitExternal(promptTokens: Int, maxTokens: Int) -> Int {
        submitExternal(promptTokens: promptTokens, maxTokens: maxTokens, tag: "chat")
    }
    public func submitExternal(_ request: CompletionRequest) -> Int {
        submitExternal(promptTokens: request.promptTokens, maxTokens: request.maxTokens, minTokens: request.minTokens,
                       ignoreEOS: request.ignoreEOS, prefixHashes: request.prefixHashes,
                       prefixBlockTokens: request.prefixBlockTokens, tag: "chat")
    }
}
