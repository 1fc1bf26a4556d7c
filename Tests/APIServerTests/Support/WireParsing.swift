import Foundation
import Testing

import EngineRuntime

/// One server-sent event: its `event:` name (nil for OpenAI's unnamed events) and `data:` payload.
struct SSEFrame: Equatable {
    var event: String?
    var data: String

    func json() throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any],
            "not a JSON object: \(data)")
    }
}

/// Reads an event-stream body with the project's one SSE reader (the remote link's), and fails
/// the test on a line our server should not write (only `event: `, `data: ` and blank lines).
func parseSSE(_ text: String) -> [SSEFrame] {
    for line in text.split(separator: "\n") where !line.hasPrefix("event: ") && !line.hasPrefix("data: ") {
        Issue.record("unexpected SSE line: \(line)")
    }
    var reader = ServerSentEventReader()
    return reader.feed(Array(text.utf8)).map { SSEFrame(event: $0.name, data: $0.data) }
}

/// A parsed Prometheus text exposition (format 0.0.4): samples keyed by `name{labels}` exactly as
/// written, plus the declared TYPE of each family. Any line that is neither a comment nor a valid
/// sample is recorded as a test failure.
struct PrometheusText {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]

    init(_ text: String) {
        // Label values are quoted and may hold any character, `}` included (the route
        // `/v1/models/{id}`), with `\\`, `\"` and `\n` escaped.
        let sample = #/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/#
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let match = try? sample.wholeMatch(in: String(line)), let value = Double(match.3) else {
                Issue.record("not a Prometheus sample line: \(line)")
                continue
            }
            samples[String(match.1) + String(match.2 ?? "")] = value
        }
    }

    /// The sum over every sample of `name` whose labels contain all of `containing`.
    func sum(_ name: String, containing: [String] = []) -> Double {
        samples.filter { key, _ in
            (key == name || key.hasPrefix(name + "{")) && containing.allSatisfy { key.contains($0) }
        }.values.reduce(0, +)
    }
}

/// The concatenated content of an OpenAI stream, and what the chunks said about how it ended.
struct ParsedCompletionStream {
    var content = ""
    var finishReasons: [String] = []
    var usage: [String: Any]?
    var error: [String: Any]?
    var endedWithDone = false
    var chunks: [[String: Any]] = []
}

func parseCompletionStream(_ text: String, chat: Bool) throws -> ParsedCompletionStream {
    var parsed = ParsedCompletionStream()
    let frames = parseSSE(text)
    for (index, frame) in frames.enumerated() {
        #expect(frame.event == nil)
        if frame.data == "[DONE]" {
            #expect(index == frames.count - 1, "[DONE] must be the last frame")
            parsed.endedWithDone = true
            continue
        }
        let chunk = try frame.json()
        if let error = chunk["error"] as? [String: Any] {
            parsed.error = error
            continue
        }
        parsed.chunks.append(chunk)
        #expect(chunk["object"] as? String == (chat ? "chat.completion.chunk" : "text_completion"))
        #expect((chunk["id"] as? String)?.hasPrefix(chat ? "chatcmpl-" : "cmpl-") == true)
        #expect(chunk["created"] is Int)
        #expect(chunk["model"] as? String == "deepseek-r1")
        if let usage = chunk["usage"] as? [String: Any] { parsed.usage = usage }
        let choices = try #require(chunk["choices"] as? [[String: Any]])
        for choice in choices {
            #expect(choice["index"] as? Int == 0)
            #expect(
                choice.keys.contains("finish_reason"), "finish_reason must be present (null while streaming)")
            if let reason = choice["finish_reason"] as? String { parsed.finishReasons.append(reason) }
            if chat {
                let delta = try #require(choice["delta"] as? [String: Any])
                parsed.content += delta["content"] as? String ?? ""
            } else {
                parsed.content += choice["text"] as? String ?? ""
            }
        }
    }
    return parsed
}
