import PodModel
import ServingEngine
import Testing

@testable import Console

/// xdeepserve-ma's expert dies hold expert weights and no KV (the attention dies hold it), yet
/// the Pod view's detail of one drew "KV    ···················· 0%", an empty meter of a cache
/// it does not have, read as an idle one; at 200 columns its HBM note also pointed at "the
/// alarm colour on the KV row" while the die's colour is its MoE load. The row says there is
/// none; an attention die keeps its meter.
@Suite struct ExpertDieKVRowTests {
    static let snapshot: Snapshot = {
        let engine = try! ServingEngine(configuration: EngineConfiguration(deployment: try! Deployment.resolve("xdeepserve-ma"),
                                                                           seed: 1, syntheticRate: 1))
        engine.run(until: 3)
        return engine.snapshot()
    }()

    static func detail(npu: Int, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(snapshot)).0
        state.selectedNPU = npu
        return ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(80, 24), (200, 60)])
    func expertDieHasNoKVMeter(size: (Int, Int)) throws {
        let expert = try #require(Self.snapshot.npus.first { $0.role == .expert })
        let lines = Self.detail(npu: expert.id, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        try #require(text.contains("role expert"), "\(text)")
        let kv = try #require(lines.first { $0.contains("│ KV ") }, "\(text)")
        #expect(kv.contains("KV    none: an expert NPU holds no KV") && !kv.contains("·····"), "\(kv)")
        #expect(!text.contains("alarm colour on the KV row"), "\(text)")
        let attention = try #require(Self.snapshot.npus.first { $0.role == .attention })
        let other = Self.detail(npu: attention.id, width: size.0, height: size.1)
        #expect(other.contains { $0.contains("│ KV    ") && $0.contains("%") }, "\(other.joined(separator: "\n"))")
    }
}
