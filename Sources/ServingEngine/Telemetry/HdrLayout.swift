import Histogram

/// HdrHistogram's slot layout (hdrhistogram-swift with a lowest discernible value of 1): the
/// slot a value is counted in, the lowest value of that slot and how many values it spans, all
/// from one bucket computation. ``LatencyHistogram`` keeps its own counts in this layout: the
/// library's `record`, then its `lowestEquivalentForValue` and `sizeOfEquivalentRangeForValue`
/// for the midpoint sum, each computed the bucket again, and with the counts' uniqueness checks
/// and an interval histogram's copy-on-reset a sample cost ~590 instructions (7.6% of an Azure
/// code replay). HdrLayoutTests check every answer against the library's.
struct HdrLayout: Sendable {
    let subBucketHalfCountMagnitude: Int
    let subBucketCount: Int
    let subBucketMask: UInt64
    /// Leading zeros of the largest value that fits in bucket 0.
    let leadingZeroCountBase: Int
    /// Slots needed to count values up to the highest trackable one.
    let slotCount: Int

    /// The library's construction for `Histogram(highestTrackableValue:numberOfSignificantValueDigits:)`.
    init(highestTrackableValue: UInt64, digits: SignificantDigits) {
        // Unit resolution up to 2·10^digits, rounded up to a power of two.
        var largestWithUnitResolution: UInt64 = 2
        for _ in 0..<max(0, Int(digits.rawValue)) { largestWithUnitResolution *= 10 }
        let subBucketCountMagnitude = Int(Double.log2(Double(largestWithUnitResolution)).rounded(.up))
        subBucketHalfCountMagnitude = max(subBucketCountMagnitude, 1) - 1
        subBucketCount = 1 << subBucketCountMagnitude
        subBucketMask = UInt64(subBucketCount - 1)
        leadingZeroCountBase = 64 - subBucketCountMagnitude
        var smallestUntrackable = UInt64(subBucketCount)
        var buckets = 1
        while smallestUntrackable <= highestTrackableValue {
            if smallestUntrackable > UInt64.max / 2 {
                buckets += 1
                break
            }
            smallestUntrackable <<= 1
            buckets += 1
        }
        slotCount = (buckets + 1) * (subBucketCount / 2)
    }

    /// Where `value` is counted: its slot, that slot's lowest value and its width in values.
    @inline(__always)
    func slot(of value: UInt64) -> (index: Int, lowest: UInt64, size: UInt64) {
        let bucket = leadingZeroCountBase - (value | subBucketMask).leadingZeroBitCount
        let sub = Int(truncatingIfNeeded: value &>> UInt64(bucket))
        let index = ((bucket + 1) &<< subBucketHalfCountMagnitude) + (sub - (subBucketCount >> 1))
        let lowest = UInt64(truncatingIfNeeded: sub) &<< UInt64(bucket)
        let size = UInt64(1) &<< UInt64(sub >= subBucketCount ? bucket + 1 : bucket)
        return (index, lowest, size)
    }

    func lowestEquivalent(_ value: UInt64) -> UInt64 { slot(of: value).lowest }

    func highestEquivalent(_ value: UInt64) -> UInt64 {
        let s = slot(of: value)
        return s.lowest + s.size - 1
    }

    /// The lowest value of slot `index` (the library's `valueFromIndex`).
    func lowestValue(ofSlot index: Int) -> UInt64 {
        let half = subBucketCount >> 1
        var bucket = (index >> subBucketHalfCountMagnitude) - 1
        var sub = (index & (half - 1)) + half
        if bucket < 0 {
            sub -= half
            bucket = 0
        }
        return UInt64(sub) << UInt64(bucket)
    }
}
