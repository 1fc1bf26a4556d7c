import Testing

@testable import ServingEngine
import PodModel

/// Arrivals are counted per traffic class by index (``ExpertTraffic/classes``); the mix they set
/// must be the one the name-keyed weights set.
@Suite struct ExpertTrafficClassTests {
    let shape = ModelSpecShape(moeLayers: 4, experts: 32)

    @Test func classesAreTheProfilesInNameOrder() {
        let traffic = ExpertTraffic(shape: shape, seed: 3, classes: ["reasoning", "chat", "code"])
        #expect(traffic.classes == ["chat", "code", "reasoning"])
    }

    @Test func mixFromArrivalsIsTheMixFromNamedWeights() {
        for arrivals in [[3.0, 0, 5], [0, 0, 7], [1, 1, 1], [0, 0, 0], [2, 9]] as [[Double]] {
            var byIndex = ExpertTraffic(shape: shape, seed: 3, classes: ["reasoning", "chat", "code"])
            var byName = byIndex
            byIndex.setMix(arrivals: arrivals)
            var weights: [String: Double] = [:]
            for (i, w) in arrivals.enumerated() where w > 0 { weights[byName.classes[i]] = w }
            byName.setMix(weights)
            #expect(byIndex.mix == byName.mix, "\(arrivals)")
            #expect(byIndex.popularity == byName.popularity, "\(arrivals)")
        }
    }
}
