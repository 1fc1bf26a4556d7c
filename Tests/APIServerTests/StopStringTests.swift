@testable import APIServer
import Foundation
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `stop` strings: where a reply is cut, and what finding them costs the server.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct StopStringTests {
    /// The matcher against a plain search: over texts of a two-letter alphabet (many overlapping
    /// partial matches, where a wrong failure function shows) fed in pieces of random sizes, the
    /// first answer is the earliest start among the stop strings whose first match ends in the
    /// piece that completes the first match of any (with the end of the shortest that starts
    /// there).
    @Test func matcherFindsWhatAPlainSearchFinds() {
        var random = SplitMix64(seed: 7)
        func below(_ n: Int) -> Int { Int.random(in: 0..<n, using: &random) }
        for _ in 0..<2000 {
            let text = Array((0..<below(60)).map { _ in below(2) == 0 ? UInt8(ascii: "a") : UInt8(ascii: "b") })
            let stops = (0..<(1 + below(4))).map { _ in
                String(decoding: (0..<(1 + below(5))).map { _ in below(2) == 0 ? UInt8(ascii: "a") : UInt8(ascii: "b") }, as: UTF8.self)
            }
            var pieces: [Range<Int>] = []
            var at = 0
            while at < text.count {
                let end = min(text.count, at + 1 + below(7))
                pieces.append(at..<end)
                at = end
            }
            // The plain search: each stop string's first match, as (start, end).
            let firsts: [(start: Int, end: Int)] = stops.compactMap { stop in
                let pattern = Array(stop.utf8)
                guard pattern.count <= text.count else { return nil }
                return (0...(text.count - pattern.count)).first { text[$0..<($0 + pattern.count)].elementsEqual(pattern) }
                    .map { ($0, $0 + pattern.count) }
            }
            let expected: StopStringMatcher.Match? = firsts.map(\.end).min().flatMap { firstEnd in
                let piece = pieces.first { $0.contains(firstEnd - 1) }!
                let ended = firsts.filter { $0.end <= piece.upperBound }
                return ended.min { ($0.start, $0.end) < ($1.start, $1.end) }.map { .init(start: $0.start, end: $0.end) }
            }
            var matcher = StopStringMatcher(stops)
            var found: StopStringMatcher.Match?
            for piece in pieces {
                found = matcher.feed(String(decoding: text[piece], as: UTF8.self)) { _ in true }
                if found != nil { break }
            }
            #expect(found == expected, "text \(String(decoding: text, as: UTF8.self)) stops \(stops) pieces \(pieces)")
        }
    }

    /// A match `accept` refuses (one that would leave the reply under `min_tokens`) is passed
    /// over, and the next match of the same stop string counts.
    @Test func matcherPassesOverRefusedMatches() {
        var matcher = StopStringMatcher(["ab"])
        #expect(matcher.feed("xabyab") { $0 >= 2 } == .init(start: 4, end: 6))
        var multibyte = StopStringMatcher(["é"])
        #expect(multibyte.feed("aé") { _ in true } == .init(start: 1, end: 3))
        #expect(multibyte.fedBytes == 3)
    }

    /// The fake engine's first reply (request id 1 says `SyntheticText(seed: 1)`, one token a
    /// chunk), and a stop string of four letters that spans two of its chunks and occurs nowhere
    /// earlier, with the UTF-8 offset where it starts.
    private static func stopAcrossChunks() -> (whole: String, stop: String, cut: Int)? {
        var text = SyntheticText(seed: 1)
        let pieces = (0..<120).map { _ in text.next(1) }
        let whole = pieces.joined()
        var offset = 0
        for (i, piece) in pieces.enumerated().dropLast() {
            offset += piece.count
            let next = pieces[i + 1]
            guard piece.count >= 2, next.count >= 2 else { continue }
            let candidate = String(piece.suffix(2)) + String(next.prefix(2))
            if let first = whole.range(of: candidate), whole.distance(from: whole.startIndex, to: first.lowerBound) == offset - 2 {
                return (whole, candidate, offset - 2)
            }
        }
        return nil
    }

    /// A stop string that spans two chunks of the engine's output cuts the reply just before it,
    /// as one search over the whole reply would.
    @Test func stopStringAcrossChunksCutsWhereItStarts() async throws {
        let (whole, stop, cut) = try #require(Self.stopAcrossChunks())
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 120, tokenInterval: .zero)) { server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 120, "stop": [stop]])
            #expect(reply.status == 200)
            let choice = try #require((try reply.json()["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "stop")
            let content = (choice["message"] as? [String: Any])?["content"] as? String
            #expect(content == String(whole.prefix(cut)))
        }
        // Streamed (a fresh fake engine, so the same words): no chunk carries the stop string's start.
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 120, tokenInterval: .zero)) { server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 120, "stop": [stop], "stream": true])
            let parsed = try parseCompletionStream(String(decoding: reply.body, as: UTF8.self), chat: true)
            #expect(parsed.finishReasons == ["stop"] && parsed.endedWithDone)
            #expect(parsed.content == String(whole.prefix(cut)))
        }
        // A stop string that never comes: the text held back for it ends the reply, whole.
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 120, tokenInterval: .zero)) { server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 120, "stop": ["never said"], "stream": true])
            let parsed = try parseCompletionStream(String(decoding: reply.body, as: UTF8.self), chat: true)
            #expect(parsed.finishReasons == ["length"] && parsed.endedWithDone)
            #expect(parsed.content == whole)
        }
    }

    /// vLLM's `include_stop_str_in_output: true` keeps the stop string: the reply ends just after
    /// it, whole or streamed, and `completion_tokens` counts what was sent. It was refused with
    /// 400 before (the placeholder reply could not keep it).
    @Test func aKeptStopStringEndsTheReply() async throws {
        let (whole, stop, cut) = try #require(Self.stopAcrossChunks())
        let kept = String(whole.prefix(cut + stop.count))
        for stream in [false, true] {
            try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 120, tokenInterval: .zero)) { server in
                let reply = try await server.post(
                    "/v1/chat/completions",
                    json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 120, "stop": ["never said", stop],
                           "include_stop_str_in_output": true, "stream": stream, "stream_options": stream ? ["include_usage": true] : NSNull()])
                #expect(reply.status == 200, "\(reply.text)")
                let content: String?
                let completionTokens: Int?
                if stream {
                    let parsed = try parseCompletionStream(String(decoding: reply.body, as: UTF8.self), chat: true)
                    #expect(parsed.finishReasons == ["stop"] && parsed.endedWithDone)
                    content = parsed.content
                    completionTokens = parsed.usage?["completion_tokens"] as? Int
                } else {
                    let body = try reply.json()
                    let choice = try #require((body["choices"] as? [[String: Any]])?.first)
                    #expect(choice["finish_reason"] as? String == "stop")
                    content = (choice["message"] as? [String: Any])?["content"] as? String
                    completionTokens = (body["usage"] as? [String: Any])?["completion_tokens"] as? Int
                }
                #expect(content == kept, "stream \(stream)")
                #expect(completionTokens == PromptTokenizer.count(kept), "stream \(stream)")
            }
        }
    }

    /// Stop strings filling most of a 1 MiB body cost the server nothing per chunk: before, each
    /// chunk searched again in time proportional to their length (about 6.5 ms a chunk for
    /// four 60,000-emoji strings, so this reply took about 20 s of CPU and starved other clients).
    @Test func longStopStringsCostNothingPerChunk() async throws {
        let robots = String(repeating: "\u{1F916}", count: 60_000)  // 240,000 UTF-8 bytes
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 3000, tokenInterval: .zero)) { server in
            // The same reply with four one-character stop strings, timed alike: the bound below
            // scales with it, so a machine loaded by other suites slows both and fails neither.
            let baselineStart = ContinuousClock.now
            let baseline = try await server.post(
                "/v1/chat/completions",
                json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 3000, "ignore_eos": true,
                       "stop": ["\u{1F917}", "a\u{1F917}", "b\u{1F917}", "c\u{1F917}"]])
            let baselineElapsed = ContinuousClock.now - baselineStart
            #expect(baseline.status == 200)
            let started = ContinuousClock.now
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 3000, "ignore_eos": true,
                       "stop": [robots, robots + "a", robots + "b", robots + "c"]])
            let elapsed = ContinuousClock.now - started
            #expect(reply.status == 200)
            let body = try reply.json()
            #expect((body["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "length")
            #expect((body["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3000)
            #expect(elapsed < .seconds(6) + baselineElapsed * 4,
                    "3000 chunks with four 240 KB stop strings took \(elapsed) (short ones: \(baselineElapsed))")
        }
    }
}
