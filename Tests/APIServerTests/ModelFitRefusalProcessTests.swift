import Foundation
import Testing
import XDSTestSupport

/// `--model` on a layout the fitter cannot make run: the answer is the refusal alone, one line,
/// not the fit's change lines followed by the engine's refusal of the layout they produced.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("ModelFitRefusalProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct ModelFitRefusalProcessTests {
    /// xdeepserve-ma with 60 external 910B prefill instances: Kimi K2's 384 expert slots need 19
    /// dies an instance, which 60 instances cannot have within the 1,024 devices external groups
    /// of one hardware may use. `xds run --model kimi-k2` printed "moe_attention expert_dies 288
    /// → 224 (…)" and then refused the prefill group, advising more NPUs per instance.
    static let sixtyExternalPrefills = """
        name = "ma-60"
        model = "deepseek-r1"
        hardware = "ascend-910c"
        nodes = 48

        [[prefill]]
        count = 60
        npus = 16
        first_npu = 0
        tp = 4
        dp = 4
        ep = 16
        external = true
        hardware = "ascend-910b"

        [moe_attention]
        first_npu = 0
        expert_dies = 288
        shared_expert_dies = 32
        attention_domains = 3
        dp_per_domain = 160
        trampoline_dies = 160
        microbatches = 2
        batch_limit = 96
        """

    @Test func aFitThatCannotRunIsRefusedInOneLine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("xds-ma60-\(getpid()).toml")
        try Self.sixtyExternalPrefills.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try runBuiltXDS(["run", "--deployment", file.path, "--model", "kimi-k2", "--duration", "5s", "--quiet"])
        #expect(run.status == 1)
        let lines = run.err.split(separator: "\n")
        #expect(lines.count == 1, "\(run.err)")
        #expect(run.err.hasPrefix("xds: \(file.path):6: kimi-k2 weights leave no HBM for KV cache on the prefill group (external)"),
                "\(run.err)")
        #expect(run.err.contains("use at most 53 instances (count)"), "\(run.err)")
        #expect(!run.err.contains("expert_dies 288 → 224"), "\(run.err)")
        // --print-config still writes the fitted layout (to be edited) and says what the fit changed.
        let printed = try runBuiltXDS(["run", "--deployment", file.path, "--model", "kimi-k2", "--print-config"])
        #expect(printed.status == 0, "\(printed.err)")
        #expect(printed.err.contains("expert_dies 288 → 224"), "\(printed.err)")
        #expect(printed.out.contains("expert_dies = 224"), "\(printed.out)")
        // A fit that runs still names its changes before the run.
        let fits = try runBuiltXDS(["run", "--deployment", "xdeepserve-ma", "--model", "kimi-k2", "--duration", "1s", "--quiet"])
        #expect(fits.status == 0, "\(fits.err)")
        #expect(fits.err.contains("prefill group npus 16 →") && fits.err.contains("expert_dies 288 → 224"), "\(fits.err)")
    }
}
