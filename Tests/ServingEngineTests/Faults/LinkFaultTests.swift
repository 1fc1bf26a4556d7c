import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A UB link fault acts on the KV channels over it from the moment it is injected: a degraded
/// link slows them, a dead one blocks them until the probes find it and recovery reroutes over
/// RoCE. (A degrade never took effect at all, and a dead link carried transfers at full speed
/// until detection: the channels were only refreshed on other faults.)
@Suite(.timeLimit(.minutes(10))) struct LinkFaultTests {
    /// The channel from prefill-0 to the decode TE, and an NPU of each end.
    static func channel(_ engine: ServingEngine) throws -> (c: Int, a: Int, b: Int) {
        let d = try FaultTests.decodeIndex(engine)
        let c = try #require(engine.kvTransfer.channel(from: 0, to: d))
        return (c, engine.cluster.npus(of: 0)[0], engine.cluster.npus(of: d)[0])
    }

    @Test func aDegradedLinkSlowsItsChannelAtOnceAndTheHealRestoresIt() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 100)
        engine.run(until: 1)
        let (c, a, b) = try Self.channel(engine)
        #expect(engine.kvTransfer.channels[c].slowdown == 1)
        #expect(engine.apply(.faultLink(from: a, to: b, degrade: 8)).accepted)
        #expect(engine.kvTransfer.channels[c].slowdown == 8, "slowed from the injection, before any probe")
        #expect(!engine.kvTransfer.channels[c].blocked)
        #expect(engine.apply(.healAll).accepted)
        #expect(engine.kvTransfer.channels[c].slowdown == 1)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
    }

    @Test func aDeadLinkBlocksItsChannelUntilRerouted() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 100)
        engine.run(until: 1)
        let (c, a, b) = try Self.channel(engine)
        #expect(engine.apply(.faultLink(from: a, to: b, degrade: nil)).accepted)
        #expect(engine.kvTransfer.channels[c].blocked, "blocked from the injection")
        engine.run(until: 1 + 2 * engine.configuration.faults.heartbeatIntervalSeconds)
        #expect(!engine.kvTransfer.channels[c].blocked && engine.kvTransfer.channels[c].plane == .roce,
                "the probes found it and recovery moved the channel to RoCE")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
    }
}
