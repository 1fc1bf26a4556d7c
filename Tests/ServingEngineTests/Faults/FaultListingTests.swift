import PodModel
import Testing
@testable import ServingEngine

/// An active fault as the engine sends it to the faces: listed with the hardware's device names
/// (the console rewrote the command's words for display, and parsed them to mark its grid), and
/// with the chips it touches and how, so that no face reads the description's words. The `:`
/// language and the report's `command` keep the words the operator typed.
@Suite struct FaultListingTests {
    static let gpu = "colocated:2:llama-2-7b:nvidia-a100:tp1"

    static func engine(_ spec: String, _ lines: [String]) throws -> ServingEngine {
        let d = try Deployment.resolve(spec)
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1, syntheticRate: 2))
        engine.run(until: 1)
        for line in lines { #expect(engine.apply(try OperatorCommand.parse(line).get()).accepted, "\(line)") }
        engine.run(until: 2)
        return engine
    }

    /// On a one-die GPU the commands' "die 0" and "npu 1" are GPU 0 and GPU 1: the listing, the
    /// heal event and the node agent's report say so; the report keeps the command.
    @Test func aGPUsFaultsAreListedWithItsDeviceNames() throws {
        let engine = try Self.engine(Self.gpu, ["fault hbm die 0", "fault die 1", "fault npu 2", "fault straggler die 3"])
        let listed = engine.snapshot().activeFaults.map { $0.description.components(separatedBy: " · ")[0] }
        #expect(listed == ["fault hbm GPU 0", "fault GPU 1", "fault GPU 2", "straggler GPU 3 (3× slower)"])
        #expect(engine.faultDetails().map(\.command) == ["fault hbm die 0", "fault die 1", "fault npu 2",
                                                          "fault straggler die 3"])
        #expect(engine.apply(try OperatorCommand.parse("heal 1").get()).accepted)
        let healed = engine.snapshot().events.last { $0.kind == .heal }?.message
        #expect(healed == "fault 1 healed (fault hbm GPU 0)")
        // A straggler's heal names its GPU too ("fault straggler die 3" beside "straggler GPU 3").
        #expect(engine.apply(try OperatorCommand.parse("heal 4").get()).accepted)
        #expect(engine.snapshot().events.last { $0.kind == .heal }?.message == "fault 4 healed (fault straggler GPU 3)")
    }

    /// A dead GPU's events, from injection through detection to recovery, name GPUs: "GPU 2 (die
    /// 2)", "device check: die 2 dead" and "no spare NPUs" named parts a GPU cluster does not have.
    /// NPU-fork keeps its name (DeepServe's mechanism, whatever the device).
    @Test func aDeadGPUsEventsNameGPUs() throws {
        // Eight GPUs, all in use: no spare to copy onto, so the TE waits for repair.
        let engine = try Self.engine("colocated:4:llama-3-70b:nvidia-a100:tp2", ["fault npu 2"])
        engine.run(until: 10)
        let messages = engine.snapshot().events.filter { [.fault, .faultDetected, .recovery].contains($0.kind) }
            .map(\.message)
        #expect(messages.contains { $0.hasPrefix("fault 1: GPU 2 dead; stalls ") }, "\(messages)")
        #expect(messages.contains { $0.hasSuffix("device check: GPU 2 dead") }, "\(messages)")
        #expect(messages.contains { $0.contains("until repaired (no spare GPUs)") }, "\(messages)")
        #expect(engine.apply(try OperatorCommand.parse("heal 1").get()).accepted)
        engine.run(until: 20)
        #expect(engine.snapshot().events.contains { $0.message.hasSuffix("back in service (its GPUs repaired)") },
                "\(engine.snapshot().events.map(\.message))")
        let words = messages.joined(separator: "\n").replacingOccurrences(of: "NPU-fork", with: "")
        #expect(!words.contains("die") && !words.contains("NPU"), "\(messages)")
        #expect(engine.faultDetails().first?.detection.hasSuffix("device check finds the dead GPUs") == true)
        // The superpod's words are unchanged.
        let pod = try Self.engine("superpod", ["fault npu 163"])
        pod.run(until: 10)
        let podMessages = pod.snapshot().events.map(\.message)
        #expect(podMessages.contains { $0.hasPrefix("fault 1: NPU 163 (dies 326–327) dead; stalls ") }, "\(podMessages)")
        #expect(podMessages.contains { $0.hasSuffix("device check: dies 326, 327 dead") }, "\(podMessages)")
    }

    /// The superpod lists each fault by its command, as before.
    @Test func aSuperpodsFaultsAreListedByTheirCommands() throws {
        let lines = ["fault hbm die 74", "fault die 9", "fault npu 163", "fault node 3", "fault link 10-200"]
        let engine = try Self.engine("superpod", lines)
        #expect(engine.snapshot().activeFaults.map { $0.description.components(separatedBy: " · ")[0] } == lines)
        #expect(engine.apply(try OperatorCommand.parse("heal 1").get()).accepted)
        #expect(engine.snapshot().events.last { $0.kind == .heal }?.message == "fault 1 healed (fault hbm die 74)")
    }

    /// Every command that names a die or a device, listed and described on both kinds of hardware.
    /// The listing and the description come from one formatter (the listing once copied the
    /// straggler's ` slowdown F` by hand); the description, the text of the command log, the
    /// report's `fault_details[].command` and the run summary, is the same on every hardware and
    /// reads back as the command. Any other command lists as its description.
    @Test func everyCommandThatNamesADieListsAndDescribesItsWordsOnEachHardware() throws {
        let described = ["fault die 3", "fault hbm die 3", "fault straggler die 3", "fault straggler die 3 slowdown 4",
                         "fault straggler die 3 slowdown 2.5", "fault npu 3"]
        let commands: [OperatorCommand] = [.faultDie(3), .faultHBM(die: 3), .faultStraggler(die: 3, slowdown: nil),
                                           .faultStraggler(die: 3, slowdown: 4), .faultStraggler(die: 3, slowdown: 2.5),
                                           .faultNPU(3)]
        #expect(commands.map(\.description) == described)
        #expect(described.map { try? OperatorCommand.parse($0).get() } == commands)
        let superpod = try Self.engine("superpod", []), gpu = try Self.engine(Self.gpu, [])
        #expect(commands.map(superpod.listing) == described)
        #expect(commands.map(gpu.listing) == ["fault GPU 3", "fault hbm GPU 3", "fault straggler GPU 3",
                                              "fault straggler GPU 3 slowdown 4", "fault straggler GPU 3 slowdown 2.5",
                                              "fault GPU 3"])
        let others: [OperatorCommand] = [.faultNode(1), .faultLink(from: 2, to: 3, degrade: 1.5),
                                         .faultLink(from: 2, to: 3, degrade: nil), .faultGlitch, .heal(faultID: 1),
                                         .healAll, .drain(node: 1), .rate(requestsPerSecond: 0.5)]
        for engine in [superpod, gpu] { #expect(others.map(engine.listing) == others.map(\.description)) }
    }

    /// Each fault carries the chips it touches (die D is on chip D / dies per chip) and its effect.
    @Test func eachFaultNamesTheChipsItTouchesAndHow() throws {
        let superpod = try Self.engine("superpod", ["fault hbm die 74", "fault die 9", "fault npu 163", "fault node 3",
                                                    "fault link 200-10 degrade 2", "fault straggler die 5"])
        let faults = superpod.snapshot().activeFaults
        #expect(faults.map(\.effect) == [.hbm, .dead, .dead, .dead, .link, .slow])
        #expect(faults.map(\.chips) == [[37], [4], [163], Array(24...31), [10, 200], [2]])
        // A network glitch (over within the step it hits) touches no chip.
        #expect(superpod.touchedChips(.glitch) == (nil, nil))
        let gpu = try Self.engine(Self.gpu, ["fault hbm die 3", "fault straggler die 5"])
        #expect(gpu.snapshot().activeFaults.map(\.chips) == [[3], [5]])
    }
}
