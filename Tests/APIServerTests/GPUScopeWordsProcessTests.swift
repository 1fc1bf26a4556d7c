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
