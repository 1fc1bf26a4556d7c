import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A fault the operator heals before any heartbeat, probe or device check finds it is not
/// recovered: no recovery acted. It used to be counted under `faults.recovered` (with
/// `recovered_at` at the heal and a `time_to_recover_s`), so a run could report more faults
/// recovered than detected.
@Suite(.timeLimit(.minutes(10))) struct HealBeforeDetectionTests {
    /// Rounds every 1 s on the fault pod; a decode fault at 2.5 s is declared after the silent
    /// rounds at 3, 4 and 5 s, and a spare's fault is reported at the round at 3 s.
    static func healed(_ fault: OperatorCommand, healAt: SimTime) throws -> ServingEngine {
        let engine = try FaultTests.engine(rate: 30, limit: 60)
        engine.run(until: 2.5)
        #expect(engine.apply(fault).accepted)
        engine.run(until: healAt)
        #expect(engine.report().faults.detected == 0, "healed before detection")
        #expect(engine.apply(.heal(faultID: 1)).accepted)
        return engine
    }

    @Test(arguments: [OperatorCommand.faultNPU(21), .faultNPU(44), .faultHBM(die: 36)])
    func aFaultHealedBeforeDetectionIsNotCountedRecovered(_ fault: OperatorCommand) throws {
        let engine = try Self.healed(fault, healAt: 2.75)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine, "\(fault)")
        let report = engine.report()
        #expect(report.faults == RunReport.Faults(injected: 1, detected: 0, recovered: 0, healedBeforeDetection: 1))
        let detail = try #require(report.faultDetails.first)
        #expect(detail.detectedAt == nil && detail.recoveredAt == nil && detail.timeToRecoverS == nil, "\(detail)")
        #expect(detail.healedAt == 2.75 && detail.healedBeforeDetection)
        #expect(detail.recovery == "healed by the operator before detection (no recovery acted)")
        // A healed fault is not found afterwards, and nothing recovers it.
        #expect(FaultTests.events(engine, .faultDetected).isEmpty && FaultTests.events(engine, .recovery).isEmpty)
    }

    /// The new keys are written only when such a fault exists: every other report keeps its
    /// bytes (the reference reports have none), and reports read back either way.
    @Test func theReportSaysSoOnlyWhenItHappened() throws {
        let encoder = JSONOutput.encoder()
        let early = try Self.healed(.faultNPU(21), healAt: 3.2)
        early.run(until: 10)
        let text = String(decoding: try encoder.encode(early.report()), as: UTF8.self)
        #expect(text.contains(#""faults":{"detected":0,"healed_before_detection":1,"injected":1,"recovered":0}"#), "\(text)")
        #expect(text.contains(#""healed_before_detection":true"#))
        #expect(try JSONDecoder().decode(RunReport.self, from: Data(text.utf8)) == early.report())

        // Healed after the heartbeats found it: recovered by the policy before the heal, no new key.
        let late = try FaultTests.engine(rate: 30, limit: 60)
        late.run(until: 2.5)
        #expect(late.apply(.faultNPU(21)).accepted)
        late.run(until: 8)
        #expect(late.apply(.healAll).accepted)
        late.run(until: 10)
        let lateText = String(decoding: try encoder.encode(late.report()), as: UTF8.self)
        #expect(late.report().faults == RunReport.Faults(injected: 1, detected: 1, recovered: 1))
        #expect(!lateText.contains("healed_before_detection"), "\(lateText)")
        #expect(lateText.contains(#""faults":{"detected":1,"injected":1,"recovered":1}"#))
        #expect(try JSONDecoder().decode(RunReport.self, from: Data(lateText.utf8)) == late.report())
    }
}
