import PodModel
import Testing
@testable import ServingEngine

/// A GPU deployment's fault texts said "die 1 runs 2× slower" and "uncorrectable HBM error on
/// die 1": a one-die GPU has no die apart from the GPU, and the console, its help and fault menu
/// say "GPU 1" (the console used to rewrite the engine's text, so the report, the HTTP event
/// stream and the console disagreed). The engine now names the die by the hardware's word, so
/// every consumer says "GPU 1"; the superpod (a die is half a 910C chip) keeps "die N".
@Suite struct GPUFaultDieWordingTests {
    static let gpu = "colocated:2:llama-2-7b:nvidia-a100:tp1"

    static func engine(_ spec: String, _ lines: [String], until end: Double = 30) throws -> (ServingEngine, [CommandReply]) {
        let d = try Deployment.resolve(spec)
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1, syntheticRate: 4))
        engine.run(until: 5)
        let replies = try lines.map { engine.apply(try OperatorCommand.parse($0).get()) }
        engine.run(until: end)
        return (engine, replies)
    }

    /// Every text a fault leaves: the reply, the event log, the active-fault line, the report's
    /// detection and recovery stories.
    static func texts(_ engine: ServingEngine, _ replies: [CommandReply]) -> [String] {
        replies.map(\.message) + engine.recentEvents().map(\.message)
            + engine.activeFaultStatuses().map(\.description)
            + engine.faultDetails().flatMap { [$0.detection, $0.recovery] }
    }

    @Test func gpuStragglerAndHBMNameTheGPU() throws {
        let (engine, replies) = try Self.engine(Self.gpu, ["fault straggler die 1 slowdown 2", "fault hbm die 0"])
        #expect(replies.allSatisfy { $0.accepted })
        #expect(replies[0].message == "fault 1: GPU 1 runs 2× slower (straggler)", "\(replies[0].message)")
        #expect(replies[1].message == "fault 2: uncorrectable HBM error on GPU 0", "\(replies[1].message)")
        #expect(engine.activeFaultStatuses().first?.description.hasPrefix("straggler GPU 1 (2× slower)") == true,
                "\(engine.activeFaultStatuses().map(\.description))")
        let texts = Self.texts(engine, replies)
        #expect(texts.contains { $0.contains("shows GPU 1 2× slower than its peers") }, "\(texts)")
        #expect(texts.contains { $0.contains("GPU 0: uncorrectable ECC error") }, "\(texts)")
        // A fault listed by its command ("fault hbm die 0 · detected …") echoes the `:` language,
        // which takes die ids on every kind of hardware: only the engine's own words are checked.
        for text in texts where !text.hasPrefix("fault hbm die") {
            #expect(!text.contains("die 0") && !text.contains("die 1"), "\(text)")
        }
    }

    @Test func superpodKeepsDie() throws {
        let (engine, replies) = try Self.engine("superpod", ["fault straggler die 74 slowdown 2", "fault hbm die 12"])
        #expect(replies[0].message == "fault 1: die 74 runs 2× slower (straggler)")
        #expect(replies[1].message == "fault 2: uncorrectable HBM error on die 12")
        #expect(engine.activeFaultStatuses().first?.description.hasPrefix("straggler die 74 (2× slower)") == true)
        let texts = Self.texts(engine, replies)
        #expect(texts.contains { $0.contains("shows die 74 2× slower than its peers") }, "\(texts)")
        for text in texts { #expect(!text.contains("GPU"), "\(text)") }
    }
}
