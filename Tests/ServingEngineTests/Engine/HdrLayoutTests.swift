import Foundation
import Histogram
import SimKit
import Testing

@testable import ServingEngine

/// ``HdrLayout`` is HdrHistogram's slot arithmetic redone once per sample for
/// ``LatencyHistogram``: every answer must be the library's, at both precisions the engine uses.
@Suite struct HdrLayoutTests {
    private func values(seed: UInt64) -> [UInt64] {
        var out = Array(UInt64(0)...5_000)
        for shift in 1..<50 {
            let p = UInt64(1) << UInt64(shift)
            out += [p - 1, p, p + 1]
        }
        var rng = RandomStream(seed: seed)
        out += (0..<20_000).map { _ in UInt64(pow(10, 14.8 * Double.random(in: 0..<1, using: &rng))) }
        out += [35_999_999_999, 36_000_000_000, LatencyHistogram.highestTrackable - 1, LatencyHistogram.highestTrackable]
        return out.filter { $0 <= LatencyHistogram.highestTrackable }
    }

    @Test(arguments: [SignificantDigits.one, .three])
    func slotsAreTheLibrarys(digits: SignificantDigits) {
        let layout = HdrLayout(highestTrackableValue: LatencyHistogram.highestTrackable, digits: digits)
        let library = Histogram<UInt64>(highestTrackableValue: LatencyHistogram.highestTrackable,
                                        numberOfSignificantValueDigits: digits)
        var lastIndex = -1, lastValue: UInt64 = 0
        for v in values(seed: UInt64(digits.rawValue)).sorted() {
            let slot = layout.slot(of: v)
            #expect(slot.lowest == library.lowestEquivalentForValue(v), "lowest of \(v)")
            #expect(slot.size == library.sizeOfEquivalentRangeForValue(v), "size of \(v)")
            #expect(layout.highestEquivalent(v) == library.highestEquivalentForValue(v), "highest of \(v)")
            #expect(layout.lowestValue(ofSlot: slot.index) == slot.lowest, "slot \(slot.index) of \(v)")
            #expect(slot.index >= 0 && slot.index < layout.slotCount)
            // Slots follow values: the same slot for equivalent values, the next one past its top.
            if v > lastValue && lastIndex >= 0 {
                let sameSlot = library.lowestEquivalentForValue(v) == library.lowestEquivalentForValue(lastValue)
                #expect(sameSlot ? slot.index == lastIndex : slot.index > lastIndex)
                if !sameSlot && library.highestEquivalentForValue(lastValue) + 1 == slot.lowest { #expect(slot.index == lastIndex + 1) }
            }
            (lastIndex, lastValue) = (slot.index, v)
        }
        // A library histogram records the highest trackable value in its last slot or before.
        var h = library
        let recorded = h.record(LatencyHistogram.highestTrackable)
        #expect(recorded)
        #expect(layout.slot(of: LatencyHistogram.highestTrackable).index < layout.slotCount)
    }

    /// The slot walk's mean (used once the integer midpoint sum would pass 2^53) is the
    /// library's, and so is the count.
    @Test func slotWalkMeanIsTheLibrarys() {
        var h = LatencyHistogram()
        var rng = RandomStream(seed: 9)
        for n in [1, 10, 5_000] {
            for _ in 0..<n { h.record(seconds: pow(10, -6 + 10 * Double.random(in: 0..<1, using: &rng))) }
            #expect(h.slotWalkMean() == h.referenceMean)
            #expect(h.count == h.referenceCount)
            if h.count == 1 {
                // One sample: the midpoint mean is kept within the samples, i.e. it is the sample.
                #expect(h.summary().meanMs == h.summary().p50Ms)
            } else {
                #expect(abs(h.slotWalkMean() / 1_000 - h.summary().meanMs) <= 1e-9 * h.summary().meanMs)
            }
        }
    }
}
