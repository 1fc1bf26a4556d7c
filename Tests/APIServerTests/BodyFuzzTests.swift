import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import APIServer

/// Seeded, bounded fuzzing of the HTTP body decoders: every body decodes and validates to a
/// completion, or to an ``APIError`` whose message is one clean line; never a trap or a hang.
/// `XDS_FUZZ_SECONDS=60 swift test --skip-build --filter BodyFuzz` soaks for longer.
@Suite(.timeLimit(.minutes(10))) struct BodyFuzzTests {
    static let validator = CompletionValidator(servedModel: "deepseek-r1", defaultMaxTokens: 256, maxTokensCap: 32_768)

    /// Bodies that once broke a decoder, replayed first on every run.
    static let corpus: [String] = [
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 1e308}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 9223372036854775808}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": -1}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": NaN}",
        "{\"prompt\": [[1, 2], [3]], \"max_tokens\": 5}",
        "{\"prompt\": [], \"max_tokens\": 5}",
        "{\"prompt\": \"\\ud800\"}",
        "[]", "null", "", "{", "\"\u{1B}[2J\"",
        // The model name used to be echoed raw in the 404 (bidi override, NEL, ESC).
        "{\"model\": \"x\\u202E\\u0085\\u001B[2J\", \"prompt\": \"hi\"}",
        "{\"command\": \"rate 1e308\"}",
        "{\"command\": \"pause\\nresume\"}",
        "{\"command\": 5}",
    ]

    static let seeds: [String] = [
        "{\"model\": \"deepseek-r1\", \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, "
            + "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hello\"}]}], \"max_tokens\": 16, "
            + "\"stream\": true, \"stream_options\": {\"include_usage\": true}, \"n\": 1, \"user\": \"u\"}",
        "{\"model\": \"deepseek-r1\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"stream\": false}",
        "{\"prompt\": [1, 2, 3, 4], \"max_tokens\": 2}",
        "{\"prompt\": [\"one\"], \"max_completion_tokens\": 3}",
        "{\"command\": \"drain node 5\"}",
    ]

    /// The admin route's body shape (`{"command": "…"}`), decoded the same way, then parsed.
    struct CommandBody: Decodable { var command: String }

    static func outcome(_ bytes: [UInt8]) -> FuzzOutcome {
        let data = Data(bytes)
        var messages: [String] = []
        var values = 0
        func decode<Body: Decodable>(_ type: Body.Type, then validate: (Body) throws(APIError) -> Void) {
            do {
                let body = try JSONDecoder().decode(Body.self, from: data)
                try validate(body)
                values += 1
            } catch let error as APIError {
                messages.append(error.message)
            } catch {
                messages.append(APIError.undecodable(error).message)
            }
        }
        decode(ChatCompletionBody.self) { (body) throws(APIError) in
            let v = try validator.validate(body)
            guard v.maxTokens >= 1, v.maxTokens <= 32_768, v.promptTokens >= 0 else {
                throw .invalidRequest("", param: nil)
            }
        }
        decode(TextCompletionBody.self) { (body) throws(APIError) in
            let v = try validator.validate(body)
            guard v.maxTokens >= 1, v.maxTokens <= 32_768, v.promptTokens >= 1 else {
                throw .invalidRequest("", param: nil)
            }
        }
        decode(CommandBody.self) { (body) throws(APIError) in
            if case .failure(let e) = OperatorCommand.parse(body.command) {
                throw .invalidRequest(e.message, param: "command")
            }
        }
        // Every decoder must answer; report the first bad message, if any.
        for message in messages where FuzzHarness.messageProblem(message) != nil { return .error(message) }
        return values > 0 ? .value : .error(messages.first ?? "no answer")
    }

    @Test func bodyDecoders() {
        let configuration = FuzzHarness.Configuration.fromEnvironment(maxBytes: 16_384)
        let report = FuzzHarness.run(target: "http-body", seeds: Self.seeds, corpus: Self.corpus,
                                     configuration: configuration, Self.outcome)
        for failure in report.failures.prefix(5) { Issue.record("\(failure)") }
        #expect(report.failures.isEmpty)
        #expect(report.inputs > Self.seeds.count)
    }
}
