import ServingEngine

/// View 4: latency distributions against the SLOs, and how they move over time.
enum LatencyView {
    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let trendRows = 8
        let (top, bottom) = area.splitTop(area.height - trendRows)
        let w = top.width / 3
        let l = s.latency
        let (h, covered) = state.memory.histograms(state.latencyWindow, now: s)
        // The window was cut from older samples (otherwise it is everything since start).
        let cut = state.latencyWindow != .all && covered < s.simTime
        let window = windowLabel(state.latencyWindow, covered: covered, cut: cut)
        // One wording for the three titles side by side (at 80 columns "since start" fitted the
        // E2E title but not TTFT's, which said "all" beside it for the same samples).
        let panels = [("TTFT", h.ttft, w), ("TPOT", h.tpot, w), ("E2E", h.e2e, top.width - 2 * w)]
        let titles = sharedTitles(panels, window: window)
        // The y scale in one wording too: "tallest bar N of n M" where every panel holds it
        // (N ≤ M, so M in its place bounds the length), else "↑N of n M" in all three.
        let longScale = panels.allSatisfy { _, bins, width in
            let total = Format.count(bins.counts.reduce(0, +))
            return "tallest bar \(total) of n \(total)".count <= width - 3
        }
        // Since start: the engine's exact percentiles. A window: read off the window's bins.
        func p(_ bins: HistogramBins, _ exact: (Double, Double, Double)) -> (Double, Double, Double) {
            guard cut else { return exact }
            return (
                ConsoleMemory.quantile(bins, 0.5) ?? 0, ConsoleMemory.quantile(bins, 0.9) ?? 0,
                ConsoleMemory.quantile(bins, 0.99) ?? 0
            )
        }
        histogram(
            &b, Rect(x: top.x, y: top.y, width: w, height: top.height), "TTFT", h.ttft,
            p(h.ttft, (l.ttftP50Ms, l.ttftP90Ms, l.ttftP99Ms)), slo: s.slo.ttftMs, title: titles[0], longScale: longScale, estimated: cut)
        histogram(
            &b, Rect(x: top.x + w, y: top.y, width: w, height: top.height), "TPOT", h.tpot,
            p(h.tpot, (l.tpotP50Ms, l.tpotP90Ms, l.tpotP99Ms)), slo: s.slo.tpotMs, title: titles[1], longScale: longScale, estimated: cut)
        histogram(
            &b, Rect(x: top.x + 2 * w, y: top.y, width: top.width - 2 * w, height: top.height), "E2E",
            h.e2e, p(h.e2e, (l.e2eP50Ms, l.e2eP90Ms, l.e2eP99Ms)), slo: nil, title: titles[2], longScale: longScale, estimated: cut)
        trends(&b, bottom, s)
    }

    /// "1 min", "10 min", "all": the window in the panel titles. A window not yet filled says
    /// how much it holds ("0:42/1 min"); one the console cannot cut yet (it has no sample old
    /// enough, e.g. right after attaching) says "since start".
    static func windowLabel(_ window: LatencyWindow, covered: Double, cut: Bool = true) -> String {
        guard let seconds = window.seconds else { return "all" }
        guard cut else { return "since start" }
        let name = window == .oneMinute ? "1 min" : "10 min"
        if covered < seconds - ConsoleMemory.sampleSeconds { return "\(Format.duration(covered)) of \(name)" }
        // Samples sparser than the window (a paused or slow console): say what it really covers.
        if covered > seconds + 2 * ConsoleMemory.sampleSeconds { return "last \(Format.duration(covered))" }
        return "last \(name)"
    }

    /// A histogram panel's title, longest first: what, over which window, on which axis, with
    /// the window and then the axis word shortened ("since start" → "all", "log axis" → "log").
    /// Always four, so the panels' candidates line up.
    static func titleCandidates(_ name: String, _ bins: HistogramBins, window: String) -> [String] {
        let n = min(bins.counts.count, bins.upperBoundsMs.count)
        let log = isLogAxis(Array(bins.upperBoundsMs.prefix(n)))
        let scales = n > 1 ? [log ? "log axis" : "linear axis", log ? "log" : "lin"] : ["", ""]
        return [window, shortWindow(window)].flatMap { w in
            scales.map { scale in [name, w, scale].filter { !$0.isEmpty }.joined(separator: " · ") }
        }
    }

    /// The panels' titles in one wording: the longest that fits every panel (its width less the
    /// box corners and padding), else the shortest.
    static func sharedTitles(_ panels: [(name: String, bins: HistogramBins, width: Int)], window: String) -> [String] {
        let candidates = panels.map { titleCandidates($0.name, $0.bins, window: window) }
        let form = (0..<4).first { i in zip(candidates, panels).allSatisfy { $0[i].count <= $1.width - 4 } } ?? 3
        return candidates.map { $0[form] }
    }

    /// "last 1 min" → "1m", "since start" → "all", "42 s of 1 min" → "42s/1m".
    static func shortWindow(_ label: String) -> String {
        switch label {
        case "last 1 min": "1m"
        case "last 10 min": "10m"
        case "since start", "all": "all"
        case _ where label.hasPrefix("last "): String(label.dropFirst(5).filter { $0 != " " }.prefix(7))
        default:
            // "42 s of 1 min" → "42s/1m"; "3:10 min of 10 min" → "3:10/10m".
            String(label.filter { $0 != " " }).split(separator: "of").map {
                $0.hasSuffix("min") ? String($0.dropLast(3)) + ($0.contains(":") ? "" : "m") : String($0)
            }.joined(separator: "/")
        }
    }

    /// True when the bin bounds grow by a constant factor (a log axis).
    static func isLogAxis(_ upper: [Double]) -> Bool {
        let ratios = zip(upper.dropFirst(), upper).compactMap { $1 > 0 ? $0 / $1 : nil }
        guard let first = ratios.first, first > 1.05 else { return false }
        return ratios.allSatisfy { abs($0 / first - 1) < 0.05 }
    }

    /// A bar's colour: within the SLO "good", wholly above it "bad", and a bar whose range
    /// holds the SLO "warn" (its counts do not say how many of its samples are over: a 2×-wide
    /// log bin of 1.02–2.05 s under a 2 s SLO is mostly within it, and red said it was not).
    /// Without an SLO, the accent colour.
    static func barStyle(lower: Double, upper: Double, slo: Double?) -> Style {
        guard let slo else { return .accent }
        if upper <= slo { return .good }
        return lower >= slo ? .bad : .warn
    }

    /// Vertical bars that fill the panel: the occupied bins (and the SLO's) are spread over
    /// the whole width (folded by sum when there are more bins than columns), the axis has
    /// tick labels at bin bounds and says whether it is log or linear, bins above the SLO are
    /// drawn in the "bad" colour and the bin holding it in "warn" (``barStyle(lower:upper:slo:)``),
    /// and ▲ marks the SLO, clamped at the edge when it is off the axis.
    static func histogram(
        _ b: inout CellBuffer, _ rect: Rect, _ name: String, _ bins: HistogramBins,
        _ p: (Double, Double, Double), slo: Double?, window: String = "", title shared: String? = nil,
        longScale: Bool? = nil, estimated: Bool = false
    ) {
        let n = min(bins.counts.count, bins.upperBoundsMs.count)
        let upper = Array(bins.upperBoundsMs.prefix(n))
        // The title says what, over which window, on which axis; it shortens before it is cut
        // (or it is the one the caller chose for panels side by side).
        let candidates = shared == nil ? titleCandidates(name, bins, window: window) : []
        let title = shared ?? candidates.first { $0.count <= rect.width - 4 } ?? candidates[3]
        b.box(rect, title: title)
        let inner = rect.inner
        // Row 0: the y scale; then the bars, the axis, its ticks, p50/p90 and p99.
        let barRows = inner.height - 5
        guard barRows >= 1, inner.width >= 4 else { return }
        let plotWidth = inner.width - 2
        let occupied = (0..<n).filter { bins.counts[$0] > 0 }
        var sloOff: Character?
        if n > 0, let firstBin = occupied.first, let lastOccupied = occupied.last {
            let sloBin = slo.flatMap { v in upper.firstIndex { $0 >= v } }
            let lastBin = max(lastOccupied, sloBin ?? lastOccupied)
            let firstShown = min(firstBin, sloBin ?? firstBin)
            // Bins shown: first occupied … last occupied (or the SLO's bin).
            let shown = Array(firstShown...lastBin)
            let fold = (shown.count + plotWidth - 1) / plotWidth
            var columns: [(count: Int, lower: Double, upper: Double)] = []
            var i = 0
            while i < shown.count {
                let j = min(shown.count, i + fold)
                let lo = shown[i] > 0 ? upper[shown[i] - 1] : 0
                columns.append((bins.counts[shown[i]...shown[j - 1]].reduce(0, +), lo, upper[shown[j - 1]]))
                i = j
            }
            let span = max(1, plotWidth / columns.count)
            let top = max(1, columns.map(\.count).max() ?? 1)
            // The y scale: the tallest bar's count, at its top.
            let total = columns.map(\.count).reduce(0, +)
            let scaleLabel = "tallest bar \(Format.count(top)) of n \(Format.count(total))"
            b.put(
                (longScale ?? (scaleLabel.count <= inner.width - 1)) ? scaleLabel : "↑\(Format.count(top)) of n \(Format.count(total))",
                x: inner.x + 1, y: inner.y, style: .dim, clip: inner)
            for (c, column) in columns.enumerated() {
                let eighths = Int((Double(column.count) / Double(top) * Double(barRows * 8)).rounded())
                let style = Self.barStyle(lower: column.lower, upper: column.upper, slo: slo)
                for r in 0..<barRows {
                    let level = eighths - r * 8
                    guard level > 0 else { break }
                    let glyph = level >= 8 ? "█" : CellBuffer.sparkGlyphs[level - 1]
                    for k in 0..<span {
                        b[inner.x + 1 + c * span + k, inner.y + barRows - r] = Cell(character: glyph, style: style)
                    }
                }
            }
            let used = columns.count * span
            let axisY = inner.y + 1 + barRows
            b.put(String(repeating: "─", count: used), x: inner.x + 1, y: axisY, style: .dim)
            // Tick labels at column edges, left to right, wherever they fit; the last edge
            // is right-aligned so the axis always shows its end.
            let endLabel = Format.ms(columns.last!.upper)
            let endX = inner.x + 1 + used - endLabel.count
            var nextFree = inner.x + 1
            for (c, column) in columns.enumerated() {
                let label = column.lower == 0 ? "0" : Format.ms(column.lower)
                let x = inner.x + 1 + c * span
                guard x >= nextFree, x + label.count < endX else { continue }
                b[x, axisY] = Cell(character: "┬", style: .dim)
                b.put(label, x: x, y: axisY + 1, style: .dim, clip: inner)
                nextFree = x + label.count + 1
            }
            b[inner.x + used, axisY] = Cell(character: "┤", style: .dim)
            b.put(endLabel, x: max(inner.x + 1, endX), y: axisY + 1, style: .dim, clip: inner)
            if let slo {
                if let index = columns.firstIndex(where: { $0.upper >= slo }) {
                    let within = (slo - columns[index].lower) / max(1e-9, columns[index].upper - columns[index].lower)
                    let offset = min(span - 1, Int(within * Double(span)))
                    b.put("▲", x: inner.x + 1 + index * span + max(0, offset), y: axisY, style: .warn)
                } else {
                    // Past the last bin: clamp at the edge and say so beside the value.
                    b.put("▲", x: inner.x + used, y: axisY, style: .warn)
                    sloOff = "→"
                }
            }
        } else {
            b.put("no samples yet", x: inner.x + 1, y: inner.y, style: .dim)
        }
        // With no sample a percentile is unknown: "–", not "0.0ms" in the "met" colour.
        let sampled = !occupied.isEmpty
        func mark(_ v: Double) -> Style { sampled ? slo.map { v > $0 ? .bad : .good } ?? .text : .dim }
        func value(_ v: Double) -> String { sampled ? Format.ms(v) : "–" }
        var x = inner.x + 1
        // Percentiles of a window are read off its bins: "≈".
        let eq = estimated ? "≈" : " "
        for (label, v) in [("p50" + eq, p.0), ("  p90" + eq, p.1)] {
            x = b.put(label, x: x, y: inner.maxY - 2, style: .dim, clip: inner)
            x = b.put(value(v), x: x, y: inner.maxY - 2, style: mark(v), clip: inner)
        }
        x = b.put("p99" + eq, x: inner.x + 1, y: inner.maxY - 1, style: .dim, clip: inner)
        x = b.put(value(p.2), x: x, y: inner.maxY - 1, style: mark(p.2), clip: inner)
        if let slo {
            b.put(sloLabel(Format.ms(slo), offAxis: sloOff != nil, room: inner.maxX - x), x: x, y: inner.maxY - 1,
                  style: .warn, clip: inner)
        }
    }

    /// The SLO beside p99, in the longest form that fits `room` columns: the value keeps its
    /// unit (at 80×24 "▲ SLO 35.0ms" lost its "s" to the panel edge); words and blanks go first.
    static func sloLabel(_ value: String, offAxis: Bool, room: Int) -> String {
        let forms =
            offAxis
            ? ["  ▲ SLO \(value) → off axis", "  ▲ SLO \(value) →", " ▲ SLO \(value)→", " ▲SLO \(value)→", " ▲\(value)→"]
            : ["  ▲ SLO \(value)", " ▲ SLO \(value)", " ▲SLO \(value)", " ▲\(value)"]
        return forms.first { $0.count <= room } ?? forms.last!
    }

    static func trends(_ b: inout CellBuffer, _ rect: Rect, _ s: Snapshot) {
        let interval = s.series.intervalSeconds
        let inner = rect.inner
        let sparkWidth = max(1, inner.width - 21 - 20)
        let points = min(sparkWidth, s.series.ttftP99Ms.count)
        let span = Double(points) * interval
        let seconds = Format.fixed(interval, interval < 1 ? 1 : 0)
        b.box(
            rect,
            title:
                rect.width >= 110
                    ? "Over time · last \(Format.duration(span)) (one point per \(seconds) s, newest right) · each line from its min to its max"
                    : "Over time · last \(Format.duration(span)) · 1 point/\(seconds) s · min…max")
        /// One line: its series, the live value beside it (nil: a p99 before its first sample,
        /// shown "–", as in the histograms above) and how a value reads.
        struct Trend {
            var label: String, values: [Double], now: Double?, text: String, style: Style
            var format: (Double) -> String
            /// A latency p99 of 0 is the telemetry's "no sample yet", not a value.
            var zeroIsGap = false
        }
        func p99(_ label: String, _ values: [Double], _ v: Double, _ bins: HistogramBins, slo: Double?) -> Trend {
            let seen = bins.hasSamples
            let style: Style = slo.map { !seen ? .dim : v > $0 ? .bad : .good } ?? .accent
            return Trend(label: label, values: values, now: seen ? v : nil, text: seen ? Format.ms(v) : "–", style: style,
                         format: Format.ms, zeroIsGap: true)
        }
        let trends = [
            p99("TTFT p99", s.series.ttftP99Ms, s.latency.ttftP99Ms, s.histograms.ttft, slo: s.slo.ttftMs),
            p99("TPOT p99", s.series.tpotP99Ms, s.latency.tpotP99Ms, s.histograms.tpot, slo: s.slo.tpotMs),
            p99("E2E p99", s.series.e2eP99Ms, s.latency.e2eP99Ms, s.histograms.e2e, slo: nil),
            Trend(label: "tok/s", values: s.series.outputTokensPerSecond, now: s.outputTokensPerSecond,
                  text: Format.count(s.outputTokensPerSecond), style: .accent, format: { Format.count($0) }),
            Trend(label: "running", values: s.series.running, now: Double(s.requests.running),
                  text: Format.count(s.requests.running), style: .accent, format: { Format.count($0) }),
            Trend(label: "waiting", values: s.series.waiting, now: Double(s.requests.waiting),
                  text: Format.count(s.requests.waiting), style: .warn, format: { Format.count($0) }),
        ]
        for (i, trend) in trends.prefix(inner.height).enumerated() {
            let y = inner.y + i
            b.put(trend.label, x: inner.x + 1, y: y, style: .dim)
            b.put(Format.right(trend.text, 8), x: inner.x + 10, y: y, style: trend.style)
            // The line ends at the value shown beside it, so its range covers that value: the
            // series is sampled every interval and lagged the live figure ("running 25" beside
            // a line whose range read 1…22).
            guard let now = trend.now else {
                b.put(" –", x: inner.x + 20 + sparkWidth, y: y, style: .dim, clip: inner)
                continue
            }
            // A p99's zeros are gaps in the line and out of its range (which read "0.0ms…4.22s"
            // after the first sample). Gaps keep every line's points in step, newest at the same column.
            let shown = Array((trend.values + [now]).suffix(sparkWidth)).map {
                $0.isFinite && (!trend.zeroIsGap || $0 > 0) ? $0 : .nan
            }
            let known = shown.filter(\.isFinite)
            let lo = known.min() ?? 0, hi = known.max() ?? 0
            b.sparkline(shown, x: inner.x + 20, y: y, width: sparkWidth, min: lo, max: hi, style: trend.style)
            b.put(
                " \(trend.format(lo))…\(trend.format(hi))", x: inner.x + 20 + sparkWidth, y: y, style: .dim, clip: inner)
        }
    }
}
