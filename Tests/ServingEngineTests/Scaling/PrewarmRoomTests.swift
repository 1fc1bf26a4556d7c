import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Pre-warmed spares are bounded by what the deployment's spare NPUs hold: more TEs' worth than
/// that used to be accepted and cut to the spares without a word (`--prewarmed-spares 64` on
/// `superpod` pre-warmed its 96 spare NPUs, six TEs' worth).
@Suite(.timeLimit(.minutes(10))) struct PrewarmRoomTests {
    /// The engine's spare pool at start and its smallest scalable TE: what `setUpScaling` marks.
    static func engineRoom(_ d: Deployment) throws -> (spares: Int, npusPerTE: Int?) {
        var config = EngineConfiguration(deployment: d, seed: 1, syntheticRate: 1)
        config.expertSkew = false
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload([]))
        return (engine.spareNPUs().count, engine.scalableGroups().map(\.npusEach).min())
    }

    /// The flag and the TOML reader check against ``Deployment/prewarmRoom()``; the engine
    /// against its own spare pool. They must agree, or a value one accepts the other refuses.
    @Test(arguments: Deployment.presetNames + ["colocated:2:llama-2-7b:nvidia-a100:tp1"])
    func theDeploymentsRoomIsTheEnginesSparePool(_ name: String) throws {
        let d = try Deployment.resolve(name)
        let room = try #require(d.prewarmRoom())
        let engine = try Self.engineRoom(d)
        #expect(room.spareNPUs == engine.spares && room.npusPerTE == engine.npusPerTE, "\(name): \(room) vs \(engine)")
        #expect(room.most == engine.npusPerTE.map { engine.spares / $0 } ?? 0)
    }

    @Test func theTestPodsRoomIsTheEnginesSparePool() throws {
        for d in [TestDeployments.faultPod, TestDeployments.toyPod] {
            let room = try #require(d.prewarmRoom())
            let engine = try Self.engineRoom(d)
            #expect(room.spareNPUs == engine.spares && room.npusPerTE == engine.npusPerTE, "\(d.name)")
        }
    }

    @Test func presetsHoldWhatTheREADMESays() throws {
        let expected = ["superpod": 6, "cloudmatrix-infer": 8, "xdeepserve-ma": 0, "colocated-288": 9]
        for (name, most) in expected {
            #expect(try Deployment.resolve(name).prewarmRoom()?.most == most, "\(name)")
        }
        #expect(try Deployment.resolve("superpod").prewarmRoom()?.reason == "96 spare NPUs, 16 per TE of its smallest shape")
    }

    /// The fault pod has one spare node (8 NPUs) and prefill TEs of 8 NPUs: room for one TE.
    @Test func theEngineRefusesMorePrewarmedTEsThanItsSparesHold() throws {
        let fits = try FaultTests.engine(rate: 1, limit: 1) { $0.scaling.prewarmedSpareTEs = 1 }
        #expect(fits.scaling.prewarmedNPUs == Set(40..<48))
        for asked in [2, 64] {
            let error = #expect(throws: ConfigError.self) {
                try FaultTests.engine(rate: 1, limit: 1) { $0.scaling.prewarmedSpareTEs = asked }
            }
            #expect(error?.description
                == "engine configuration: scaling.prewarmedSpareTEs is \(asked); allowed 0…1 on deployment 'fault-pod' "
                + "(8 spare NPUs, 8 per TE of its smallest shape)")
        }
    }

    /// `[scaling] prewarmed_spare_tes` is checked against the file's own layout, with the file
    /// named, as every other problem with it is.
    @Test func aDeploymentFileAskingForMoreThanItsSparesHoldIsRefused() throws {
        let base = Deployment.superpod.toml()
        func file(_ k: Int) -> String { base + "\n[scaling]\nprewarmed_spare_tes = \(k)\n" }
        #expect(try Deployment(toml: file(6), source: "pod.toml").prewarmedSpareTEs == 6)
        for k in [7, 64] {
            let error = #expect(throws: ConfigError.self) { try Deployment(toml: file(k), source: "pod.toml") }
            // At the key's line, the file's last (its text ends in a newline).
            let line = file(k).split(separator: "\n", omittingEmptySubsequences: false).count - 1
            #expect(error?.description
                == "pod.toml:\(line): deployment 'superpod': [scaling] prewarmed_spare_tes must be between 0 and 6 on this "
                + "layout (96 spare NPUs, 16 per TE of its smallest shape), got \(k)")
        }
        // The file format's own range still comes first.
        let error = #expect(throws: ConfigError.self) { try Deployment(toml: file(65), source: "pod.toml") }
        // At the key's line: the file's last (its text ends in a newline).
        let line = file(65).split(separator: "\n", omittingEmptySubsequences: false).count - 1
        #expect(error?.description == "pod.toml:\(line): [scaling]: prewarmed_spare_tes must be between 0 and 64, got 65")
    }

    @Test func aLayoutWithNothingToScaleHasNoRoom() throws {
        let room = try #require(try Deployment.resolve("xdeepserve-ma").prewarmRoom())
        #expect(room.most == 0 && room.npusPerTE == nil)
        #expect(room.reason == "none of its TEs is one that scales onto spare NPUs inside the pod")
    }
}
