import Foundation
import Testing

@testable import ServingEngine

/// `--clip-to-context`: a trace row longer than the model's window is cut to it (Vidur's
/// semantics) instead of refusing the trace; without the flag it is refused, naming the flag.
@Suite struct TraceClipTests {
    static let azure = Array("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n".utf8)
    static let mooncake = Array(("{\"timestamp\": 0, \"input_length\": 2000, \"output_length\": 700, \"hash_ids\": [1, 2, 3, 4]}\n").utf8)

    @Test func aLongPromptIsRefusedWithoutTheFlag() {
        var trace = try? TraceWorkload(bytes: Self.azure, name: "a.csv", maxContextTokens: 4_096)
        #expect(throws: WorkloadError.self) { _ = try trace?.nextChecked() }
        do {
            var t = try TraceWorkload(bytes: Self.azure, name: "a.csv", maxContextTokens: 4_096)
            _ = try t.nextChecked()
        } catch {
            #expect(error.description.contains("a.csv:2:") && error.description.contains("--clip-to-context"), "\(error.description)")
        }
    }

    @Test func withTheFlagPromptAndOutputFitTheWindow() throws {
        var trace = try TraceWorkload(bytes: Self.azure, name: "a.csv", maxContextTokens: 4_096, clipToContext: true)
        let first = try #require(try trace.nextChecked())
        #expect(first.promptTokens == 4_095 && first.outputTokens == 1)
        let second = try #require(try trace.nextChecked())
        #expect(second.promptTokens == 3_180 && second.outputTokens == 8, "a row that fits is untouched")
        #expect(trace.clippedRows == 1, "the clipped rows are counted (the run says how many on stderr)")
        var mc = try TraceWorkload(bytes: Self.mooncake, name: "m.jsonl", maxContextTokens: 1_024, clipToContext: true)
        let row = try #require(try mc.nextChecked())
        #expect(row.promptTokens == 1_023 && row.outputTokens == 1)
        // 1,023 tokens fill two 512-token blocks: the hash ids of the cut blocks are dropped.
        #expect(row.prefixHashes.count == 2)
    }

    /// A row asking for 0 output tokens is served 1 (a prefill always yields the first token), so
    /// its prompt and that token share the window as any row's do. `131072,0` on a 131,072-token
    /// window was replayed as 131,072 + 1 tokens while `131072,1`, the same request, was refused
    /// as longer than the window; with `--clip-to-context` it was not cut either.
    @Test func aRowAskingForNoOutputLeavesTheWindowRoomForItsServedToken() throws {
        let azure = Array("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4096,0\n".utf8)
        let mooncake = Array("{\"timestamp\": 0, \"input_length\": 4096, \"output_length\": 0, \"hash_ids\": [1, 2, 3, 4, 5, 6, 7, 8]}\n".utf8)
        for (bytes, name, problem) in [
            (azure, "a.csv", "a.csv:2: ContextTokens 4096 + GeneratedTokens 0 (served as 1: a prefill always yields the first token) "
                + "= 4097 tokens is longer than the model's context window of 4096 (--clip-to-context cuts such rows to the window)"),
            (mooncake, "m.jsonl", "m.jsonl:1: input_length 4096 + output_length 0 (served as 1: a prefill always yields the first "
                + "token) = 4097 tokens is longer than the model's context window of 4096 (--clip-to-context cuts such rows to the window)"),
        ] {
            var refused = try TraceWorkload(bytes: bytes, name: name, maxContextTokens: 4_096)
            #expect(throws: WorkloadError(problem)) { _ = try refused.nextChecked() }
            var clipped = try TraceWorkload(bytes: bytes, name: name, maxContextTokens: 4_096, clipToContext: true)
            let row = try #require(try clipped.nextChecked())
            #expect(row.promptTokens == 4_095 && row.outputTokens == 1 && clipped.clippedRows == 1, "\(name): \(row)")
            // One token short of the window, the row fits as it is.
            let fits = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "4096", with: "4095")
            var kept = try TraceWorkload(bytes: Array(fits.utf8), name: name, maxContextTokens: 4_096)
            let whole = try #require(try kept.nextChecked())
            #expect(whole.promptTokens == 4_095 && whole.outputTokens == 1, "\(name): \(whole)")
        }
    }
}
