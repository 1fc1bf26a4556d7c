import ServingEngine
import SimKit

extension ServingEngine: SimulationCore {
    public var simTime: SimTime { now }
}
