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
    }
}
