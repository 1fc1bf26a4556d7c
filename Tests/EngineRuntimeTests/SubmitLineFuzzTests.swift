import PodModel
import ServingEngine
import Testing
import XDSTestSupport
@testable import EngineRuntime

/// Seeded, bounded fuzzing of the command log's `submit` lines (``EngineHost/parseSubmitLine(_:)``,
/// what a replayed session reads back): every line gives a request, no submission (nil), or a
/// one-line error, in bounded time, never a trap; a request it gives has every count within its
/// stated range and writes back as the line that describes it.
/// `XDS_FUZZ_SECONDS=60 swift test --skip-build --filter SubmitLineFuzz` soaks for longer.
@Suite(.timeLimit(.minutes(10))) struct SubmitLineFuzzTests {
    /// Lines that once got through, replayed first on every run.
    static let corpus = [
        "submit prompt -5 max_tokens 40",
        "submit prompt 600 max_tokens 9223372036854775807 ignore_eos 1",
        "submit prompt 600 max_tokens -9223372036854775808",
        "submit prompt 600 max_tokens 40 min_tokens -3",
        "submit prompt 600 max_tokens 40 prefix 4611686018427387904 1",
    ]

    static let seeds = [
        "submit prompt 7 max_tokens 9",
        "submit prompt 700 max_tokens 1500 min_tokens 3 ignore_eos 1 prefix 64 0,ffffffffffffffff,abc",
        "submit prompt 10000000 max_tokens 0",
        "cancel request 1000000001", "drain node 5",
    ]

    @Test func submitLinesGiveARequestInRangeNothingOrOneLine() {
        var outOfRange: [String] = []
        let report = FuzzHarness.run(target: "submit-line", seeds: Self.seeds, corpus: Self.corpus) { (bytes: [UInt8]) -> FuzzOutcome in
            let line = String(decoding: bytes, as: UTF8.self)
            do {
                guard let request = try EngineHost.parseSubmitLine(line) else { return .value }
                let range = 0...TraceLimits.maxTokens  // the stated range (EngineHost.submitCountRange)
                if !range.contains(request.promptTokens) || !range.contains(request.maxTokens)
                    || !range.contains(request.minTokens) {
                    outOfRange.append(line)
                }
                if let problem = CompletionRequest.prefixKeysProblem(
                    keys: request.prefixHashes.count, blockTokens: request.prefixBlockTokens,
                    promptTokens: request.promptTokens) {
                    outOfRange.append("\(line): \(problem)")
                }
                if (try? EngineHost.parseSubmitLine(EngineHost.submitLine(request))) != request {
                    outOfRange.append("does not write back: \(line)")
                }
                return .value
            } catch {
                return .error(String(describing: error))
            }
        }
        for failure in report.failures.prefix(5) { Issue.record("\(failure)") }
        #expect(report.failures.isEmpty, "\(report.failures.count) failing inputs")
        #expect(report.inputs > 0)
        #expect(outOfRange.isEmpty, "\(outOfRange.prefix(5))")
    }
}
