import Foundation
import Testing

/// `bench decode --batch-per-die` takes an average (requests per die over the instance's DP
/// groups), not only a whole number: a TP group could only be benched at multiples of tp requests,
/// and `xds run`'s summary named a rounded batch as the one that "prices that step" (0.5 requests
/// per GPU on A100 pairs was hinted as 1, two requests per pair).
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("FractionalBatchProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct FractionalBatchProcessTests {
    static let pairs = "colocated:4:llama-3-70b:nvidia-a100:tp2"

    @Test func aFractionalBatchIsPricedAsThatMeanPerGroup() throws {
        let half = try runBuiltXDS(["bench", "decode", "--deployment", Self.pairs, "--batch-per-die", "0.5", "--context", "1024"])
        #expect(half.status == 0 && half.out.hasPrefix("decode on \(Self.pairs): batch 0.5/GPU, context 1024"), "\(half)")
        // Half a request per GPU on a TP2 pair is one request per pair: less than a whole one per GPU.
        let one = try runBuiltXDS(["bench", "decode", "--deployment", Self.pairs, "--batch-per-die", "1", "--context", "1024",
                                   "--json"])
        let halfJSON = try runBuiltXDS(["bench", "decode", "--deployment", Self.pairs, "--batch-per-die", "0.5", "--context",
                                        "1024", "--json"])
        func stepMs(_ out: String) throws -> Double {
            let json = try #require(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
            return try #require(json["step_ms"] as? Double)
        }
        #expect(try stepMs(halfJSON.out) < stepMs(one.out), "\(halfJSON.out)")
        #expect(halfJSON.out.contains("\"batch_per_die\" : 0.5"), "\(halfJSON.out)")
    }

    @Test func badBatchesAreRefusedWithOneLine() throws {
        // 95.12345 and 200.00001: the places are counted at any size (a tolerance relative to the
        // value let five places through from about 50 requests per die on).
        for value in ["nan", "inf", "-1", "0", "0.00001", "1.23456", "95.12345", "200.00001", "4097"] {
            let r = try runBuiltXDS(["bench", "decode", "--batch-per-die", value, "--context", "1024"])
            #expect(r.status != 0 && r.out.isEmpty && r.err.hasPrefix("xds: --batch-per-die must be"), "\(value): \(r)")
            #expect(r.err.split(separator: "\n").count == 1, "\(value): \(r.err)")
        }
        // Less than half a request over the whole instance is a step of no request.
        let none = try runBuiltXDS(["bench", "decode", "--batch-per-die", "0.001", "--context", "1024"])
        #expect(none.status != 0 && none.err.contains("--batch-per-die 0.001 puts 0.32 requests on"), "\(none)")
    }

    /// The summary's hint, pasted, prices the engine's step: it printed the batch rounded to a
    /// whole request per die.
    @Test(arguments: ["0.5", "0.1"]) func theRunSummarysHintPricesTheEnginesStep(rate: String) throws {
        // At 0.1 req/s one pair of four decodes at the end: 0.125 requests per GPU over all eight,
        // which the bench (one instance) took as a quarter of a request per pair; the step is that
        // pair's, at one request.
        let run = try runBuiltXDS(["run", "--deployment", Self.pairs, "--rate", rate, "--duration", "120s", "--quiet"])
        #expect(run.status == 0, "\(run)")
        let line = try #require(run.out.split(separator: "\n").first { $0.contains("prices that step") }, "\(run.out)")
        let words = line.split(separator: " ").map(String.init)
        let batch = try #require(words.firstIndex(of: "--batch-per-die").map { words[$0 + 1] })
        // 0.75 requests per GPU at the end (six of eight GPUs' worth): the hint said 1.
        #expect(Double(batch).map { $0 != $0.rounded() } == true, "\(line)")
        let (step, benchStep) = try Self.stepAndHintsPrice(line)
        #expect(abs(benchStep - step) <= 0.15, "summary \(step) ms, bench \(benchStep) ms: \(line)")
    }

    /// The summary line's step and what its `bench decode …` hint, run, prices.
    static func stepAndHintsPrice(_ line: Substring) throws -> (step: Double, bench: Double) {
        let words = line.split(separator: " ").map(String.init)
        let step = try #require(line.range(of: "step ").map { line[$0.upperBound...].prefix { $0 != " " } }.flatMap { Double($0) })
        let bench = Array(words[try #require(words.firstIndex(of: "bench"))...].prefix { $0 != "prices" })
        let priced = try runBuiltXDS(bench + ["--json"])
        let json = try #require(JSONSerialization.jsonObject(with: Data(priced.out.utf8)) as? [String: Any], "\(priced)")
        return (step, try #require(json["step_ms"] as? Double))
    }

    /// Below one request per DP group (or attention die) most groups hold none and the rest one,
    /// and the barrier waits for a group holding a whole request: the hint priced a group of the
    /// mean's fraction, 2.7–5.0% under the engine's step on these three (now within 0.3–2.1%).
    @Test(arguments: [["--duration", "120s"], ["--deployment", "colocated-288", "--duration", "120s"],
                      ["--deployment", "xdeepserve-ma", "--rate", "5", "--duration", "120s"]])
    func underOneRequestPerGroupTheHintPricesAWholeRequestsGroup(flags: [String]) throws {
        let run = try runBuiltXDS(["run"] + flags + ["--quiet"])
        #expect(run.status == 0, "\(run)")
        let line = try #require(run.out.split(separator: "\n").first { $0.contains("prices that step") }, "\(run.out)")
        let words = line.split(separator: " ").map(String.init)
        let batch = try #require(words.firstIndex(of: "--batch-per-die").flatMap { Double(words[$0 + 1]) })
        #expect(batch < 1, "\(line)")
        let (step, benchStep) = try Self.stepAndHintsPrice(line)
        #expect(abs(benchStep / step - 1) <= 0.025, "summary \(step) ms, bench \(benchStep) ms: \(line)")
    }

    /// A colocated TE still prefilling at the end steps decode and a prefill chunk together; the
    /// summary set that mixed step (49.1 ms) beside a bench of pure decode (19.7 ms) as if the
    /// bench priced it. It says how much of the step was prefill, and the bench prices the rest.
    @Test func aMixedStepIsSaidToHoldPrefill() throws {
        let run = try runBuiltXDS(["run", "--deployment", "colocated:8:llama-3-70b:nvidia-h100:tp8", "--rate", "50",
                                   "--duration", "120s", "--quiet"])
        #expect(run.status == 0, "\(run)")
        let line = try #require(run.out.split(separator: "\n").first { $0.contains("bench decode") }, "\(run.out)")
        #expect(line.contains(" of it a prefill chunk mixed in)") && line.hasSuffix(" prices its decode part"), "\(line)")
        let words = line.split(separator: " ").map(String.init)
        let bench = Array(words[try #require(words.firstIndex(of: "bench"))...].prefix { $0 != "prices" })
        let priced = try runBuiltXDS(bench + ["--json"])
        let json = try #require(JSONSerialization.jsonObject(with: Data(priced.out.utf8)) as? [String: Any], "\(priced)")
        let benchStep = try #require(json["step_ms"] as? Double)
        // step S ms (P ms of it …): the decode part is S − P.
        func number(after key: String) throws -> Double {
            let tail = try #require(line.range(of: key).map { line[$0.upperBound...] }, "\(key): \(line)")
            return try #require(Double(tail.prefix { $0 != " " }), "\(line)")
        }
        let step = try number(after: "step "), prefill = try number(after: "ms (")
        #expect(abs(benchStep - (step - prefill)) <= 0.25, "decode part \(step - prefill) ms, bench \(benchStep) ms: \(line)")
        // A PD-disaggregated pod's decode TEs never prefill: no such words.
        let pd = try runBuiltXDS(["run", "--duration", "30s", "--quiet"])
        #expect(pd.status == 0 && !pd.out.contains("prefill chunk") && pd.out.contains(" prices that step"), "\(pd.out)")
    }

    /// The engine's EPLB plans from the last window while the hot experts move; the bench plans
    /// fresh on the popularity it prices. The hint carries the balance the step was priced at (per
    /// group of layers): without it, a saturated superpod's step at 200 s ran 5.7% over the line.
    @Test func theHintCarriesTheExpertBalanceTheStepWasPricedAt() throws {
        let run = try runBuiltXDS(["run", "--rate", "400", "--mix", "reasoning", "--duration", "200s", "--quiet"])
        #expect(run.status == 0, "\(run)")
        let line = try #require(run.out.split(separator: "\n").first { $0.contains("prices that step") }, "\(run.out)")
        let words = line.split(separator: " ").map(String.init)
        let given = try #require(words.firstIndex(of: "--moe-load-factor").map { words[$0 + 1] }, "\(line)")
        let factors = given.split(separator: ",").compactMap { Double($0) }
        #expect(factors.count == 4 && factors.allSatisfy { $0 >= 1 }, "\(line)")
        let (step, benchStep) = try Self.stepAndHintsPrice(line)
        #expect(abs(benchStep / step - 1) <= 0.06, "summary \(step) ms, bench \(benchStep) ms: \(line)")
        // Without the balance, the fresh plan's price is further off.
        let fresh = line.replacingOccurrences(of: " --moe-load-factor \(given)", with: "")
        let (_, freshStep) = try Self.stepAndHintsPrice(Substring(fresh))
        #expect(abs(step - benchStep) < abs(step - freshStep) - 0.5, "engine \(step), hint \(benchStep), fresh \(freshStep)")
        // A list the bench cannot read is refused with one line.
        for bad in ["1,,2", "abc", "1.2,x", ""] {
            let r = try runBuiltXDS(["bench", "decode", "--moe-load-factor", bad])
            #expect(r.status != 0 && r.out.isEmpty && r.err.split(separator: "\n").count == 1
                    && r.err.hasPrefix("xds: --moe-load-factor must be"), "\(bad): \(r)")
        }
    }
}
