import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Elastic scaling (issue 15): scale commands, load paths, scale-in, faults during a scale,
/// the autoscaler.
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct ScalingTests {
    // MARK: Command language

    @Test func scaleCommandsParseAndPrintBack() throws {
        let cases: [(String, OperatorCommand)] = [
            ("scale prefill 12", .scale(role: .prefill, change: .to(12), from: nil)),
            ("SCALE Decode +2", .scale(role: .decode, change: .by(2), from: nil)),
            ("scale colocated -1", .scale(role: .colocated, change: .by(-1), from: nil)),
            ("scale prefill +4 from object-store", .scale(role: .prefill, change: .by(4), from: .objectStore)),
            ("autoscale slo", .autoscale("slo")),
            ("autoscale off", .autoscale("off")),
        ]
        for (line, command) in cases {
            #expect(try OperatorCommand.parse(line).get() == command, "\(line)")
            #expect(try OperatorCommand.parse(command.description).get() == command, "\(command)")
        }
        for bad in ["scale", "scale gpu 3", "scale prefill", "scale prefill 0", "scale prefill 65", "scale prefill +0",
                    "scale prefill -65", "scale prefill 1.5", "scale prefill +x", "scale prefill 4 from s3",
                    "scale prefill 4 via pool", "autoscale", "autoscale fast", "scale prefill 99999999999999999999"] {
            guard case .failure(let error) = OperatorCommand.parse(bad) else {
                Issue.record("'\(bad)' was accepted")
                continue
            }
            #expect(!error.message.isEmpty && !error.message.contains("\n"), "\(bad): \(error.message)")
        }
        #expect(OperatorCommand.completions(for: "sc") == ["scale colocated ", "scale decode ", "scale prefill "])
        #expect(OperatorCommand.completions(for: "auto") == ["autoscale off", "autoscale slo"])
    }

    // MARK: Scale-up and scale-in on the default pod

    @Test func scalePrefillTo12BringsFourTEsIntoServiceAndTheyTakeWork() throws {
        let engine = try Self.superpod(rate: 40)
        engine.run(until: 2)
        let reply = engine.apply(.scale(role: .prefill, change: .to(12), from: nil))
        #expect(reply.accepted, "\(reply.message)")
        // prefill-0…7 are instances 0…7 and decode-0 is 8: the new TEs are 9…12.
        let new = Array(9..<13)
        #expect(engine.instances.count == 13)
        #expect(new.allSatisfy { engine.scaling.phase($0) == .allocating })
        // Allocation: whole spare nodes (36…47), 16 NPUs each.
        for i in new {
            #expect(engine.cluster.npus(of: i).count == 16)
            #expect(engine.cluster.npus(of: i).allSatisfy { $0 >= 288 })
            #expect(engine.instances[i].groups.allSatisfy { !engine.cluster.isPlaceable(te: i, group: $0) },
                    "a starting TE takes no work")
        }
        #expect(engine.spareNPUs().count == 32)
        // Before they are ready they take nothing.
        engine.run(until: 2.5)
        #expect(new.allSatisfy { engine.kvStore.groupManagers(of: $0).allSatisfy { $0.stats.queriedTokens == 0 } })
        // Allocate 1 s + NPU-fork (well under a second) + warm-up 2 s.
        engine.run(until: 6)
        #expect(new.allSatisfy { engine.scaling.phase($0) == .inService })
        let detail = try #require(engine.report().scaling?.details.first)
        #expect(detail.role == "prefill" && detail.from == 8 && detail.to == 12)
        #expect(detail.loadPath == .npuFork)
        let ready = try #require(detail.readyS)
        #expect(ready - detail.requestedS > 3 && ready - detail.requestedS < 4.5, "\(ready - detail.requestedS) s")
        engine.run(until: 20)
        #expect(new.allSatisfy { i in engine.kvStore.groupManagers(of: i).contains { $0.stats.queriedTokens > 0 } },
                "the new TEs take work")
        #expect(engine.snapshot().instances[9].state == "in-service")
        ScalingTests.expectSound(engine)

        // Scale back in: four TEs drain and give their NPUs back, nothing lost.
        let down = engine.apply(.scale(role: .prefill, change: .to(8), from: nil))
        #expect(down.accepted, "\(down.message)")
        #expect(new.allSatisfy { engine.scaling.phase($0) == .draining })
        ScalingTests.expectSound(engine)
        engine.run(until: 40)
        #expect(new.allSatisfy { engine.scaling.phase($0) == .retired })
        #expect(engine.spareNPUs().count == 96)
        let report = engine.report()
        #expect(report.scaling?.scaleUps == 1 && report.scaling?.scaleDowns == 1)
        #expect(report.scaling?.details.last?.readyS != nil)
        ScalingTests.expectSound(engine)
        #expect(engine.runToCompletion(limit: 3_600))
        ScalingTests.expectSound(engine)
        #expect(engine.report().requests.failed == 0)
    }

    @Test func morePrefillTEsCutTTFTUnderAPrefillBoundLoad() throws {
        func ttftP99(scale: Bool) throws -> Double {
            let engine = try Self.superpod(rate: 230, limit: 9_000)
            if scale { #expect(engine.apply(.scale(role: .prefill, change: .to(12), from: nil)).accepted) }
            engine.run(until: 40)
            ScalingTests.expectSound(engine)
            return engine.report().latencyMs.ttft.p99
        }
        let fixed = try ttftP99(scale: false), scaled = try ttftP99(scale: true)
        #expect(scaled < fixed * 0.7, "TTFT p99 \(fixed) ms with 8 prefill TEs, \(scaled) ms with 12")
    }

    @Test func aScaleThatCannotBeMetSaysWhy() throws {
        let engine = try Self.superpod(rate: 10)
        let decode = engine.apply(.scale(role: .decode, change: .by(1), from: nil))
        #expect(!decode.accepted)
        #expect(decode.message == "a decode TE needs 160 NPUs; 96 are spare", "\(decode.message)")
        let prefill = engine.apply(.scale(role: .prefill, change: .to(15), from: nil))
        #expect(prefill.message == "a prefill TE needs 16 NPUs; 7 TEs need 112; 96 are spare", "\(prefill.message)")
        #expect(!engine.apply(.scale(role: .colocated, change: .to(2), from: nil)).accepted)
        #expect(!engine.apply(.scale(role: .prefill, change: .by(-8), from: nil)).accepted, "at least one TE stays")
        #expect(!engine.apply(.scale(role: .prefill, change: .to(8), from: nil)).accepted, "no change")
        #expect(!engine.apply(.scale(role: .prefill, change: .by(1), from: .dram)).accepted, "no pre-warmed spares")
        #expect(engine.instances.count == 9 && engine.report().scaling?.details.isEmpty == true)
        #expect(engine.commandsApplied == 0)
    }

    /// Spare nodes an operator drained hold idle NPUs a scale may not take: the refusal said
    /// "0 are spare" as if the pool were used up, with no word of the drained 96.
    @Test func aRefusalNamesIdleNPUsOnDrainedNodes() throws {
        let engine = try Self.superpod(rate: 10)
        for node in 36...47 { #expect(engine.apply(.drain(node: node)).accepted) }
        let reply = engine.apply(.scale(role: .prefill, change: .by(1), from: nil))
        #expect(!reply.accepted)
        #expect(reply.message == "a prefill TE needs 16 NPUs; 0 are spare (96 more are idle on drained nodes; undrain to use them)",
                "\(reply.message)")
        #expect(engine.apply(.undrain(node: 47)).accepted)
        let after = engine.apply(.scale(role: .prefill, change: .by(2), from: nil))
        #expect(after.message == "a prefill TE needs 16 NPUs; 2 TEs need 32; 8 are spare (88 more are idle on drained nodes; undrain to use them)",
                "\(after.message)")
    }

    // MARK: Load paths

    @Test func eachLoadPathTakesTheTimeOfItsModel() throws {
        // 671 GB of DeepSeek INT8 at the published bandwidths: ≈2,560 s, ≈320 s, ≈5 s.
        var times: [LoadPath: Double] = [:]
        for path in LoadPath.allCases {
            let engine = try FaultTests.engine(rate: 1, limit: 1) { $0.scaling.prewarmedSpareTEs = 1 }
            let reply = engine.apply(.scale(role: .prefill, change: .by(1), from: path))
            #expect(reply.accepted, "\(path): \(reply.message)")
            let i = engine.instances.count - 1
            engine.run(until: 1.0)   // allocate phase: 1 s
            let life = try #require(engine.scaling.lifecycle[i])
            #expect(life.phase == .loading && life.loadPath == path)
            let seconds = try #require(life.phaseEndsAt) - 1.0
            times[path] = seconds
            let model = try ModelSpec.named("deepseek-r1")
            let settings = ScalingSettings()
            switch path {
            case .objectStore: #expect(abs(seconds - model.weightBytes / settings.objectStoreBytesPerSecond) < 1e-6)
            case .pool: #expect(abs(seconds - model.weightBytes / settings.poolBytesPerSecond) < 1e-6)
            case .dram: #expect(abs(seconds - model.weightBytes / settings.dramBytesPerSecond) < 1e-6)
            case .npuFork:
                // Every die of the new TE gets its weights from a die of the decode TE over UB.
                let spec = engine.instances[i].groupSpec
                let perDie = engine.weightBytesPerDie(spec)
                #expect(abs(seconds - engine.cost.weightCopy(bytes: perDie)) < 1e-6)
            }
            engine.run(until: 1.0 + seconds + 2.0 + 0.01)
            #expect(engine.scaling.phase(i) == .inService)
        }
        let published = ScalingSettings.anchorModelBytes
        #expect(published == 671e9)
        #expect((2_000...3_200).contains(times[.objectStore]!), "object store: \(times[.objectStore]!) s")
        #expect((250...400).contains(times[.pool]!), "pool: \(times[.pool]!) s")
        #expect((3...8).contains(times[.dram]!), "DRAM: \(times[.dram]!) s")
        #expect(times[.npuFork]! < 2, "NPU-fork: \(times[.npuFork]!) s")
    }

    @Test func theFastestAvailablePathIsChosen() throws {
        func path(_ configure: @escaping (inout EngineConfiguration) -> Void) throws -> LoadPath? {
            let engine = try FaultTests.engine(rate: 1, limit: 1, configure: configure)
            #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
            engine.run(until: 1)
            return engine.scaling.lifecycle[engine.instances.count - 1]?.loadPath
        }
        #expect(try path { _ in } == .npuFork)
        #expect(try path { $0.scaling.npuForkEnabled = false } == .pool)
        #expect(try path { $0.scaling.npuForkEnabled = false; $0.scaling.prewarmedSpareTEs = 1 } == .dram)
        #expect(try path { $0.scaling.npuForkEnabled = false; $0.scaling.modelInPool = false } == .objectStore)
    }

    // MARK: Faults during a scale

    @Test func forkSourceDyingMidCopyRestartsTheCopyFromAnotherSource() throws {
        // The fault lands right after the copy starts (the allocate phase is 1 s, the copy well
        // under a second).
        let engine = try FaultTests.engine(rate: 20, limit: 200)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
        let i = engine.instances.count - 1
        engine.run(until: 1.0)
        let life = try #require(engine.scaling.lifecycle[i])
        #expect(life.phase == .loading)
        let source = try #require(life.forkSource)
        let npu = engine.cluster.npus(of: source)[0]
        #expect(engine.apply(.faultNPU(npu)).accepted)
        let after = try #require(engine.scaling.lifecycle[i])
        #expect(after.phase == .loading)
        #expect(after.forkSource != source, "another running TE is the source now")
        #expect(FaultTests.events(engine, .scaling).contains { $0.contains("lost a die mid-copy; the copy starts over") })
        engine.run(until: 10)
        #expect(engine.scaling.phase(i) == .inService)
        #expect(engine.runToCompletion(limit: 3_600))
        ScalingTests.expectSound(engine)
    }

    @Test func aStartingTEsNPUDyingAbandonsTheStart() throws {
        // fault-pod has 8 spare NPUs: one prefill TE's worth. A dead NPU leaves none for a replacement.
        let engine = try FaultTests.engine(rate: 20, limit: 200)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: .objectStore)).accepted)
        let i = engine.instances.count - 1
        engine.run(until: 5)
        #expect(engine.scaling.phase(i) == .loading)
        let npu = engine.cluster.npus(of: i)[2]
        #expect(engine.apply(.faultNPU(npu)).accepted)
        #expect(engine.scaling.phase(i) == .retired)
        #expect(engine.spareNPUs().count == 7, "its healthy NPUs are back; the dead one is out for repair")
        let detail = try #require(engine.report().scaling?.details.first)
        #expect(detail.to == detail.from && detail.readyS == nil && detail.cancelled == 0 && detail.lost == 1,
                "the scale falls one TE short: it reached nothing, so it never became ready")
        #expect(engine.report().faults.recovered == 1)
        #expect(FaultTests.events(engine, .scaling).contains { $0.contains("scale falls one TE short") })
        #expect(engine.runToCompletion(limit: 3_600))
        ScalingTests.expectSound(engine)

        // On the default pod a replacement starts on fresh spares.
        let pod = try Self.superpod(rate: 10)
        #expect(pod.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
        pod.run(until: 0.5)
        #expect(pod.apply(.faultNPU(pod.cluster.npus(of: 9)[0])).accepted)
        #expect(pod.scaling.phase(9) == .retired && pod.scaling.phase(10) == .allocating)
        pod.run(until: 8)
        #expect(pod.scaling.phase(10) == .inService)
        #expect(pod.report().scaling?.details.first?.to == 9)
        ScalingTests.expectSound(pod)
    }

    /// A scale-up whose every start lost its hardware to a fault, with no spares to start over
    /// on, says so (a review saw `{from 8, to 8, ready_s null, load_path null}` and `scale_ups 0`,
    /// nothing saying why): `lost` counts the starts, and an event says it came to nothing.
    @Test func aScaleUpWhoseStartsAllLostTheirHardwareSaysSo() throws {
        let engine = try Self.superpod(rate: 10)
        engine.run(until: 5)
        let before = engine.instances.count
        #expect(engine.apply(.scale(role: .prefill, change: .by(6), from: nil)).accepted)
        let started = Array(before..<engine.instances.count)
        #expect(started.count == 6)
        let perNode = engine.cluster.npusPerNode
        let nodes = Set(started.flatMap { engine.cluster.npus(of: $0).map { $0 / perNode } }).sorted()
        engine.run(until: 5.2)
        for node in nodes { #expect(engine.apply(.faultNode(node)).accepted) }
        #expect(started.allSatisfy { engine.scaling.phase($0) == .retired })
        engine.run(until: 20)
        let scaling = try #require(engine.report().scaling)
        #expect(scaling.scaleUps == 0)
        #expect(scaling.details.first == ScaleDetail(role: "prefill", from: 8, to: 8, requestedS: 5, readyS: nil,
                                                     loadPath: nil, cancelled: 0, lost: 6))
        let json = String(decoding: try JSONEncoder().encode(scaling.details[0]), as: UTF8.self)
        #expect(json.contains("\"lost\":6"), "\(json)")
        #expect(try JSONDecoder().decode(ScaleDetail.self, from: Data(json.utf8)) == scaling.details[0])
        #expect(FaultTests.events(engine, .scaling).contains {
            $0.contains("prefill scale-up asked for at 5 s came to nothing: all 6 of its starts lost their hardware before coming into service")
        })
        // An operation that lost nothing keeps its bytes: no `lost` key.
        let plain = ScaleDetail(role: "prefill", from: 8, to: 9, requestedS: 1, readyS: 4, loadPath: .npuFork)
        #expect(!String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("lost"))
        ScalingTests.expectSound(engine)
    }

    /// A scale-up cancelled before it was ready is not reported as finished (a review saw
    /// `{"from":8,"to":9,"load_path":"object-store","ready_s":10}` and `scale_ups 1` for a TE whose
    /// 2,560 s object-store load was cancelled at 10 s): it reached nothing, never became ready,
    /// counts its cancelled start, and keeps the path it was loading by.
    @Test func aScaleUpCancelledWhileLoadingReachedNothing() throws {
        let engine = try Self.superpod(rate: 10)
        engine.run(until: 5)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: .objectStore)).accepted)
        engine.run(until: 10)
        #expect(engine.scaling.phase(9) == .loading)
        let down = engine.apply(.scale(role: .prefill, change: .by(-1), from: nil))
        #expect(down.accepted && down.message.hasSuffix("prefill 9 → 8 TEs: prefill-8 (start cancelled) never came into service; "
            + "its NPUs are back in the spare pool"), "\(down.message)")
        engine.run(until: 20)
        let scaling = try #require(engine.report().scaling)
        #expect(scaling.scaleUps == 0 && scaling.scaleDowns == 1)
        #expect(scaling.details.first == ScaleDetail(role: "prefill", from: 8, to: 8, requestedS: 5, readyS: nil,
                                                     loadPath: .objectStore, cancelled: 1))
        #expect(scaling.details.last == ScaleDetail(role: "prefill", from: 9, to: 8, requestedS: 10, readyS: 10, loadPath: nil))
        let json = String(decoding: try JSONEncoder().encode(scaling.details[0]), as: UTF8.self)
        #expect(json.contains("\"ready_s\":null") && json.contains("\"cancelled\":1") && json.contains("\"load_path\":\"object-store\""), "\(json)")
        #expect(try JSONDecoder().decode(ScaleDetail.self, from: Data(json.utf8)) == scaling.details[0])
        #expect(FaultTests.events(engine, .scaling).contains {
            $0.contains("prefill scale-up asked for at 5 s came to nothing: its start was cancelled before coming into service")
        })
        ScalingTests.expectSound(engine)
    }

    /// `scale prefill 12` then `scale prefill 3` before the four starts are ready: all four are
    /// cancelled while allocating (no load path), the scale-up reached nothing.
    @Test func aScaleUpCancelledWhileAllocatingHasNoPath() throws {
        let engine = try Self.superpod(rate: 10)
        engine.run(until: 5)
        #expect(engine.apply(.scale(role: .prefill, change: .to(12), from: nil)).accepted)
        engine.run(until: 5.5)
        let down = engine.apply(.scale(role: .prefill, change: .to(3), from: nil))
        #expect(down.accepted && down.message.components(separatedBy: "(start cancelled)").count == 5, "\(down.message)")
        #expect(down.message.hasSuffix("prefill-8 (start cancelled) never came into service; their NPUs are back in the spare pool; "
            + "prefill-7, prefill-6, prefill-5, prefill-4, prefill-3 stop taking work, finish what they hold, then return their NPUs"),
                "\(down.message)")
        engine.run(until: 30)
        let scaling = try #require(engine.report().scaling)
        #expect(scaling.scaleUps == 0 && scaling.scaleDowns == 1)
        #expect(scaling.details.first == ScaleDetail(role: "prefill", from: 8, to: 8, requestedS: 5, readyS: nil,
                                                     loadPath: nil, cancelled: 4))
        #expect(FaultTests.events(engine, .scaling).contains { $0.contains("all 4 of its starts were cancelled") })
        ScalingTests.expectSound(engine)
    }

    /// Two scale-ups, the slow one cancelled after the fast one came into service: one scale-up
    /// finished, the other reached nothing; the fast one's `ready_s` is its own.
    @Test func aCancelOnlyTouchesTheScaleUpWhoseStartItCancels() throws {
        let engine = try Self.superpod(rate: 10)
        engine.run(until: 1)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: .objectStore)).accepted)
        engine.run(until: 2)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
        engine.run(until: 10)
        #expect(engine.scaling.phase(9) == .loading && engine.scaling.phase(10) == .inService)
        #expect(engine.apply(.scale(role: .prefill, change: .by(-1), from: nil)).accepted)
        engine.run(until: 20)
        let scaling = try #require(engine.report().scaling)
        #expect(scaling.scaleUps == 1 && scaling.scaleDowns == 1)
        let (slow, fast) = (scaling.details[0], scaling.details[1])
        #expect(slow.to == slow.from && slow.cancelled == 1 && slow.readyS == nil && slow.loadPath == .objectStore)
        #expect(fast.from == 9 && fast.to == 10 && fast.cancelled == 0 && fast.loadPath == .npuFork)
        let ready = try #require(fast.readyS)
        #expect(ready > 2 && ready < 7)
        #expect(engine.scaling.phase(10) == .inService, "the fast TE stays")
        ScalingTests.expectSound(engine)
    }

    @Test func drainAndScaleInOfTheSameNodeDoNotFight() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 400)
        engine.run(until: 2)
        // prefill-1 is NPUs 8–15 = node 1.
        #expect(engine.apply(.drain(node: 1)).accepted)
        #expect(engine.apply(.scale(role: .prefill, change: .to(1), from: nil)).accepted)
        #expect(engine.scaling.phase(1) == .draining)
        engine.run(until: 30)
        #expect(engine.scaling.phase(1) == .retired)
        #expect(engine.snapshot().drainedNodes == [1])
        #expect(!engine.spareNPUs().contains(8), "a drained node's NPUs stay out of the pool")
        #expect(engine.apply(.undrain(node: 1)).accepted)
        #expect(engine.spareNPUs().contains(8))
        #expect(engine.instances[1].groups.allSatisfy { !engine.cluster.isPlaceable(te: 1, group: $0) },
                "undrain does not bring a scaled-in TE back")
        // And a scale-up may reuse the node.
        #expect(engine.apply(.scale(role: .prefill, change: .to(2), from: nil)).accepted)
        engine.run(until: 40)
        #expect(engine.runToCompletion(limit: 3_600))
        ScalingTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    /// A scale-in retires first a TE that takes no work anyway (its node drained), then the
    /// newest. It used to retire the newest and keep the drained prefill-0: the pod then took
    /// no prompt at all, and every arrival was rejected ("no prefill TE accepts work").
    @Test func scaleInRetiresADrainedTEBeforeOneThatServes() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 400)
        engine.run(until: 2)
        // prefill-0 is NPUs 0–7 = node 0.
        #expect(engine.apply(.drain(node: 0)).accepted)
        let reply = engine.apply(.scale(role: .prefill, change: .to(1), from: nil))
        #expect(reply.accepted && reply.message.contains("prefill-0 stops taking work"), "\(reply.message)")
        #expect(engine.scaling.phase(0) == .draining)
        #expect(engine.scaling.phase(1) == .inService)
        engine.run(until: 30)
        #expect(engine.report().requests.rejected == 0, "\(engine.report().requests.rejectionReasons)")
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed == 0)
        ScalingTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    /// A TE scaled in while out of service (awaiting repair with no spare to fork onto, or
    /// restarting) holds nothing and is retired at once. It used to wait on the step it was
    /// stuck in when its die died: a TE awaiting repair was never retired (the scale never
    /// completed, its healthy NPUs never came back) and a restarting one only after the restart.
    @Test(arguments: ["fine-grained", "pd-failover"])
    func aTEOutOfServiceIsScaledInAtOnce(policy: String) throws {
        let engine = try FaultTests.engine(rate: 40, limit: 400) {
            $0.recoveryPolicy = policy
            $0.faults.componentRestartSeconds = 300
        }
        engine.run(until: 2)
        // Node 5 holds the fault pod's spare NPUs: drained, no fork can replace prefill-0's.
        #expect(engine.apply(.drain(node: 5)).accepted)
        #expect(engine.apply(.faultNode(0)).accepted)
        engine.run(until: 8)
        #expect(engine.faults.outage(of: 0) != nil, "prefill-0 is out after detection")
        let reply = engine.apply(.scale(role: .prefill, change: .to(1), from: nil))
        #expect(reply.accepted && reply.message.contains("prefill-0 stops taking work"), "\(reply.message)")
        engine.run(until: 12)
        #expect(engine.scaling.phase(0) == .retired)
        #expect(engine.report().scaling?.details.last?.readyS != nil, "\(String(describing: engine.report().scaling?.details))")
        // Repaired, node 0's NPUs join the spare pool: nothing holds them any more.
        #expect(engine.apply(.healAll).accepted)
        #expect(engine.spareNPUs().contains(0))
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed == 0, "\(engine.report().requests.failureReasons)")
        ScalingTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    /// A TE being scaled in that loses a die retires instead of taking a spare NPU: a spare
    /// forked onto it would come straight back when it retires, and meanwhile no starting TE or
    /// other fault could have it (it used to get an NPU-fork from the spare pool).
    @Test func aTEBeingScaledInThatLosesADieTakesNoSpare() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 400)
        engine.run(until: 2)
        let spares = engine.spareNPUs()
        #expect(spares == Array(40..<48))
        // prefill-1 is NPUs 8–15: its first die stalls it, and the scale-in picks the newest TE.
        #expect(engine.apply(.faultNPU(8)).accepted)
        let reply = engine.apply(.scale(role: .prefill, change: .to(1), from: nil))
        #expect(reply.accepted && reply.message.contains("prefill-1 stops taking work"), "\(reply.message)")
        engine.run(until: 12)
        let lines = engine.recentEvents().map(\.message)
        #expect(!lines.contains { $0.contains("with spare") }, "\(lines.filter { $0.contains("prefill-1") })")
        #expect(lines.contains { $0.contains("prefill-1 out of service being scaled in") }, "\(lines.filter { $0.contains("prefill-1") })")
        #expect(engine.scaling.phase(1) == .retired)
        #expect(engine.spareNPUs() == Array(9..<16) + spares, "the healthy NPUs come back, the dead one stays out")
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed == 0, "\(engine.report().requests.failureReasons)")
        ScalingTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    // MARK: Autoscaler

    @Test func sloAutoscalerBeatsOffOnARateStep() throws {
        func run(_ autoscale: String) throws -> (RunReport, RunReport) {
            let engine = try Self.superpod(rate: 40, limit: 40_000) { $0.scaling.autoscale = autoscale }
            engine.run(until: 10)
            _ = engine.apply(.rate(requestsPerSecond: 250))
            engine.run(until: 70)
            _ = engine.apply(.rate(requestsPerSecond: 40))
            engine.run(until: 80)
            ScalingTests.expectSound(engine)
            let during = engine.report()
            // After the surge the prefill side has room again: the autoscaler gives TEs back.
            engine.run(until: 200)
            ScalingTests.expectSound(engine)
            return (during, engine.report())
        }
        let (off, _) = try run("off"), (slo, later) = try run("slo")
        #expect(off.scaling?.details.isEmpty == true)
        let ups = slo.scaling?.details.filter { $0.to > $0.from } ?? []
        #expect(!ups.isEmpty && ups.allSatisfy { $0.role == "prefill" && $0.loadPath == .npuFork })
        #expect(ups.allSatisfy { $0.requestedS > 10 }, "no scale-up before the surge: \(ups)")
        #expect(slo.slo.attainment > off.slo.attainment,
                "attainment \(off.slo.attainment) off, \(slo.slo.attainment) slo; \(slo.scaling?.details ?? [])")
        let downs = later.scaling?.details.filter { $0.to < $0.from } ?? []
        #expect(!downs.isEmpty && downs.allSatisfy { $0.role == "prefill" && $0.requestedS > 70 && $0.to == $0.from - 1 },
                "\(later.scaling?.details ?? [])")
    }

    @Test func anIdlePrefillSideIsNotScaledUpWhateverTTFT() {
        // The old policy's failure: TTFT p90 above 80% of the SLO at 40 req/s (long prompts),
        // prefill a quarter busy. More prefill TEs would not help.
        var load = ClusterLoad()
        load.prefill.inService = 8
        load.prefill.npusPerTE = 16
        load.decode.inService = 1
        load.decode.npusPerTE = 160
        load.spareNPUs = 96
        load.prefillGroupBusyShare = 0.1
        load.recentTTFTp90Ms = 1_900
        var policy = SLOAutoscaler()
        for t in 1...50 { #expect(policy.evaluate(load, now: Double(t) * 5).allSatisfy { $0.delta < 0 }) }
        // Busy alone (TTFT fine, no backlog) is not a shortfall either.
        load.prefillGroupBusyShare = 0.9
        load.recentTTFTp90Ms = 900
        for t in 51...60 { #expect(policy.evaluate(load, now: Double(t) * 5).isEmpty) }
        // Busy and a backlog: two evaluations, then a step.
        load.prefillQueueWaitSeconds = 1
        #expect(policy.evaluate(load, now: 305).isEmpty)
        #expect(policy.evaluate(load, now: 310).map(\.delta) == [4], "wait 1 s = 2× its threshold: half of 8 more")
    }

    @Test func prefillScalesDownWhenTheTEsLeftHaveRoomWithCooldownAndVeto() {
        var load = ClusterLoad()
        load.prefill.inService = 12
        load.prefill.npusPerTE = 16
        load.spareNPUs = 32
        load.prefillGroupBusyShare = 0.3     // 12 × 0.3 = 3.6 TEs of work: 11 TEs would be 33% busy
        load.recentTTFTp90Ms = 900           // above the old policy's 600 ms floor: no longer matters
        var policy = SLOAutoscaler()
        let p = policy.parameters
        var decisions: [(SimTime, ScalingDecision)] = []
        var t = 0.0
        while t < 600 {
            t += p.intervalSeconds
            for d in policy.evaluate(load, now: t) {
                decisions.append((t, d))
                load.prefill.inService += d.delta
                load.prefillGroupBusyShare = 3.6 / Double(load.prefill.inService)
            }
        }
        #expect(decisions.allSatisfy { $0.1.delta == -1 && $0.1.role == .prefill })
        #expect(decisions.first?.0 == Double(p.downEvaluations) * p.intervalSeconds, "after 60 s of room")
        let gaps = zip(decisions.dropFirst(), decisions).map { $0.0 - $1.0 }
        #expect(gaps.allSatisfy { $0 >= p.downCooldownSeconds }, "\(gaps)")
        // It stops where one TE fewer would pass 50% busy: 3.6 TEs of work on 8 → 7 would be 51%.
        #expect(load.prefill.inService == 8, "\(decisions.map(\.1.reason))")
        #expect(decisions.first?.1.reason.contains("one TE fewer would be 33% busy") == true)

        // A backlog or a missed TTFT SLO keeps the TEs.
        for (wait, ttft) in [(0.5, 500.0), (0, 1_100)] {
            var held = ClusterLoad()
            held.prefill.inService = 12
            held.prefill.npusPerTE = 16
            held.prefillGroupBusyShare = 0.2
            held.prefillQueueWaitSeconds = wait
            held.recentTTFTp90Ms = ttft
            var policy = SLOAutoscaler()
            for t in 1...100 { #expect(policy.evaluate(held, now: Double(t) * 5).isEmpty) }
        }
    }

    /// TEs out for a recovery are not room: their queues are empty because they take no work.
    /// With any prefill TE restarting, the idle signals never scale prefill in (the autoscaler
    /// took a TE away in the middle of a restart-the-world outage).
    @Test func noScaleInWhileATEIsOutForRecovery() throws {
        var load = ClusterLoad()
        load.prefill.inService = 4
        load.prefill.recovering = 8
        load.prefill.npusPerTE = 16
        load.prefillGroupBusyShare = 0.05
        var policy = SLOAutoscaler()
        for t in 1...40 { #expect(policy.evaluate(load, now: Double(t) * 5).isEmpty) }
        load.prefill.recovering = 0
        let later = (41...80).flatMap { policy.evaluate(load, now: Double($0) * 5) }
        #expect(later.first?.delta == -1, "room once every TE is back: \(later)")

        // The engine counts a restarting TE as recovering, not in service.
        let engine = try FaultTests.engine(rate: 20, limit: 200) { $0.recoveryPolicy = "restart-world" }
        engine.run(until: 2)
        let prefill = engine.instances.filter { $0.role == .prefill }.count
        #expect(engine.clusterLoad().prefill.inService == prefill)
        #expect(engine.apply(.faultGlitch).accepted)
        let during = engine.clusterLoad()
        #expect(during.prefill.inService == 0 && during.prefill.recovering == prefill, "\(during.prefill)")
    }

    @Test func autoscalerDecisionsAreLoggedAndRespectTheFloorAndThePool() throws {
        var load = ClusterLoad()
        load.prefill = .init()
        load.prefill.inService = 8
        load.prefill.npusPerTE = 16
        load.decode.inService = 1
        load.decode.npusPerTE = 160
        load.spareNPUs = 32
        load.prefillQueueWaitSeconds = 3
        load.prefillGroupBusyShare = 0.95
        load.decodeKVUsage = 0.95
        var policy = SLOAutoscaler()
        #expect(policy.evaluate(load, now: 5).isEmpty, "hysteresis: one evaluation is not enough")
        let decisions = policy.evaluate(load, now: 10)
        #expect(decisions.map(\.delta) == [2], "prefill +2 (a quarter of 8); decode cannot fit in 32 spare NPUs")
        #expect(decisions.first?.reason.contains("queued prompt tokens") == true)
        #expect(policy.evaluate(load, now: 15).isEmpty && policy.evaluate(load, now: 20).isEmpty, "cooldown")
        // Idle: scales down one at a time, never below one TE.
        var idle = ClusterLoad()
        idle.prefill.inService = 1
        idle.prefill.npusPerTE = 16
        idle.spareNPUs = 96
        var quiet = SLOAutoscaler()
        for t in 1...100 { #expect(quiet.evaluate(idle, now: Double(t) * 5).isEmpty) }
    }

    /// The autoscaler scales prefill and decode TEs. On colocated replicas `autoscale slo` was
    /// taken ("evaluates every 5 s") and then never acted, whatever the load; the reply and, for
    /// `--autoscale slo`, the event log now say it scales nothing there.
    @Test func anAutoscalerWithNothingToScaleSaysSo() throws {
        let colocated = try FaultTests.engine(rate: 5, limit: 20, deployment: TestDeployments.colocatedLlama())
        let reply = colocated.apply(.autoscale("slo"))
        #expect(reply.accepted && reply.message.contains("has none it can scale")
                && reply.message.contains("scale colocated N"), "\(reply.message)")
        let started = try FaultTests.engine(rate: 5, limit: 20, deployment: TestDeployments.colocatedLlama()) {
            $0.scaling.autoscale = "slo"
        }
        #expect(started.recentEvents().contains { $0.message.contains("has none it can scale") })
        let disaggregated = try FaultTests.engine(rate: 5, limit: 20)
        let plain = disaggregated.apply(.autoscale("slo"))
        #expect(plain.accepted && !plain.message.contains("none it can scale"), "\(plain.message)")
    }

    // MARK: Determinism

    @Test func sameSeedAndCommandsGiveTheSameReport() throws {
        func report() throws -> Data {
            let engine = try FaultTests.engine(rate: 60, limit: 600) { $0.scaling.autoscale = "slo" }
            engine.run(until: 3)
            _ = engine.apply(.scale(role: .prefill, change: .by(1), from: nil))
            engine.run(until: 15)
            _ = engine.apply(.scale(role: .prefill, change: .by(-1), from: nil))
            engine.runToCompletion(limit: 3_600)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return try encoder.encode(engine.report())
        }
        let a = try report(), b = try report()
        #expect(a == b)
        #expect(String(decoding: a, as: UTF8.self).contains("\"scale_ups\":1"))
    }

    // MARK: Helpers

    static func superpod(rate: Double, limit: Int = 4_000,
                         configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: .superpod, seed: 1, syntheticRate: rate)
        config.eventCapacity = 100_000
        config.expertSkew = false
        configure(&config)
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: rate)
        synthetic.maxRequests = limit
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 1, configuration: synthetic))
    }

    static func expectSound(_ engine: ServingEngine, sourceLocation: SourceLocation = #_sourceLocation) {
        for problem in engine.audit() + engine.inFlightProblems() {
            Issue.record("\(problem)", sourceLocation: sourceLocation)
        }
    }
}

/// EPLB around TEs that scaling retired.
@Suite(.timeLimit(.minutes(10))) struct RetiredTEExpertTests {
    /// A TE scaled in gives its NPUs back; its EPLB controller kept its 60 s cadence and planned
    /// (and could start) swaps onto dies it no longer had, logged as the TE's rebalances (seen in
    /// the daily cycle with `--autoscale slo`: "prefill-16: rebalance started … 32 dies get new
    /// experts" long after prefill-16 was scaled in).
    @Test func aRetiredTEPlansNoRebalance() async throws {
        let (retired, retiredLines, othersPlan, problems) = try await offPool { () throws -> (Bool, [String], Bool, [String]) in
            let engine = try ScalingTests.superpod(rate: 40, limit: 2_000) {
                $0.eplb = .on
                $0.expertSkew = true
            }
            engine.run(until: 1)
            #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
            let new = engine.instances.count - 1
            engine.run(until: 10)
            #expect(engine.apply(.scale(role: .prefill, change: .by(-1), from: nil)).accepted)
            engine.run(until: 80)
            let name = engine.instances[new].name
            let later = engine.recentEvents().filter { $0.kind == .rebalance && $0.time > 11 }
            return (engine.isRetired(new), later.filter { $0.message.hasPrefix("\(name):") }.map(\.message),
                    later.contains { !$0.message.hasPrefix("\(name):") }, engine.audit() + engine.inFlightProblems())
        }
        #expect(retired)
        #expect(retiredLines.isEmpty, "\(retiredLines)")
        // The TEs still serving keep their cadence.
        #expect(othersPlan)
        #expect(problems.isEmpty, "\(problems)")
    }
}
