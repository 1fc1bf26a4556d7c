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
        // Each panel's axis (log over doubling bins, or linear over sub-bins for a narrow
        // spread) gives its title's scale word.
        let scales = zip(panels, [s.slo.ttftMs, s.slo.tpotMs, nil]).map { panel, slo in
            plan(panel.1, plotWidth: plotWidth(panelWidth: panel.2), slo: slo)?.scale ?? ""
        }
        let titles = sharedTitles(panels, window: window, scales: scales)
        // The y scale in one wording too: "tallest bar N of n M" where every panel holds it
        // (N ≤ M, so M in its place bounds the length), else "↑N of n M" in all three.
        let longScale = panels.allSatisfy { _, bins, width in
            let total = Format.count(bins.counts.reduce(0, +))
            return "tallest bar \(total) of n \(total)".count <= width - 4
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
            p(h.ttft, (l.ttftP50Ms, l.ttftP90Ms, l.ttftP99Ms)), slo: s.slo.ttftMs, title: titles[0], longScale: longScale, estimated: cut,
            monochrome: theme.monochrome)
        histogram(
            &b, Rect(x: top.x + w, y: top.y, width: w, height: top.height), "TPOT", h.tpot,
            p(h.tpot, (l.tpotP50Ms, l.tpotP90Ms, l.tpotP99Ms)), slo: s.slo.tpotMs, title: titles[1], longScale: longScale, estimated: cut,
            monochrome: theme.monochrome)
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

    /// A histogram panel's title, longest first: what, over which window, on which axis ("log"
    /// or "linear", `scale`; empty for a single column), with the window and then the axis word
    /// shortened ("since start" → "all", "log axis" → "log"). Always four, so the panels'
    /// candidates line up.
    static func titleCandidates(_ name: String, scale: String, window: String) -> [String] {
        let scales = scale.isEmpty ? ["", ""] : [scale + " axis", scale == "linear" ? "lin" : scale]
        return [window, shortWindow(window)].flatMap { w in
            scales.map { scale in [name, w, scale].filter { !$0.isEmpty }.joined(separator: " · ") }
        }
    }

    /// The panels' titles in one wording: the longest that fits every panel (its width less the
    /// box corners and padding), else the shortest. `scales`: each panel's axis word.
    static func sharedTitles(
        _ panels: [(name: String, bins: HistogramBins, width: Int)], window: String, scales: [String]
    ) -> [String] {
        let candidates = zip(panels, scales).map { titleCandidates($0.name, scale: $1, window: window) }
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

    /// Without colour a bar wholly over the SLO needs a glyph of its own: `╳` (ASCII `x`, not
    /// a sparkline level, so a short solid bar's top cell never reads as one); nil for a solid
    /// bar. Only the ▲ marker under the axis divided them under `NO_COLOR`. The bin holding the
    /// SLO stays solid: the ▲ stands under it, and a third glyph found no room in its legend
    /// at 80 columns.
    static func monoFill(_ style: Style) -> Character? {
        style == .bad ? "╳" : nil
    }

    /// The legend of ``monoFill(_:)`` in the longest form that fits `room` columns (empty if none).
    static func monoLegend(room: Int) -> String {
        ["  ╳ over SLO", " ╳ over SLO", " ╳>SLO"].first { $0.count <= room } ?? ""
    }

    /// The words for each bar colour of ``barStyle(lower:upper:slo:)``, longest first.
    static let barLegendWords: [(style: Style, words: [String])] = [
        (.good, ["within SLO", "within SLO", "≤SLO", "≤SLO"]),
        (.warn, ["bin holding SLO ▲", "SLO bin", "SLO bin", "SLO bin"]),
        (.bad, ["over SLO", "over SLO", ">SLO", ">SLO"]),
    ]

    /// The legend of the colours `styles` the bars are drawn in, on the panel's bottom border
    /// in the longest form that fits ("■ within SLO  ■ bin holding SLO ▲  ■ over SLO" down to
    /// "■≤SLO ■SLO bin ■>SLO"): the TTFT panel drew green, orange and red bins and nothing said
    /// what orange or red meant (only the ▲ SLO label, itself orange). Nothing when none fits.
    static func drawBarLegend(_ b: inout CellBuffer, _ rect: Rect, styles: [Style]) {
        let entries = barLegendWords.filter { styles.contains($0.style) }
        guard !entries.isEmpty else { return }
        let compact = 3
        let room = rect.width - 4
        guard let form = (0..<4).first(where: { k in
            let gap = k >= compact ? 1 : 2, pad = k >= compact ? 0 : 1
            return entries.map { 1 + pad + $0.words[k].count }.reduce(0, +) + gap * (entries.count - 1) <= room
        }) else { return }
        let gap = form >= compact ? " " : "  ", pad = form >= compact ? "" : " "
        let y = rect.maxY - 1
        var x = b.put(" ", x: rect.x + 1, y: y, style: .dim)
        for (i, entry) in entries.enumerated() {
            if i > 0 { x = b.put(gap, x: x, y: y, style: .dim) }
            x = b.put("■", x: x, y: y, style: entry.style)
            x = b.put(pad + entry.words[form], x: x, y: y, style: .dim)
        }
        b.put(" ", x: x, y: y, style: .dim)
    }

    /// The plot's width in a histogram panel `panelWidth` columns wide (borders and a blank
    /// column each side).
    static func plotWidth(panelWidth: Int) -> Int { panelWidth - 4 }

    /// What a histogram panel draws: columns of equal width on screen, each a range of ms and
    /// its count, and the axis they make.
    struct Plan: Equatable {
        struct Column: Equatable {
            var count: Int
            var lower: Double, upper: Double
        }
        var columns: [Column]
        /// Equal ranges per column (a linear axis), else the bins as they come (the engine's
        /// doubling ones: log).
        var linear: Bool
        /// The SLO off the axis: `→` past its end, `←` before its start; nil on it, or no SLO.
        var sloOff: Character?
        /// The title's scale word: "log", "linear", or "" for a single column.
        var scale: String { columns.count <= 1 ? "" : linear ? "linear" : "log" }
        /// The column width of an axis of sub-bins (its tick labels and scale line show it).
        var step: Double?
    }

    /// The columns a histogram panel shows, deterministic in its inputs. A narrow spread (the
    /// samples within fewer than ``narrowBins`` doubling bins, e.g. a TPOT of 12…15 ms that was
    /// one full-width bar) goes on a linear axis of the sub-bins (``linearPlan(_:plotWidth:slo:)``);
    /// otherwise the bins from the first occupied one to the last (or the SLO's), folded by sum
    /// when there are more bins than columns. Nil without samples.
    static func plan(_ bins: HistogramBins, plotWidth: Int, slo: Double?) -> Plan? {
        let coarse = bins.binIntervals
        let occupied = coarse.indices.filter { coarse[$0].count > 0 }
        guard let firstBin = occupied.first, let lastOccupied = occupied.last, plotWidth >= 1 else { return nil }
        if bins.hasParts, lastOccupied - firstBin < narrowBins,
            let fine = linearPlan(bins.intervals, plotWidth: plotWidth, slo: slo)
        {
            return fine
        }
        let upper = coarse.map(\.upper)
        let sloBin = slo.flatMap { v in upper.firstIndex { $0 >= v } }
        let lastBin = max(lastOccupied, sloBin ?? lastOccupied)
        let firstShown = min(firstBin, sloBin ?? firstBin)
        // Bins shown: first occupied … last occupied (or the SLO's bin).
        let shown = Array(firstShown...lastBin)
        let fold = (shown.count + plotWidth - 1) / plotWidth
        var columns: [Plan.Column] = []
        var i = 0
        while i < shown.count {
            let j = min(shown.count, i + fold)
            let count = shown[i..<j].reduce(0) { $0 + coarse[$1].count }
            columns.append(Plan.Column(count: count, lower: coarse[shown[i]].lower, upper: coarse[shown[j - 1]].upper))
            i = j
        }
        let past = slo.map { $0 > columns[columns.count - 1].upper } ?? false
        return Plan(columns: columns, linear: !isLogAxis(upper), sloOff: past ? "→" : nil)
    }

    /// Samples spread over fewer doubling bins than this go on a linear axis of sub-bins.
    static let narrowBins = 3
    /// A linear axis of sub-bins has at least this many columns (at most the plot's width):
    /// empty ones around samples that all fell in one sub-bin, which alone drew as one
    /// full-width bar again.
    static let minLinearColumns = 8

    /// A linear axis over `parts` (ranges with counts, ascending): columns of one width, the
    /// finest that fits `plotWidth` columns and that no occupied part straddles, so that each
    /// column's count is exact (the sum of the parts inside it): the widest part in the
    /// occupied range, doubled until both hold. The SLO joins the axis where that at most
    /// doubles its range (and fits), else it is marked off the axis. Nil when no width works.
    static func linearPlan(
        _ parts: [(lower: Double, upper: Double, count: Int)], plotWidth: Int, slo: Double?
    ) -> Plan? {
        guard let first = parts.firstIndex(where: { $0.count > 0 }), let last = parts.lastIndex(where: { $0.count > 0 })
        else { return nil }
        let a = parts[first].lower, b = parts[last].upper
        var width = parts[first...last].map { $0.upper - $0.lower }.max() ?? 0
        guard width > 0, width.isFinite, b > a, plotWidth >= 1 else { return nil }
        let occupied = parts[first...last].filter { $0.count > 0 }
        while true {
            var start = (a / width).rounded(.down) * width
            let end = (b / width).rounded(.up) * width
            var n = Int(((end - start) / width).rounded())
            if n <= plotWidth, exactCounts(occupied, start: start, width: width, columns: n) != nil {
                var off: Character?
                if let slo, slo.isFinite {
                    let span = end - start
                    if slo > end {
                        let to = (slo / width).rounded(.up) * width
                        let m = Int(((to - start) / width).rounded())
                        if to - start <= 2 * span, m <= plotWidth { n = m } else { off = "→" }
                    } else if slo < start {
                        let from = max(0, (slo / width).rounded(.down) * width)
                        let m = Int(((end - from) / width).rounded())
                        if end - from <= 2 * span, m <= plotWidth { (start, n) = (from, m) } else { off = "←" }
                    }
                }
                // Empty columns around a narrow spread; those on the left only down to 0 ms.
                let extra = max(0, min(plotWidth, minLinearColumns) - n)
                let left = min(extra / 2, Int((start / width + 1e-9).rounded(.down)))
                start -= Double(left) * width
                n += extra
                guard let counts = exactCounts(occupied, start: start, width: width, columns: n) else { return nil }
                let columns = (0..<n).map { c in
                    Plan.Column(count: counts[c], lower: start + Double(c) * width, upper: start + Double(c + 1) * width)
                }
                return Plan(columns: columns, linear: true, sloOff: off, step: width)
            }
            if n <= 1 { return nil }
            width *= 2
        }
    }

    /// Each column's count, or nil when an occupied part straddles a column edge (or lies
    /// outside the columns).
    static func exactCounts(
        _ occupied: [(lower: Double, upper: Double, count: Int)], start: Double, width: Double, columns: Int
    ) -> [Int]? {
        var counts = Array(repeating: 0, count: columns)
        for part in occupied {
            let c = Int(((part.lower - start) / width + 1e-9).rounded(.down))
            guard c >= 0, c < columns, (part.upper - start) / width <= Double(c + 1) + 1e-9 else { return nil }
            counts[c] += part.count
        }
        return counts
    }

    /// A tick of a linear axis of columns `step` ms wide, with the decimals the step needs:
    /// "11.5ms" for half-millisecond columns, "11.75ms" for quarters, "1088ms" for 64 ms ones,
    /// seconds from 10 s on ("12.8s"). Three figures (``Format/ms(_:)``) labelled 11.75 "11.8ms".
    static func tickLabel(_ value: Double, step: Double) -> String {
        let seconds = value >= 10_000
        let (v, s) = seconds ? (value / 1000, step / 1000) : (value, step)
        var digits = 0
        var scaled = s
        while digits < 4, abs(scaled - scaled.rounded()) > 1e-6 {
            digits += 1
            scaled *= 10
        }
        return Format.fixed(v, digits) + (seconds ? "s" : "ms")
    }

    /// Vertical bars that fill the panel, laid out by ``plan(_:plotWidth:slo:)``: the axis has
    /// tick labels at column edges and says whether it is log or linear (a linear one its
    /// column width on the scale line), bins above the SLO are drawn in the "bad" colour and
    /// the bin holding it in "warn" (``barStyle(lower:upper:slo:)``), and ▲ marks the SLO,
    /// clamped at the edge it is off when it is off the axis.
    static func histogram(
        _ b: inout CellBuffer, _ rect: Rect, _ name: String, _ bins: HistogramBins,
        _ p: (Double, Double, Double), slo: Double?, window: String = "", title shared: String? = nil,
        longScale: Bool? = nil, estimated: Bool = false, monochrome: Bool = false
    ) {
        let plotWidth = plotWidth(panelWidth: rect.width)
        let plan = plan(bins, plotWidth: plotWidth, slo: slo)
        // The title says what, over which window, on which axis; it shortens before it is cut
        // (or it is the one the caller chose for panels side by side).
        let candidates = shared == nil ? titleCandidates(name, scale: plan?.scale ?? "", window: window) : []
        let title = shared ?? candidates.first { $0.count <= rect.width - 4 } ?? candidates[3]
        b.box(rect, title: title)
        let inner = rect.inner
        // Row 0: the y scale; then the bars, the axis, its ticks, p50/p90 and p99.
        let barRows = inner.height - 5
        guard barRows >= 1, inner.width >= 4 else { return }
        var sloOff: Character?
        if let plan {
            let columns = plan.columns
            let span = max(1, plotWidth / columns.count)
            let top = max(1, columns.map(\.count).max() ?? 1)
            // The y scale: the tallest bar's count, at its top; a linear axis's column width. Each
            // part only where a blank stays before the border ("· bins 1ms│" at 120×40).
            let total = columns.map(\.count).reduce(0, +)
            let scaleLabel = "tallest bar \(Format.count(top)) of n \(Format.count(total))"
            var scale =
                (longScale ?? (scaleLabel.count <= inner.width - 2))
                ? scaleLabel : "↑\(Format.count(top)) of n \(Format.count(total))"
            if let step = plan.step {
                // "bin" where "bins" would leave no blank before the border (at 120 columns).
                let width = tickLabel(step, step: step)
                if let bins = [" · bins " + width, " · bin " + width].first(where: { scale.count + $0.count <= inner.width - 2 }) {
                    scale += bins
                }
            }
            let scaleEnd = b.put(scale, x: inner.x + 1, y: inner.y, style: .dim, clip: inner)
            if monochrome, slo != nil {
                b.put(Self.monoLegend(room: inner.maxX - 1 - scaleEnd), x: scaleEnd, y: inner.y, style: .dim, clip: inner)
            }
            var drawnStyles: [Style] = []
            for (c, column) in columns.enumerated() {
                let eighths = Int((Double(column.count) / Double(top) * Double(barRows * 8)).rounded())
                let style = Self.barStyle(lower: column.lower, upper: column.upper, slo: slo)
                if eighths > 0, !drawnStyles.contains(style) { drawnStyles.append(style) }
                if monochrome, let fill = Self.monoFill(style) {
                    // Whole cells (a glyph has no eighths), to the nearest cell; a bin with any
                    // height keeps one, so a short tail over the SLO still shows.
                    let cellsTall = min(barRows, eighths > 0 ? max(1, (eighths + 4) / 8) : 0)
                    for r in 0..<cellsTall {
                        for k in 0..<span {
                            b[inner.x + 1 + c * span + k, inner.y + barRows - r] = Cell(character: fill, style: style)
                        }
                    }
                    continue
                }
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
            func label(_ v: Double) -> String {
                v == 0 ? "0" : plan.step.map { tickLabel(v, step: $0) } ?? Format.ms(v)
            }
            let endLabel = label(columns[columns.count - 1].upper)
            let endX = inner.x + 1 + used - endLabel.count
            var nextFree = inner.x + 1
            for (c, column) in columns.enumerated() {
                let text = label(column.lower)
                let x = inner.x + 1 + c * span
                guard x >= nextFree, x + text.count < endX else { continue }
                b[x, axisY] = Cell(character: "┬", style: .dim)
                b.put(text, x: x, y: axisY + 1, style: .dim, clip: inner)
                nextFree = x + text.count + 1
            }
            b[inner.x + used, axisY] = Cell(character: "┤", style: .dim)
            if !monochrome, slo != nil { drawBarLegend(&b, rect, styles: drawnStyles) }
            b.put(endLabel, x: max(inner.x + 1, endX), y: axisY + 1, style: .dim, clip: inner)
            if let slo {
                sloOff = plan.sloOff
                if sloOff == "←" {
                    // Before the first column: clamped at the start, and said beside the value.
                    b.put("▲", x: inner.x + 1, y: axisY, style: .warn)
                } else if sloOff == nil, let index = columns.firstIndex(where: { $0.upper >= slo }) {
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
        let sampled = plan != nil
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
            // A blank stays before the border: "▲ SLO 35.0ms│" read as cut.
            b.put(sloLabel(Format.target(slo), off: sloOff, room: inner.maxX - 1 - x), x: x, y: inner.maxY - 1,
                  style: .warn, clip: inner)
        }
    }

    /// The SLO beside p99, in the longest form that fits `room` columns: the value keeps its
    /// unit (at 80×24 "▲ SLO 35.0ms" lost its "s" to the panel edge); words and blanks go first.
    static func sloLabel(_ value: String, offAxis: Bool, room: Int) -> String {
        sloLabel(value, off: offAxis ? "→" : nil, room: room)
    }

    /// `off`: the side the SLO is off the axis, `→` past its end, `←` before its start.
    static func sloLabel(_ value: String, off: Character?, room: Int) -> String {
        let forms =
            off.map { a in
                ["  ▲ SLO \(value) \(a) off axis", "  ▲ SLO \(value) \(a)", " ▲ SLO \(value)\(a)", " ▲SLO \(value)\(a)",
                 " ▲\(value)\(a)"]
            } ?? ["  ▲ SLO \(value)", " ▲ SLO \(value)", " ▲SLO \(value)", " ▲\(value)"]
        return forms.first { $0.count <= room } ?? forms.last!
    }

    /// What marks a p99 line's interval in which no request completed (its p99 has no sample): a
    /// blank there read as a drawing fault or as a value of nothing, with nothing to say which.
    static let gapMark: Character = "⋅"

    static func trends(_ b: inout CellBuffer, _ rect: Rect, _ s: Snapshot) {
        let interval = s.series.intervalSeconds
        let inner = rect.inner
        let sparkWidth = max(1, inner.width - 21 - 20)
        let points = min(sparkWidth, s.series.ttftP99Ms.count)
        let span = Double(points) * interval
        let seconds = Format.fixed(interval, interval < 1 ? 1 : 0)
        // Fewer points than columns: the engine keeps its series from the start until they are
        // full (600 points), so the blank left of the lines is the time before the start.
        let startUp = s.series.ttftP99Ms.count + 1 < sparkWidth
        let last = "last \(Format.duration(span))" + (startUp ? " since start" : "")
        // The mark after its words: after the title's separator ("min…max · ⋅ no completion")
        // the two dots read as one, with no mark left to key the lines' gaps.
        let gap = "no request completed in the interval: \(gapMark)", gapShort = "no completion: \(gapMark)"
        b.box(rect, titles: [
            "Over time · \(last) (one point per \(seconds) s, newest right) · each line from its min to its max · \(gap)",
            "Over time · \(last) (one point per \(seconds) s, newest right) · min…max · \(gap)",
            "Over time · \(last) · 1 point/\(seconds) s · min…max · \(gap)",
            "Over time · \(last) · 1 point/\(seconds) s · min…max · \(gapShort)",
            "Over time · \(last) · 1 point/\(seconds) s · \(gapShort)",
            "Over time · \(last) · \(gapShort)",
        ])
        /// One line: its series, the live value beside it (nil: a p99 before its first sample,
        /// shown "–", as in the histograms above) and how a value reads.
        struct Trend {
            var label: String, values: [Double], now: Double?, text: String, style: Style
            var format: (Double) -> String
            /// The range's form when `format` gives min and max as one figure.
            var whole: (Double) -> String = { String(Int($0.rounded())) }
            /// A latency p99 of 0 is the telemetry's "no sample in that interval", not a value.
            var zeroIsGap = false
        }
        // The value beside a p99 line is its newest point (the p99 of the newest interval with
        // a sample), of the same scope as the line and as "tok/s" below it. It was the engine's
        // p99 since start, added as the line's newest point: a cumulative figure at the end of
        // a line of per-interval ones, and beside the per-interval tok/s with the same look.
        // When the newest interval had no completion the line ends in gap marks, and the figure
        // (an older interval's) is dim: in the SLO's green it read as the latency of now while a
        // drain had stopped every completion.
        func p99(_ label: String, _ values: [Double], slo: Double?) -> Trend {
            let v = values.last { $0.isFinite && $0 > 0 }
            let current = values.last.map { $0.isFinite && $0 > 0 } ?? false
            let style: Style = !current ? .dim : slo.map { s in v.map { $0 > s ? .bad : .good } ?? .dim } ?? .accent
            return Trend(label: label, values: values, now: values.last ?? 0, text: v.map(Format.ms) ?? "–", style: style,
                         format: Format.ms, whole: { Format.fixed($0, 2) + "ms" }, zeroIsGap: true)
        }
        let trends = [
            p99("TTFT p99", s.series.ttftP99Ms, slo: s.slo.ttftMs),
            p99("TPOT p99", s.series.tpotP99Ms, slo: s.slo.tpotMs),
            p99("E2E p99", s.series.e2eP99Ms, slo: nil),
            Trend(label: "tok/s", values: s.series.outputTokensPerSecond, now: s.outputTokensPerSecond,
                  text: Format.count(s.outputTokensPerSecond), style: .accent, format: { Format.count($0) }),
            Trend(label: "running", values: s.series.running, now: Double(s.requests.running),
                  text: Format.count(s.requests.running), style: .accent, format: { Format.count($0) }),
            Trend(label: "waiting", values: s.series.waiting, now: Double(s.requests.waiting),
                  // A count, drawn as the others: orange in this view marks the SLO (its bin, ▲).
                  text: Format.count(s.requests.waiting), style: .accent, format: { Format.count($0) }),
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
            // after the first sample). Gaps keep every line's points in step, newest at the same
            // column: the right edge, beside the range ("newest right"), however few there are.
            let shown = Array((trend.values + [now]).suffix(sparkWidth)).map {
                $0.isFinite && (!trend.zeroIsGap || $0 > 0) ? $0 : .nan
            }
            let x = inner.x + 20 + sparkWidth - shown.count
            let known = shown.filter(\.isFinite)
            let lo = known.min() ?? 0, hi = known.max() ?? 0
            b.sparkline(shown, x: x, y: y, width: sparkWidth, min: lo, max: hi, style: trend.style)
            for (k, v) in shown.enumerated() where !v.isFinite { b.put(String(gapMark), x: x + k, y: y, style: .dim) }
            guard !known.isEmpty else {
                b.put(" –", x: inner.x + 20 + sparkWidth, y: y, style: .dim, clip: inner)
                continue
            }
            // Where min and max round to one figure the line still spans its full height: the
            // range is then shown whole ("30.7k…30.7k" beside a line from bottom to top scaled nothing).
            let (from, to) = (trend.format(lo), trend.format(hi))
            let range = from == to && lo < hi ? "\(trend.whole(lo))…\(trend.whole(hi))" : "\(from)…\(to)"
            b.put(" " + range, x: inner.x + 20 + sparkWidth, y: y, style: .dim, clip: inner)
        }
    }
}
