import ServingEngine
import SimKit

extension ServingEngine: SimulationCore {
    public var simTime: SimTime { now }
    public func submitExternal(promptTokens: Int, maxTokens: Int) -> Int {
        submitExternal(promptTokens: promptTokens, maxTokens: maxTokens, tag: "chat")
    }
}
