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
        histogram(
            &b, Rect(x: top.x, y: top.y, width: w, height: top.height), "TTFT", s.histograms.ttft,
            (l.ttftP50Ms, l.ttftP90Ms, l.ttftP99Ms), slo: s.slo.ttftMs)
        histogram(
            &b, Rect(x: top.x + w, y: top.y, width: w, height: top.height), "TPOT", s.histograms.tpot,
            (l.tpotP50Ms, l.tpotP90Ms, l.tpotP99Ms), slo: s.slo.tpotMs)
        histogram(
            &b, Rect(x: top.x + 2 * w, y: top.y, width: top.width - 2 * w, height: top.height), "E2E",
            s.histograms.e2e, (l.e2eP50Ms, l.e2eP90Ms, l.e2eP99Ms), slo: nil)
        trends(&b, bottom, s)
    }

    /// Vertical bars, one column per bin (bins folded by sum when there are more bins than
    /// columns); bins above the SLO are drawn in the "bad" colour and ▲ marks the SLO.
    static func histogram(
        _ b: inout CellBuffer, _ rect: Rect, _ name: String, _ bins: HistogramBins,
        _ p: (Double, Double, Double), slo: Double?
    ) {
        b.box(rect, title: name)
        let inner = rect.inner
        let barRows = inner.height - 4
        guard barRows >= 1, inner.width >= 4 else { return }
        let n = min(bins.counts.count, bins.upperBoundsMs.count)
        let plotWidth = inner.width - 2
        if n > 0 {
            let fold = (n + plotWidth - 1) / plotWidth
            var columns: [(count: Int, upper: Double)] = []
            var i = 0
            while i < n {
                let j = min(n, i + fold)
                columns.append((bins.counts[i..<j].reduce(0, +), bins.upperBoundsMs[j - 1]))
                i = j
            }
            let top = max(1, columns.map(\.count).max() ?? 1)
            for (c, column) in columns.enumerated() {
                let eighths = Int((Double(column.count) / Double(top) * Double(barRows * 8)).rounded())
                let over = slo.map { column.upper > $0 } ?? false
                let style: Style = slo == nil ? .accent : over ? .bad : .good
                for r in 0..<barRows {
                    let level = eighths - r * 8
                    guard level > 0 else { break }
                    let glyph = level >= 8 ? "█" : CellBuffer.sparkGlyphs[level - 1]
                    b[inner.x + 1 + c, inner.y + barRows - 1 - r] = Cell(character: glyph, style: style)
                }
            }
            let axisY = inner.y + barRows
            b.put(String(repeating: "─", count: columns.count), x: inner.x + 1, y: axisY, style: .dim)
            if let slo, let index = columns.firstIndex(where: { $0.upper >= slo }) {
                b.put("▲", x: inner.x + 1 + index, y: axisY, style: .warn)
            }
            let last = columns.last!.upper
            b.put("0", x: inner.x + 1, y: axisY + 1, style: .dim)
            let maxLabel = Format.ms(last)
            b.put(
                maxLabel, x: inner.x + 1 + max(1, columns.count - maxLabel.count), y: axisY + 1, style: .dim,
                clip: inner)
        } else {
            b.put("no samples yet", x: inner.x + 1, y: inner.y, style: .dim)
        }
        func mark(_ v: Double) -> Style { slo.map { v > $0 ? .bad : .good } ?? .text }
        var x = inner.x + 1
        for (label, v) in [("p50 ", p.0), ("  p90 ", p.1)] {
            x = b.put(label, x: x, y: inner.maxY - 2, style: .dim, clip: inner)
            x = b.put(Format.ms(v), x: x, y: inner.maxY - 2, style: mark(v), clip: inner)
        }
        x = b.put("p99 ", x: inner.x + 1, y: inner.maxY - 1, style: .dim, clip: inner)
        x = b.put(Format.ms(p.2), x: x, y: inner.maxY - 1, style: mark(p.2), clip: inner)
        if let slo {
            b.put("  ▲ SLO \(Format.ms(slo))", x: x, y: inner.maxY - 1, style: .warn, clip: inner)
        }
    }

    static func trends(_ b: inout CellBuffer, _ rect: Rect, _ s: Snapshot) {
        let seconds = Format.fixed(s.series.intervalSeconds, s.series.intervalSeconds < 1 ? 1 : 0)
        b.box(rect, title: "Over time · one point per \(seconds) s")
        let inner = rect.inner
        let series: [(String, [Double], String, Style)] = [
            (
                "TTFT p99", s.series.ttftP99Ms, Format.ms(s.latency.ttftP99Ms),
                s.latency.ttftP99Ms > s.slo.ttftMs ? .bad : .good
            ),
            (
                "TPOT p99", s.series.tpotP99Ms, Format.ms(s.latency.tpotP99Ms),
                s.latency.tpotP99Ms > s.slo.tpotMs ? .bad : .good
            ),
            ("E2E p99", s.series.e2eP99Ms, Format.ms(s.latency.e2eP99Ms), .accent),
            ("tokens/s", s.series.outputTokensPerSecond, Format.count(s.outputTokensPerSecond), .accent),
            ("running", s.series.running, Format.count(s.requests.running), .accent),
            ("waiting", s.series.waiting, Format.count(s.requests.waiting), .warn),
        ]
        for (i, (label, values, now, style)) in series.prefix(inner.height).enumerated() {
            let y = inner.y + i
            b.put(label, x: inner.x + 1, y: y, style: .dim)
            b.put(Format.right(now, 8), x: inner.x + 10, y: y, style: style)
            b.sparkline(values, x: inner.x + 20, y: y, width: inner.width - 21, style: style)
        }
    }
}
