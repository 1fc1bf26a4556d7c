import Foundation
import PodModel
import SimKit
import Testing
@testable import ServingEngine

/// The rebalance lines of the event log print their figures through the C library's formatter
/// directly (``EPLBController/fixed(_:_:)``), not Foundation's `String(format:)`: the lines must
/// read exactly as before, digit for digit, whatever the figure.
@Suite struct EPLBMessageTests {
    @Test func fixedDecimalsReadAsStringFormatDoes() {
        var values: [Double] = [0, -0.0, 1, -1, 0.005, 0.015, 0.125, 0.375, 1.005, 2.675, 1.155, 1.165, 9.995,
                                99.995, 1e-9, 123_456.785, 1e15 + 0.5, 1e22, 1.7976931348623157e308,
                                -2.5e-3, 4.999_999_999, .infinity, -.infinity, .nan, .leastNonzeroMagnitude]
        var rng = RandomStreams(seed: 12).stream("fixed")
        for _ in 0..<2_000 {
            values.append(rng.uniform(in: 0..<5))
            values.append(Double(rng.int(in: 0...100_000)) / 1_000)  // ties at the third decimal
            values.append(rng.uniform(in: -1e6..<1e6))
        }
        for x in values {
            for digits in [0, 2] {
                #expect(EPLBController.fixed(x, digits) == String(format: "%.\(digits)f", x), "\(x), \(digits)")
            }
        }
    }

    /// Whether `text` is `pattern` with each `#` a figure printed with two decimals.
    static func matches(_ text: String, _ pattern: String) -> Bool {
        var rest = Substring(text)
        for (i, literal) in pattern.split(separator: "#", omittingEmptySubsequences: false).enumerated() {
            if i > 0 {
                let figure = rest.prefix { $0.isNumber || $0 == "." }
                let parts = figure.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, parts[1].count == 2 else { return false }
                rest = rest.dropFirst(figure.count)
            }
            guard rest.hasPrefix(literal) else { return false }
            rest = rest.dropFirst(literal.count)
        }
        return rest.isEmpty
    }

    @Test func rebalanceLinesKeepTheirWording() {
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        var routing = ExpertRouting(shape: ModelSpecShape(moeLayers: 58, experts: 256), dies: 288, slotsPerDie: 1,
                                    seed: 3)
        var controller = EPLBController(mode: .on, cost: cost)
        _ = routing.stepLoadFactor(tokens: 4_000)
        let started = controller.requestRebalance(now: 1, routing: &routing)
        #expect(started.started)
        #expect(started.message.hasPrefix("rebalance started (greedy): collected-load imbalance "), "\(started.message)")
        #expect(started.message.hasSuffix(" dies get new experts"), "\(started.message)")
        let figures = started.message.dropFirst("rebalance started (greedy): collected-load imbalance ".count)
        #expect(Self.matches(String(figures.prefix { $0 != ";" }), "# → # planned"), "\(started.message)")
        var done: [EPLBController.Outcome] = []
        var now = 1.0
        while controller.phase != .idle && now < 100 {
            now += 0.01
            done += controller.tick(now: now, routing: &routing)
        }
        let line = done.last?.message ?? ""
        #expect(Self.matches(line, "rebalance done in # s: served imbalance # → #"), "\(line)")
        // Nothing left to gain: the operator's rebalance says why.
        _ = routing.stepLoadFactor(tokens: 4_000)
        let again = controller.requestRebalance(now: now + 1, routing: &routing)
        if !again.started {
            #expect(Self.matches(again.message,
                                 "rebalance skipped: collected-load imbalance #, plan # (the current placement is already as good)"),
                    "\(again.message)")
        }
    }
}
