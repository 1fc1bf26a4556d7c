import Foundation
import Testing
import XDSTestSupport

/// `xds bench`, `validate --sweep` and `run` on a one-die GPU, as a user types them: their per-die
/// figures said "per NPU (die)", "per chip", "/die" and "requests per die" of an A100, which has
/// neither an NPU nor a die apart from the GPU (the run's throughput line already said "per GPU").
/// The superpod keeps both of its scopes. Flags keep their names (`--batch-per-die`).
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("GPUScopeWordsProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct GPUScopeWordsProcessTests {
    static let gpu = "colocated:2:llama-2-7b:nvidia-a100:tp1"

    @Test func benchDecodeAndPrefillOnAGPUSayGPU() throws {
        let decode = try runBuiltXDS(["bench", "decode", "--deployment", Self.gpu, "--batch-per-die", "8",
                                      "--context", "1024"])
        #expect(decode.status == 0, "\(decode)")
        #expect(decode.out.hasPrefix("decode on \(Self.gpu): batch 8/GPU, context 1024"), "\(decode.out)")
        #expect(decode.out.contains(" tokens/s per GPU   1 microbatch"), "\(decode.out)")
        let prefill = try runBuiltXDS(["bench", "prefill", "--deployment", Self.gpu, "--prompt-len", "1024",
                                       "--tokens-per-npu", "4096"])
        #expect(prefill.status == 0, "\(prefill)")
        #expect(prefill.out.hasPrefix("prefill on \(Self.gpu): 1024-token prompts, 4096 tokens per GPU, "), "\(prefill.out)")
        for text in [decode.out, prefill.out] {
            #expect(!text.contains("die") && !text.contains("NPU") && !text.contains("chip"), "\(text)")
        }
    }

    /// A batch that does not fit names the GPU's HBM: "per die … one nvidia-a100 die has 80 GB".
    @Test func aBatchThatDoesNotFitOnAGPUSaysGPU() throws {
        let spec = "colocated:8:llama-3-70b:nvidia-a100:tp2"
        let decode = try runBuiltXDS(["bench", "decode", "--deployment", spec, "--batch-per-die", "8", "--context", "2048"])
        #expect(decode.status == 1 && decode.out.isEmpty, "\(decode)")
        #expect(decode.err.hasPrefix("xds: batch 8/GPU at context 2048 does not fit: it needs 75.9 GB of HBM per GPU "
            + "(weights 70.6 GB + KV 5.4 GB), one nvidia-a100 GPU has 80 GB, 72.0 GB of it"), "\(decode.err)")
        let prefill = try runBuiltXDS(["bench", "prefill", "--deployment", spec, "--prompt-len", "4096",
                                       "--tokens-per-npu", "100"])
        #expect(prefill.status == 1 && prefill.err.hasPrefix("xds: --tokens-per-npu 100 × 2 GPUs = 200 tokens per "
            + "batch holds less than one 4096-token prompt; use at least 2048"), "\(prefill.err)")
        let superpod = try runBuiltXDS(["bench", "decode", "--batch-per-die", "4096", "--context", "131072"])
        #expect(superpod.status == 1 && superpod.err.hasPrefix("xds: batch 4096/die at context 131072 does not fit: "), "\(superpod.err)")
        #expect(superpod.err.contains(" of HBM per die (weights ") && superpod.err.contains(", one ascend-910c die has 64 GB"),
                "\(superpod.err)")
    }

    @Test func theSweepAndTheRunsDecodeLineOnAGPUSayGPU() throws {
        let sweep = try runBuiltXDS(["validate", "--sweep", "--deployment", Self.gpu])
        #expect(sweep.status == 0, "\(sweep)")
        let first = try #require(sweep.out.split(separator: "\n").first)
        #expect(first.hasSuffix("; b = requests per GPU, context = KV tokens per request"), "\(first)")
        let run = try runBuiltXDS(["run", "--deployment", Self.gpu, "--rate", "4", "--duration", "20s", "--quiet"])
        #expect(run.status == 0, "\(run)")
        #expect(run.out.contains("\n  decode    at the end: ") && run.out.contains(" requests per GPU, mean context "),
                "\(run.out)")
    }

    @Test func theSuperpodKeepsDieAndChip() throws {
        let decode = try runBuiltXDS(["bench", "decode", "--batch-per-die", "96", "--context", "4096"])
        #expect(decode.status == 0, "\(decode)")
        #expect(decode.out.hasPrefix("decode on superpod: batch 96/die, context 4096"), "\(decode.out)")
        #expect(decode.out.contains(" tokens/s per NPU (die)   "), "\(decode.out)")
        #expect(decode.out.contains(" per chip   MoE load factor "), "\(decode.out)")
    }
}
