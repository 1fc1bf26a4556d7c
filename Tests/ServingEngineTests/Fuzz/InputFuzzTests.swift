import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Seeded, bounded fuzzing of the engine's readers of outside input: every input yields a
/// value or a typed error with a one-line message, in bounded time, and never traps.
/// `XDS_FUZZ_SECONDS=60 swift test --skip-build --filter Fuzz` soaks for longer.
@Suite(.timeLimit(.minutes(10))) struct InputFuzzTests {
    private func expectClean(_ report: FuzzReport) {
        for failure in report.failures.prefix(5) { Issue.record("\(failure)") }
        #expect(report.failures.isEmpty, "\(report.failures.count) failing inputs in \(report.target)")
        #expect(report.inputs > 0)
    }

    @Test func commandParser() {
        let seeds = [
            "drain node 5", "undrain node 0", "fault die 700", "fault npu 37", "fault node 47", "fault link 3-7",
            "fault link 3-7 degrade 4", "fault straggler die 12 slowdown 1.5", "fault hbm die 9", "fault glitch",
            "heal 3", "heal all", "rebalance", "rate 12.5", "speed 0.25", "speed max", "pause", "resume",
            // The second round's verbs: with only the first round's seeds, mutations reached
            // `scale`, `autoscale` and `policy` almost never, so their grammar went unfuzzed.
            "scale prefill 3", "scale decode +2", "scale colocated -1", "scale prefill 64 from object-store",
            "scale decode +1 from npu-fork", "autoscale slo", "autoscale off", "policy je round-robin",
            "policy dp-lb kv-aware", "policy eplb deepseek", "policy recovery restart-world", "policy autoscaler slo",
        ]
        var roundTripFailures: [String] = []
        let report = FuzzHarness.run(target: "command", seeds: seeds, corpus: FuzzCorpus.commands) { bytes in
            switch OperatorCommand.parse(String(decoding: bytes, as: UTF8.self)) {
            case .success(let command):
                // An accepted command is inside the stated ranges and reads back as itself.
                if case .success(let again) = OperatorCommand.parse(command.description), again == command {} else {
                    roundTripFailures.append(command.description)
                }
                if !Self.withinLimits(command) { roundTripFailures.append("out of range: \(command)") }
                return .value
            case .failure(let error): return .error(error.message)
            }
        }
        expectClean(report)
        #expect(roundTripFailures.isEmpty, "\(roundTripFailures.prefix(5))")
    }

    static func withinLimits(_ command: OperatorCommand) -> Bool {
        let L = CommandLimits.self
        switch command {
        case .rate(let r): return r >= 0 && r <= L.maxRate
        case .speed(let s): return s >= L.minSpeed && s <= L.maxSpeed
        case .faultStraggler(_, let f?), .faultLink(_, _, let f?): return f > 1 && f <= L.maxFactor
        case .drain(let i), .undrain(let i), .faultDie(let i), .faultNPU(let i), .faultNode(let i), .faultHBM(let i):
            return (0...L.maxIndex).contains(i)
        case .heal(let id): return (1...L.maxIndex).contains(id)
        case .scale(_, .to(let n), _): return (1...L.maxScaleTEs).contains(n)
        case .scale(_, .by(let k), _): return k != 0 && (1...L.maxScaleTEs).contains(abs(k))
        default: return true
        }
    }

    /// `preview COMMAND [for DURATION]`, the console's `:preview` line and the admin API's preview
    /// body: an accepted preview is inside the stated ranges (1 s to 1 h, the command's own limits)
    /// and reads back as itself from what the console shows of it.
    @Test func previewReader() {
        let seeds = [
            "preview drain node 20", "preview drain node 20 for 10m", "fault npu 37 for 90s", "preview rate 50 for 1.5m",
            "preview heal all for 1h", "preview scale prefill +1 for 600", "preview fault link 3-7 degrade 4 for 2.5min",
            "preview policy recovery restart-world for 30s", "preview autoscale slo",
        ]
        var wrong: [String] = []
        let report = FuzzHarness.run(target: "preview", seeds: seeds, corpus: []) { bytes in
            switch PreviewRequest.parse(String(decoding: bytes, as: UTF8.self)) {
            case .success(let preview):
                if !PreviewRequest.durationRange.contains(preview.duration) || !Self.withinLimits(preview.command) {
                    wrong.append("out of range: \(preview)")
                }
                if case .success(let again) = PreviewRequest.parse(preview.description), again == preview {} else {
                    wrong.append("does not read back: \(preview)")
                }
                return .value
            case .failure(let error): return .error(error.message)
            }
        }
        expectClean(report)
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test func durations() {
        let seeds = ["90", "90s", "500ms", "10m", "1h", "1.5h", "1h30m", "0", "1e3s", "1h30m15s500ms", "10min", "2m30s"]
        let report = FuzzHarness.run(target: "duration", seeds: seeds, corpus: FuzzCorpus.durations) { bytes in
            do throws(SimTime.DurationError) {
                let text = String(decoding: bytes, as: UTF8.self)
                let t = try SimTime.checkedDuration(text)
                // A time taken names each unit at most once, largest first (`1h1h` was two hours).
                return t.isFinite && t >= 0 && t <= SimTime.maxDuration && Self.unitsDescend(text) ? .value : .error("")
            } catch { return .error(error.message) }
        }
        expectClean(report)
    }

    /// Whether the unit words of a time (`h`, `min`/`m`, `s`, `ms`, any case; an exponent's `e`
    /// is no unit) come largest first, each at most once.
    static func unitsDescend(_ text: String) -> Bool {
        let rank = ["h": 0, "min": 1, "m": 1, "s": 2, "ms": 3]
        var last = -1
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter }) where word != "e" {
            guard let r = rank[String(word)], r > last else { return false }
            last = r
        }
        return true
    }

    @Test func scenarioReader() throws {
        let root = SharedTraces.packageRoot.appendingPathComponent("scenarios")
        let shipped = ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).sorted()
            .filter { $0.hasSuffix(".toml") }
            .compactMap { try? String(contentsOf: root.appendingPathComponent($0), encoding: .utf8) }
        let seeds = shipped + [
            "name = \"t\"\n[[step]]\nat = 30\ncommand = \"drain node 3\"\n[[step]]\nat = \"1m\"\ncommand = \"heal all\"\n",
            "name = \"t\"\ndescription = \"d\"\n[[step]]\nat = \"500ms\"\ncommand = \"fault link 3-7 degrade 4\"\n"
                + "[[step]]\nat = \"1h\"\ncommand = \"heal 1\"\n",
        ]
        let report = FuzzHarness.run(target: "scenario", seeds: seeds, corpus: FuzzCorpus.scenarios) { bytes in
            do {
                let s = try Scenario(toml: String(decoding: bytes, as: UTF8.self), source: "fuzz.toml",
                                     topology: .cloudMatrix384)
                let sane = s.steps.allSatisfy { $0.at.isFinite && $0.at >= 0 && $0.at <= SimTime.maxDuration }
                return sane ? .value : .error("")
            } catch let error as ConfigError {
                // Every refusal names the file it is about, as `xds run --scenario` shows it (the
                // trailing newline makes the harness report one that does not).
                return .error(error.description.hasPrefix("fuzz.toml") ? error.description
                                  : "does not name the file: \(error.description)\n")
            } catch {
                return .error("untyped error \(type(of: error))\n")
            }
        }
        expectClean(report)
    }

    /// `clip`: the readers as `--clip-to-context` runs them (rows longer than `window` cut to it);
    /// `speedup`: arrivals as `--trace-speedup K` replays them.
    private func traceTarget(
        _ name: String, seeds: [String], corpus: [String], window: Int, clip: Bool = false, speedup: Double = 1
    ) -> FuzzReport {
        // Lines up to the 1 MiB cap and beyond: huge repeats reach 1.1 MiB now and then.
        let configuration = FuzzHarness.Configuration.fromEnvironment(maxBytes: 1_150_000, hugeEvery: 1_000)
        return FuzzHarness.run(target: name, seeds: seeds, corpus: corpus, configuration: configuration) { bytes in
            do throws(WorkloadError) {
                _ = try TraceWorkload.check(bytes: bytes, name: "fuzz.trace", maxContextTokens: window, clipToContext: clip)
                // A trace that checks replays with every request inside the stated ranges.
                var trace = try TraceWorkload(bytes: bytes, name: "fuzz.trace", maxContextTokens: window, clipToContext: clip)
                trace.speedup = speedup
                var last = 0.0
                while let r = try trace.nextChecked() {
                    guard r.arrival.isFinite, r.arrival >= last, r.arrival <= SimTime.maxDuration,
                        (1...window).contains(r.promptTokens), (1...window).contains(r.outputTokens),
                        // Prompt and output (as served: at least one token) share the window.
                        r.promptTokens + r.outputTokens <= window,
                        r.prefixHashes.count <= (r.promptTokens + 511) / 512
                    else { return .error("") }
                    last = r.arrival
                }
                return .value
            } catch {
                // Every refusal names the file (and the line): "fuzz.trace:3: …", "fuzz.trace: empty trace file".
                return .error(error.description.hasPrefix("fuzz.trace") ? error.description
                                  : "does not name the file: \(error.description)\n")
            }
        }
    }

    @Test func azureTraceReader() {
        let seeds = [
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"
                + "2023-11-16 18:17:04.0319600,3180,8\n2023-11-16 18:17:04.0781490,110,27\n",
            "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 23:59:59.5,10,0\r\n2023-11-17 00:00:00.25,5,3\r\n",
            // Azure 2024: fractions and offsets; quoted fields, a quoted line break, a "" escape.
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2024-05-10 00:00:00.009930+00:00,374,44\n"
                + "2024-05-10T02:00:01.5+02:00,10,2\n2024-05-10 00:00:03Z,10,2\n2024-05-10 00:00:04-0130,10,2\n",
            "\"TIMESTAMP\",\"ContextTokens\",\"GeneratedTokens\",\"Note\"\r\n\"2023-11-16 18:17:03.9799600\",\"4808\",\"10\",\"a \"\"b\"\"\"\r\n"
                + "\"2023-11-16 18:17:04\", 3180 ,8,\"two\nlines\"\r\n",
        ]
        expectClean(traceTarget("azure-csv", seeds: seeds, corpus: FuzzCorpus.azure, window: 163_840))
    }

    @Test func mooncakeTraceReader() {
        let seeds = [
            "{\"timestamp\": 0, \"input_length\": 6758, \"output_length\": 500, \"hash_ids\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]}\n"
                + "{\"timestamp\": 0, \"input_length\": 2290, \"output_length\": 316, \"hash_ids\": [0, 42, 43, 44, 45]}\n"
                + "{\"timestamp\": 3001, \"input_length\": 1, \"output_length\": 0, \"hash_ids\": []}\n",
            "{\"timestamp\": 5, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [], \"note\": \"x\", \"ok\": true}\n",
            // Extra and nested fields, escapes, a repeated key.
            "{\"meta\": {\"a\": [1, {\"b\": null}], \"s\": \"x\\\"y\\u00e9\"}, \"timestamp\": 0, \"input_length\": 600, "
                + "\"output_length\": 2, \"hash_ids\": [7, 8], \"tags\": [\"a\", [], {}], \"ok\": false}\n"
                + "{\"hash_ids\":[],\"output_length\":3,\"input\\u005flength\":4,\"timestamp\":1.5e3,\"x\":-0.5E-3}\n",
        ]
        expectClean(traceTarget("mooncake-jsonl", seeds: seeds, corpus: FuzzCorpus.mooncake, window: 163_840))
    }

    @Test func burstGPTTraceReader() {
        let header = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        let seeds = [
            header + "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,1087,0,1087,Conversation log\n"
                + "118,GPT-4,417,276,693,API log\n118.5,ChatGPT,1,1,2,API log\n",
            "\"log_type\",\"timestamp\",\"request_tokens\",\"response_tokens\",\"model\"\r\n\"API log\",0,3,4,\"GPT-4\"\r\n",
        ]
        expectClean(traceTarget("burstgpt-csv", seeds: seeds, corpus: FuzzCorpus.burstGPT, window: 163_840))
    }

    /// The three readers as `--clip-to-context` and `--trace-speedup` run them, on a small window
    /// (Llama-2-7B's 4,096 tokens): every row the seeds hold is longer than it, so the clipping
    /// arithmetic (and the hash ids it keeps) runs on every mutation, not only the range checks.
    @Test func clippedAndSpedUpTraceReaders() {
        let seeds = [
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"
                + "2023-11-16 18:17:04.0319600,3180,4000\n2023-11-16 18:17:04.0781490,4096,0\n2023-11-16 18:17:05,4095,1\n",
            "{\"timestamp\": 0, \"input_length\": 6758, \"output_length\": 500, \"hash_ids\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]}\n"
                + "{\"timestamp\": 3001, \"input_length\": 4096, \"output_length\": 0, \"hash_ids\": [0, 42, 43, 44, 45, 46, 47, 48]}\n"
                + "{\"timestamp\": 9000, \"input_length\": 10000000, \"output_length\": 10000000, \"hash_ids\": [1]}\n",
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                + "5,ChatGPT,4472,18,4490,Conversation log\n45,ChatGPT,1087,0,1087,Conversation log\n118.5,GPT-4,4000,4000,8000,API log\n",
        ]
        expectClean(traceTarget("trace-clipped", seeds: seeds, corpus: FuzzCorpus.azure + FuzzCorpus.mooncake, window: 4_096,
                                clip: true, speedup: 3.5))
        expectClean(traceTarget("trace-slowed", seeds: seeds, corpus: [], window: 4_096, clip: true, speedup: 0.001))
    }

    /// Differential: the JSONL reader accepts exactly the lines `JSONSerialization` reads as an
    /// object, on mutations of real and nested Mooncake lines. Where the two may rightly differ
    /// the input is left out: numbers beyond Double (Foundation refuses them, we read them as
    /// infinite and the range check refuses the row), bytes that are not UTF-8 (Foundation
    /// repairs some encodings), nesting near the depth limit, NUL bytes (Foundation's C
    /// heritage), and a trailing comma before `}` or `]` (Foundation reads it; RFC 8259 has none).
    private static func hasTrailingComma(_ line: [UInt8]) -> Bool {
        var lastSignificant: UInt8 = 0
        for c in line where !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D) {
            if (c == UInt8(ascii: "}") || c == UInt8(ascii: "]")) && lastSignificant == UInt8(ascii: ",") { return true }
            lastSignificant = c
        }
        return false
    }

    private static func hasExponentOrLongNumber(_ line: [UInt8]) -> Bool {
        var run = 0
        for (i, c) in line.enumerated() {
            let digit = c >= 0x30 && c <= 0x39
            run = digit ? run + 1 : 0
            if run > 15 { return true }
            if digit, i + 1 < line.count, line[i + 1] == UInt8(ascii: "e") || line[i + 1] == UInt8(ascii: "E") { return true }
        }
        return false
    }

    @Test func mooncakeJSONGrammarAgreesWithFoundation() {
        let seeds = [
            "{\"timestamp\": 0, \"input_length\": 6758, \"output_length\": 500, \"hash_ids\": [0, 1, 2, 3]}",
            "{\"meta\": {\"a\": [1, {\"b\": null}], \"s\": \"x\\\"y\\u00e9\\ud83d\\ude42\"}, \"t\": [true, false, -0.5e-3, 1E+2]}",
            "{\"input\\u005flength\": 4, \"x\": \"\\n\\t\\/\\b\\f\\r\"}",
        ]
        var disagreements: [String] = []
        let keys = JSONLine.keys(["timestamp", "input_length", "output_length", "hash_ids"])
        let report = FuzzHarness.run(target: "mooncake-json-grammar", seeds: seeds, corpus: FuzzCorpus.mooncake) { bytes in
            let line = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).first.map(Array.init) ?? []
            let ours: FuzzOutcome
            do throws(JSONLine.Problem) {
                _ = try JSONLine.members(line[...], keys: keys)
                ours = .value
            } catch { ours = .error(error.message) }
            let comparable = String(validating: line, as: UTF8.self) != nil && !line.contains(0)
                && line.filter({ $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "{") }).count < 400
                && !Self.hasExponentOrLongNumber(line) && !Self.hasTrailingComma(line)
            if comparable {
                let foundation = (try? JSONSerialization.jsonObject(with: Data(line))) is [String: Any]
                if case .value = ours, !foundation { disagreements.append("accepted: " + FuzzHarness.literal(line, limit: 200)) }
                if case .error = ours, foundation { disagreements.append("refused: " + FuzzHarness.literal(line, limit: 200)) }
            }
            return ours
        }
        expectClean(report)
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements with JSONSerialization: \(disagreements.prefix(5))")
    }

    /// The harness itself: same seed, same inputs; a bad message is caught.
    @Test func harnessIsDeterministicAndJudgesMessages() {
        var a = FuzzMutator(seed: 7), b = FuzzMutator(seed: 7)
        let seed = Array("rate 5".utf8)
        for _ in 0..<50 { #expect(a.mutate(seed, corpus: [seed]) == b.mutate(seed, corpus: [seed])) }
        #expect(FuzzHarness.messageProblem("") != nil)
        #expect(FuzzHarness.messageProblem("two\nlines") != nil)
        #expect(FuzzHarness.messageProblem("raw \u{1B}[2J") != nil)
        #expect(FuzzHarness.messageProblem("keyNotFound: DecodingError") != nil)
        #expect(FuzzHarness.messageProblem("t.toml: step 2: node 99 does not exist") == nil)
        let configuration = FuzzHarness.Configuration(iterations: 20, seconds: 5)
        let report = FuzzHarness.run(target: "self-test", seeds: ["x"], configuration: configuration) { bytes in
            bytes.count % 2 == 0 ? .value : .error("multi\nline")
        }
        #expect(report.inputs == 21)
        #expect(!report.failures.isEmpty)
    }

    /// `XDS_FUZZ_SECONDS=2m` (or a seed or count that is not a number) was dropped without a
    /// word: the pass ran its default half second and passed, read as a two-minute soak. Each
    /// such variable is a failure of every fuzz run, one line naming it; good values are taken.
    @Test func anUnreadableFuzzVariableFailsTheRunNamingIt() {
        let bad = FuzzHarness.Configuration.fromEnvironment(
            environment: ["XDS_FUZZ_SECONDS": "2m", "XDS_FUZZ_SEED": "-1", "XDS_FUZZ_ITERATIONS": "0"])
        #expect(bad.seconds == 0.5 && bad.iterations == 400 && bad.seed == 1)
        let report = FuzzHarness.run(target: "env", seeds: ["x"], configuration: bad) { _ in .value }
        let problems = report.failures.map(\.problem)
        #expect(problems == [
            "XDS_FUZZ_SEED must be a whole number between 0 and 18446744073709551615, got '-1'; the default was used",
            "XDS_FUZZ_SECONDS must be a number of seconds above 0 and at most 86400, got '2m'; the default was used",
            "XDS_FUZZ_ITERATIONS must be a whole number above 0, got '0'; the default was used",
        ], "\(problems)")
        for value in ["nan", "inf", "0", "-5", "86401", ""] {
            #expect(FuzzHarness.Configuration.fromEnvironment(environment: ["XDS_FUZZ_SECONDS": value]).environmentProblems.count == 1,
                    "\(value)")
        }
        let good = FuzzHarness.Configuration.fromEnvironment(
            environment: ["XDS_FUZZ_SECONDS": "120", "XDS_FUZZ_SEED": "42", "XDS_FUZZ_ITERATIONS": "7"])
        #expect(good.environmentProblems.isEmpty && good.seconds == 120 && good.seed == 42 && good.iterations == 7)
    }
}
