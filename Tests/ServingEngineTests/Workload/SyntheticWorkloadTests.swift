import SimKit
import Testing

@testable import ServingEngine

private func draw(_ workload: inout SyntheticWorkload, _ n: Int) -> [RequestSpec] {
    (0..<n).compactMap { _ in workload.next() }
}

@Suite struct SyntheticWorkloadTests {
    @Test func sameSeedSameRequests() {
        var a = SyntheticWorkload(seed: 4)
        var b = SyntheticWorkload(seed: 4)
        var c = SyntheticWorkload(seed: 5)
        let ra = draw(&a, 500)
        #expect(ra == draw(&b, 500))
        #expect(ra != draw(&c, 500))
    }

    /// A 4K-window model (Llama-2-7B) gets prompts of at most 4,095 tokens and outputs that fit
    /// what its prompt leaves; a 128K window never binds under the 32K/16K caps, so DeepSeek's
    /// traffic is the same request for request as with no window at all.
    @Test func lengthsFitTheModelsContextWindow() {
        var small = SyntheticWorkload.Configuration()
        small.classes = [.reasoning, .chat]
        small.contextWindow = 4_096
        var load = SyntheticWorkload(seed: 2, configuration: small)
        let requests = draw(&load, 3_000)
        #expect(requests.allSatisfy { $0.promptTokens <= 4_095 && $0.promptTokens + $0.outputTokens <= 4_096 })
        #expect(requests.contains { $0.promptTokens == 4_095 }, "the window binds: some prompts are cut")
        #expect(requests.allSatisfy { $0.outputTokens >= 1 })
        var open = SyntheticWorkload.Configuration()
        open.classes = small.classes
        var none = SyntheticWorkload(seed: 2, configuration: open)
        #expect(draw(&none, 3_000).contains { $0.promptTokens + $0.outputTokens > 4_096 })

        var wide = SyntheticWorkload.Configuration()
        wide.contextWindow = 131_072
        var a = SyntheticWorkload(seed: 7, configuration: wide)
        var b = SyntheticWorkload(seed: 7)
        #expect(draw(&a, 3_000) == draw(&b, 3_000))
    }

    @Test func arrivalRateAndLengthsMatchConfiguration() throws {
        var config = SyntheticWorkload.Configuration(ratePerSecond: 50)
        config.systemPromptShare = 0
        config.followUpShare = 0
        var load = SyntheticWorkload(seed: 1, configuration: config)
        let requests = draw(&load, 20_000)
        let rate = Double(requests.count) / (try #require(requests.last)).arrival
        #expect(abs(rate - 50) < 1.5)
        let reasoning = requests.filter { $0.tag == "reasoning" }
        let chat = requests.filter { $0.tag == "chat" }
        #expect(abs(Double(reasoning.count) / 20_000 - 0.3) < 0.015)
        let mean = { (rs: [RequestSpec], key: KeyPath<RequestSpec, Int>) in
            Double(rs.map { $0[keyPath: key] }.reduce(0, +)) / Double(rs.count)
        }
        #expect(abs(mean(chat, \.promptTokens) - 1_500) < 60)
        #expect(abs(mean(chat, \.outputTokens) - 400) < 15)
        #expect(abs(mean(reasoning, \.outputTokens) - 2_000) < 80)
        #expect(requests.allSatisfy { $0.prefixHashes.isEmpty && $0.promptTokens >= 1 })
        #expect(zip(requests, requests.dropFirst()).allSatisfy { $0.arrival <= $1.arrival && $0.id + 1 == $1.id })
    }

    @Test func setRateChangesArrivalsFromNowOn() throws {
        var load = SyntheticWorkload(seed: 2, configuration: .init(ratePerSecond: 10))
        let slow = draw(&load, 2_000)
        let switchTime = try #require(slow.last).arrival
        load.setRate(100, at: switchTime)
        let fast = draw(&load, 2_000)
        let fastEnd = try #require(fast.last).arrival
        let fastRate = Double(fast.count) / (fastEnd - switchTime)
        #expect(abs(fastRate - 100) < 6)
        #expect(load.ratePerSecond == 100)
        load.setRate(0, at: fastEnd)
        let none = load.next()
        #expect(none == nil)
        load.setRate(5, at: fastEnd + 60)
        let resumed = load.next()
        #expect((resumed?.arrival ?? 0) > fastEnd + 60)
    }

    /// Out-of-range settings are clamped to stated ranges instead of trapping (issue 10).
    @Test func hostileRatesAndBurstinessAreClampedNotTrapped() throws {
        var load = SyntheticWorkload(seed: 4, configuration: .init(ratePerSecond: 10))
        load.setRate(.nan, at: 0)
        #expect(load.ratePerSecond == 0)
        load.setRate(-5, at: 0)
        #expect(load.ratePerSecond == 0)
        load.setRate(1e308, at: .infinity)
        #expect(load.ratePerSecond == CommandLimits.maxRate)
        let pair = draw(&load, 2)
        #expect(pair.count == 2)
        #expect(pair.allSatisfy { $0.arrival.isFinite })
        for cv in [1e-300, 1e300, Double.nan, Double.infinity] {
            var bursty = SyntheticWorkload(seed: 5, configuration: .init(ratePerSecond: 1e300, arrivalCV: cv))
            let requests = draw(&bursty, 200)
            #expect(requests.count == 200)
            #expect(requests.allSatisfy { $0.arrival.isFinite && $0.promptTokens >= 1 && $0.outputTokens >= 1 })
        }
    }

    /// A rate within 0…10000 whose gap overflows (1/5e-324 is infinite) means no arrival within
    /// any time, as rate 0 does; it used to send every request at the generator's clock, a flood
    /// at one instant that kept `xds run --rate 5e-324` from ever finishing.
    @Test func aRateWhoseGapOverflowsSendsNothingUntilRaised() throws {
        for cv in [1.0, 3.0] {
            var load = SyntheticWorkload(seed: 3, configuration: .init(ratePerSecond: 5e-324, arrivalCV: cv))
            #expect(draw(&load, 50).isEmpty)
            load.setRate(5, at: 20)
            let next = load.next()
            let resumed = try #require(next)
            #expect(resumed.arrival >= 20 && resumed.arrival < 1e6)
        }
    }

    @Test func burstyArrivalsKeepTheMeanButVaryMore() {
        func gaps(cv: Double) -> (mean: Double, cv: Double) {
            var load = SyntheticWorkload(seed: 3, configuration: .init(ratePerSecond: 20, arrivalCV: cv))
            let times = draw(&load, 20_000).map(\.arrival)
            let g = zip(times, times.dropFirst()).map { $1 - $0 }
            let mean = g.reduce(0, +) / Double(g.count)
            let variance = g.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(g.count)
            return (mean, variance.squareRoot() / mean)
        }
        let poisson = gaps(cv: 1)
        let bursty = gaps(cv: 3)
        #expect(abs(poisson.mean - 0.05) < 0.002 && abs(bursty.mean - 0.05) < 0.004)
        #expect(abs(poisson.cv - 1) < 0.05)
        #expect(abs(bursty.cv - 3) < 0.3)
    }

    @Test func sessionsAndSystemPromptsShareLeadingBlocks() {
        var load = SyntheticWorkload(seed: 6)
        let requests = draw(&load, 3_000)
        var seen = Set<UInt64>()
        var reused = 0
        for r in requests {
            #expect(r.prefixHashes.count * r.prefixBlockTokens <= r.promptTokens)
            if let first = r.prefixHashes.first, seen.contains(first) { reused += 1 }
            seen.formUnion(r.prefixHashes)
        }
        // About half the fresh requests carry a system prompt and 30% are follow-ups.
        #expect(Double(reused) / 3_000 > 0.4)
        #expect(Set(requests.compactMap { $0.prefixHashes.first }).count > 100, "sessions add distinct prefixes")
    }

    /// Lengths are rounded by hand (no libm call): the same counts as `max(1, Int(x.rounded()))`
    /// below the cap, halves away from zero, and the cap at or above it.
    @Test func lengthsRoundAsRoundedDoes() {
        var values: [Double] = [-1e18, -3.5, -0.5, 0, 0.49999999999999994, 0.5, 1, 1.4999999999999998, 1.5,
                                2.5, 2.4999999999999996, 1_000.5, 32_767.5, 32_767.49, 4_503_599_627_370_495.5]
        var rng = RandomStreams(seed: 3).stream("lengths")
        for _ in 0..<10_000 { values.append(LogNormal(mean: 1_500, coefficientOfVariation: 1).sample(using: &rng)) }
        for k in 0..<2_000 { values.append(Double(k) / 2) }
        for x in values {
            for cap in [32_768, 16_384, Int(1) << 62] where x < Double(cap) {
                #expect(SyntheticWorkload.clampedLength(x, cap) == max(1, Int(x.rounded())), "x = \(x)")
            }
        }
        #expect(SyntheticWorkload.clampedLength(32_768, 32_768) == 32_768)
        #expect(SyntheticWorkload.clampedLength(1e300, 16_384) == 16_384)
        #expect(SyntheticWorkload.clampedLength(.infinity, 16_384) == 16_384)
        #expect(SyntheticWorkload.clampedLength(-.infinity, 16_384) == 1)
        #expect(SyntheticWorkload.clampedLength(.nan, 16_384) == 1)
        #expect(SyntheticWorkload.clampedLength(-1e300, 16_384) == 1)  // (`Int(x.rounded())` traps there)
    }

    /// A class whose lengths are not lognormal is drawn through the protocol: constant lengths
    /// come out as they are.
    @Test func classesWithOtherDistributionsDrawThroughTheProtocol() {
        var configuration = SyntheticWorkload.Configuration()
        configuration.classes = [.init(name: "fixed", share: 1, promptTokens: Constant(700), outputTokens: Constant(90))]
        configuration.followUpShare = 0
        configuration.systemPromptShare = 0
        var load = SyntheticWorkload(seed: 2, configuration: configuration)
        for r in draw(&load, 50) {
            #expect(r.promptTokens == 700 && r.outputTokens == 90 && r.tag == "fixed")
        }
    }

    /// A follow-up turn's keys are its session's earlier turn's keys and then its own: its
    /// prompt holds the whole earlier context.
    @Test func followUpsExtendTheirSessionsKeys() {
        var configuration = SyntheticWorkload.Configuration()
        configuration.followUpShare = 0.5
        configuration.sessionEndProbability = 0.1
        configuration.systemPromptShare = 0  // a first key is then its session's own
        var load = SyntheticWorkload(seed: 9, configuration: configuration)
        let requests = draw(&load, 2_000)
        var extended = 0
        for (index, r) in requests.enumerated() where r.prefixHashes.count > 0 {
            #expect(r.prefixHashes.count <= r.promptTokens / r.prefixBlockTokens)
            // The longest earlier request of the same session starts the same way.
            if let earlier = requests[..<index].last(where: { $0.prefixHashes.first == r.prefixHashes.first && $0.prefixHashes.count < r.prefixHashes.count }) {
                #expect(Array(r.prefixHashes.prefix(earlier.prefixHashes.count)) == earlier.prefixHashes)
                extended += 1
            }
        }
        #expect(extended > 300)
    }
}
