import PodModel
import ServingEngine
import Testing
@testable import EngineRuntime

/// A command log's `submit` line is read back (a session replayed) with every number checked:
/// `prefix 4611686018427387904 1` was taken, and its request trapped the engine that took it.
/// One out of range is refused with its range; any other line is still no submission (nil).
@Suite struct SubmitLineBoundsTests {
    @Test(arguments: [
        ("submit prompt 600 max_tokens 40 prefix 4611686018427387904 1",
         "submit line: prefix block size must be within 1…65536 tokens, got 4611686018427387904"),
        ("submit prompt 600 max_tokens 40 prefix 0 1", "submit line: prefix block size must be within 1…65536 tokens, got 0"),
        ("submit prompt 100 max_tokens 40 prefix 64 1,2,3",
         "submit line: 3 prefix keys of 64-token blocks cover 192 tokens, more than the prompt's 100"),
        // Token counts: taken as they stood (an ignore_eos request of 2^63 - 1 tokens).
        ("submit prompt -5 max_tokens 40", "submit line: prompt must be within 0…10000000 tokens, got -5"),
        ("submit prompt 10000001 max_tokens 40", "submit line: prompt must be within 0…10000000 tokens, got 10000001"),
        ("submit prompt 600 max_tokens -1", "submit line: max_tokens must be within 0…10000000 tokens, got -1"),
        ("submit prompt 600 max_tokens 9223372036854775807 ignore_eos 1",
         "submit line: max_tokens must be within 0…10000000 tokens, got 9223372036854775807"),
        ("submit prompt 600 max_tokens 40 min_tokens -3", "submit line: min_tokens must be within 0…10000000 tokens, got -3"),
    ])
    func anOutOfRangeNumberIsRefusedWithItsRange(line: String, message: String) throws {
        let error = try #require(throws: ConfigError.self) { try EngineHost.parseSubmitLine(line) }
        #expect(error.description == message)
    }

    @Test func goodLinesAndOtherLinesAreReadAsBefore() throws {
        let parsed = try EngineHost.parseSubmitLine("submit prompt 600 max_tokens 40 ignore_eos 1 prefix 64 1,2,a")
        let request = try #require(parsed)
        #expect(request.prefixBlockTokens == 64 && request.prefixHashes == [1, 2, 10] && request.ignoreEOS)
        let other = try EngineHost.parseSubmitLine("drain node 5")
        #expect(other == nil)
        // The bounds themselves are taken.
        let edge = try #require(try EngineHost.parseSubmitLine("submit prompt 10000000 max_tokens 0 min_tokens 10000000"))
        #expect(edge.promptTokens == 10_000_000 && edge.maxTokens == 0 && edge.minTokens == 10_000_000)
    }
}
