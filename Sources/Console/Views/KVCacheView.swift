import PodModel
import ServingEngine

/// Which KV figure a TE's row shows, and the words for it in a panel's title: the blocks its
/// requests hold plus those reserved for the rest of each reply (the KV view's strip's scope,
/// what admission counts), or, where a TE's snapshot has no block counts (an older server), the
/// share held alone for every row, so one panel never mixes the two. Held alone, on
/// colocated:8:llama-3-70b:nvidia-h100:tp8 (a replica is one group), a TE read "2%" beside
/// "fullest group 3.2%" in the strip. The Pod view's Instances table and the KV view's panel of
/// TEs that prefill both use it, so the same TE reads the same figure under the same title.
struct TEKVMeasure {
    /// Every TE given has block counts.
    let withReserve: Bool

    init(_ tes: some Sequence<InstanceStatus>) {
        withReserve = !tes.contains { $0.kvHeldPlusReservedShare == nil }
    }

    var title: String { withReserve ? "KV held + reserved" : "KV held" }

    func share(of te: InstanceStatus) -> Double {
        withReserve ? te.kvHeldPlusReservedShare ?? te.kvUsage : te.kvUsage
    }
}

/// View 3: KV cache — decode DP-group occupancy, prefill TEs, prefix cache and DRAM pool.
enum KVCacheView {
    static let groupsPerRow = 64

    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let kv = s.kv
        let groups = kv.decodeGroups
        let stripRows = max(1, (groups.count + groupsPerRow - 1) / groupsPerRow)
        let (top, rest) = area.splitTop(min(area.height - 8, stripRows + 3))
        // A colocated deployment has no decode TE: its groups prefill and decode, and "Decode DP
        // groups", "all decode" and "% of decode" named TEs it does not have, beside a panel
        // listing the same replicas as "TEs that prefill".
        let colocated = isColocated(s)
        drawDecodeGroups(&b, top, kv, diesPerGroup: diesPerDecodeGroup(s), monochrome: theme.monochrome, colocated: colocated,
                         dieWord: s.dieWord)
        let (bottom, chart) = rest.splitTop(rest.height >= 24 ? 12 : rest.height)
        let (left, right) = bottom.splitLeft(bottom.width / 2)
        drawPrefill(&b, left, s)
        drawPool(&b, right, s, colocated: colocated)
        if chart.height >= 4 { drawTrend(&b, chart, s, colocated: colocated) }
    }

    /// Every TE that holds decode KV is colocated (none is a decode TE).
    static func isColocated(_ s: Snapshot) -> Bool {
        s.instances.contains { $0.kind == "colocated" } && !s.instances.contains { $0.kind == "decode" }
    }

    /// Decode KV use over time with a y axis that fits the data (at least 0…1 %: with a floor of
    /// 5 % the default demo's 1 % was a strip along the bottom of a 40-row chart) and the time
    /// span it covers.
    static func drawTrend(_ b: inout CellBuffer, _ chart: Rect, _ s: Snapshot, colocated: Bool = false) {
        let labelWidth = 6
        let plot = Rect(x: chart.x + 2 + labelWidth, y: chart.y + 1, width: chart.width - 4 - labelWidth, height: chart.height - 2)
        let shown = Array(s.series.kvUsage.suffix(max(1, plot.width)))
        let top = niceCeiling(max(0.01, (shown.max() ?? 0) * 1.2))
        let span = Double(shown.count) * s.series.intervalSeconds
        // What it plots in the words of the line above it (tokens written, not held + reserved),
        // then the span; the point spacing goes first where the border is short.
        let point = "one point per \(Format.fixed(s.series.intervalSeconds, s.series.intervalSeconds < 1 ? 1 : 0)) s, newest right"
        let what = colocated ? "KV written (tokens, all groups)" : "Decode KV written (tokens, all decode)"
        let titles = [
            "\(what) over time · last \(Format.duration(span)) (\(point)) · y 0…\(axisPercent(top))",
            "\(what) · last \(Format.duration(span)) · y 0…\(axisPercent(top))",
        ]
        b.box(chart, title: titles.first { $0.count <= chart.width - 4 } ?? titles[1])
        b.put(Format.right(axisPercent(top), labelWidth - 1) + "┤", x: chart.x + 1, y: plot.y, style: .dim)
        if plot.height >= 5 {
            b.put(Format.right(axisPercent(top / 2), labelWidth - 1) + "┤", x: chart.x + 1, y: plot.y + plot.height / 2, style: .dim)
        }
        b.put(Format.right("0%", labelWidth - 1) + "┤", x: chart.x + 1, y: plot.maxY - 1, style: .dim)
        b.verticalBars(shown, in: plot, max: top, style: .accent)
    }

    /// "50%", "2.5%", "0.5%": one decimal below 10 %, so a mid tick never rounds to a wrong value.
    static func axisPercent(_ share: Double) -> String {
        share < 0.1 ? Format.fixed(share * 100, 1) + "%" : Format.percent(share)
    }

    /// 1, 2 or 5 × a power of ten, at least `v` (a y-axis top that reads well).
    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        var p = 1e-4
        while p * 10 <= v { p *= 10 }
        for m in [1.0, 2, 5, 10] where m * p >= v { return min(1, m * p) }
        return 1
    }

    /// Dies per decode DP group, from the decode NPUs' dies (the hardware's dies per chip) over
    /// the group count; nil when that does not divide evenly or the hardware is unknown.
    static func diesPerDecodeGroup(_ s: Snapshot) -> Int? {
        guard let hw = s.hardware, !s.kv.decodeGroups.isEmpty else { return nil }
        // A decode chip whose groups a shrink fenced off (listed in none while its TE lists
        // groups) holds no group of the count: with it, 320 dies over 318 groups divided unevenly.
        let decodeNPUs = s.npus.filter { [.decode, .colocated, .attention].contains($0.role) }
        let grouped = decodeNPUs.filter { !$0.dpGroups.isEmpty }.count
        let decodeDies = (grouped > 0 ? grouped : decodeNPUs.count) * hw.diesPerDevice
        guard decodeDies > 0, decodeDies % s.kv.decodeGroups.count == 0 else { return nil }
        return decodeDies / s.kv.decodeGroups.count
    }

    static func drawDecodeGroups(
        _ b: inout CellBuffer, _ rect: Rect, _ kv: KVSummary, diesPerGroup: Int?, monochrome: Bool = false,
        colocated: Bool = false, dieWord: String = "die"
    ) {
        let groups = kv.decodeGroups
        let size = diesPerGroup.map { $0 == 1 ? " (one per \(dieWord))" : " (\($0) \(dieWord)s each)" } ?? ""
        // The bars count blocks held and reserved for the rest of each reply (what admission
        // sees); the pool panel's "decode KV" counts tokens written. Both scopes are named.
        let title = "\(colocated ? "Colocated" : "Decode") DP groups · \(groups.count)\(size) · KV held + reserved"
        b.box(rect, title: title)
        drawGroupScale(&b, rect, titleWidth: title.count, monochrome: monochrome)
        let inner = rect.inner
        guard inner.height >= 2 else { return }
        let full = groups.filter { $0 >= 0.95 }.count
        let mean = groups.isEmpty ? 0 : groups.reduce(0, +) / Double(groups.count)
        var x = b.put("now: mean ", x: inner.x + 1, y: inner.y, style: .dim)
        x = b.put(axisPercent(mean), x: x, y: inner.y, style: Style(fg: NPULoad.style(NPULoad.band(mean)).fg, bold: true))
        // Numbers side by side share a scope: these three are per DP group, held + reserved,
        // now; the written share and its peak are another scope and say so.
        x = b.put("  fullest group ", x: x, y: inner.y, style: .dim)
        x = b.put(axisPercent(groups.max() ?? 0), x: x, y: inner.y, style: .text)
        x = b.put("  full (≥95%) ", x: x, y: inner.y, style: .dim)
        x = b.put("\(full)", x: x, y: inner.y, style: full > 0 ? .warn : .good)
        // One decimal below 10 %, as the chart's axis: "now 0%" sat beside a chart at 0.5 %.
        // The peak is the run's (since start), beside figures of now: it says so in every form
        // ("written peak 91%" beside "now: mean 64%" read as a peak of now's groups).
        let peak = axisPercent(kv.peakUsage)
        let forms = [
            "   tokens written, all \(colocated ? "groups" : "decode"): now \(axisPercent(kv.decodeUsage)), peak since start \(peak)",
            "   written peak since start \(peak)", "  written peak so far \(peak)",
        ]
        if let form = forms.first(where: { x + $0.count < inner.maxX }) { b.put(form, x: x, y: inner.y, style: .dim) }
        // 64 groups per row (8 decode nodes × 8 dies) with the first group's index as label.
        let cellWidth = inner.width >= groupsPerRow * 2 + 8 ? 2 : 1
        for row in 0..<min(inner.height - 1, (groups.count + groupsPerRow - 1) / groupsPerRow) {
            let y = inner.y + 1 + row
            b.put(Format.right("\(row * groupsPerRow)", 4), x: inner.x, y: y, style: .dim)
            for (i, v) in groups[(row * groupsPerRow)..<min(groups.count, (row + 1) * groupsPerRow)]
                .enumerated()
            {
                let level = Int((unitInterval(v) * 7).rounded())
                let glyph = CellBuffer.sparkGlyphs[level]
                b.put(
                    cellWidth == 2 ? "\(glyph)\(glyph)" : "\(glyph)", x: inner.x + 5 + i * cellWidth, y: y,
                    style: NPULoad.style(NPULoad.band(v)))
            }
        }
    }

    /// The strip's scale on the panel's top border, right of the title, as much as fits: bar
    /// height 0…100% of the group's KV, colour in the Pod view's load bands. Without colour the
    /// height is all the strip shows, so only it is explained: four colour swatches there were
    /// four identical `■` (under `LANG=C` four `#`, the strip's own 100% glyph).
    static func drawGroupScale(_ b: inout CellBuffer, _ rect: Rect, titleWidth: Int, monochrome: Bool = false) {
        let height = " height ▁0…█100%"
        // The Pod legend's thresholds, without its words (a group's colour is its KV alone).
        let bands = NPULoad.Band.allCases.map { (band: $0, threshold: NPULoad.threshold($0)) }
        let long = height + " ·" + bands.map { " ■" + $0.threshold }.joined() + " "
        // The title is drawn as "┌ Title " from the corner; keep a border cell after it.
        let free = rect.width - (titleWidth + 4) - 2
        let text = !monochrome && long.count <= free ? long : height.count + 1 <= free ? height + " " : nil
        guard let text else { return }
        var x = rect.maxX - 1 - text.count
        x = b.put(height, x: x, y: rect.y, style: .dim)
        guard text.count > height.count + 1 else {
            b.put(" ", x: x, y: rect.y, style: .dim)
            return
        }
        x = b.put(" ·", x: x, y: rect.y, style: .dim)
        for (band, threshold) in bands {
            x = b.put(" ", x: x, y: rect.y, style: .dim)
            x = b.put("■", x: x, y: rect.y, style: NPULoad.style(band))
            x = b.put(threshold, x: x, y: rect.y, style: .dim)
        }
        b.put(" ", x: x, y: rect.y, style: .dim)
    }

    /// Every TE that prefills (prefill and colocated, not retired), by its own name: a colocated
    /// deployment's TEs are `colocated-N`, not `prefill-N`.
    static func drawPrefill(_ b: inout CellBuffer, _ rect: Rect, _ s: Snapshot) {
        let tes = s.instances.filter { ($0.kind == "prefill" || $0.kind == "colocated") && $0.state != "retired" }
        // The figure is written as the strip's (one decimal below 10 %).
        let colocated = tes.contains { $0.kind == "colocated" }
        let measure = TEKVMeasure(tes)
        b.box(rect, title: (colocated ? "TEs that prefill · " : "Prefill TEs · ") + measure.title)
        let inner = rect.inner
        let nameWidth = min(16, max(9, tes.map(\.name.count).max() ?? 0))
        // More TEs than rows (xdeepserve-ma's eight beside its 480-group strip at 80×24): the
        // last row says how many are left out and the fullest of them, so the list never looks
        // whole and a full TE is never out of sight. It listed prefill-0…6 and stopped.
        let rows = tes.count > inner.height ? max(0, inner.height - 1) : tes.count
        func share(_ i: Int) -> Double { measure.share(of: tes[i]) }
        for (i, te) in tes.prefix(rows).enumerated() {
            let y = inner.y + i
            let share = share(i)
            b.put(te.name, x: inner.x + 1, y: y, style: .dim, clip: Rect(x: inner.x, y: y, width: nameWidth + 1, height: 1))
            let w = max(4, inner.width - nameWidth - 9)
            b.bar(share, x: inner.x + nameWidth + 3, y: y, width: w, style: NPULoad.style(NPULoad.band(share)))
            b.put(
                Format.right(axisPercent(share), 4), x: inner.x + nameWidth + 4 + w, y: y, style: .text, clip: inner)
        }
        if rows < tes.count, let fullest = (rows..<tes.count).max(by: { share($0) < share($1) }) {
            let y = inner.y + rows
            let line = (rows > 0 ? "+\(tes.count - rows) more" : "\(tes.count) TEs") + " · fullest \(axisPercent(share(fullest))) (\(tes[fullest].name))"
            b.put(cutting: line, x: inner.x + 1, y: y, style: .dim, clip: inner)
        }
        if tes.isEmpty {
            b.put("no prefill instances", x: inner.x + 1, y: inner.y, style: .dim, clip: inner)
        }
    }

    static func drawPool(_ b: inout CellBuffer, _ rect: Rect, _ s: Snapshot, colocated: Bool = false) {
        let kv = s.kv
        // The title names the tiers and links the panel shows. A colocated replica decodes where
        // it prefilled: no KV is ever transferred, and "transfers queued 0  in progress 0" read
        // as an idle link, so neither title nor row says it there. A GPU cluster has no pooled
        // DRAM (its row says "none on GPUs"): "Prefix cache · DRAM pool" promised one there.
        // With neither, the title names the meter the panel shows instead.
        let parts = ["Prefix cache"] + (kv.poolCapacityBytes > 0 ? ["DRAM pool"] : []) + (colocated ? [] : ["transfers"])
        b.box(rect, title: (parts.count > 1 ? parts : parts + ["KV written"]).joined(separator: " · "))
        let inner = rect.inner
        var y = inner.y
        // The notes after the bars take up to 14 columns ("1.2% of decode") and keep a blank
        // before the border: with 27 columns kept, "0.6% of decode" ended in the border's column.
        let w = max(4, inner.width - 28)
        func meter(_ label: String, _ value: Double, _ note: String, _ style: Style) {
            guard y < inner.maxY else { return }
            b.put(label, x: inner.x + 1, y: y, style: .dim)
            b.bar(value, x: inner.x + 12, y: y, width: w, style: style)
            b.put(note, x: inner.x + 13 + w, y: y, style: .text, clip: inner)
            y += 1
        }
        // The hit rate counts every prompt token since start (the engine's cumulative prefix
        // stats), unlike the pool, KV and transfer figures beside it, which are of now: it says
        // so, as the header's p99s do ("52%" stood beside "24.6/24.6 TB" as one more figure of now).
        meter("prefix hit", kv.prefixHitRate, Format.percent(kv.prefixHitRate) + " so far", .good)
        if kv.poolCapacityBytes > 0 {
            let pool = kv.poolUsedBytes / kv.poolCapacityBytes
            meter(
                "DRAM pool", pool,
                "\(Format.fixed(kv.poolUsedBytes / 1e12))/\(Format.fixed(kv.poolCapacityBytes / 1e12)) TB",
                NPULoad.style(NPULoad.band(pool)))
        } else if y < inner.maxY {
            // No pool (a GPU cluster has no UB-pooled DRAM): an empty "0.00/0.00 TB" bar read as
            // a tier that was there and unused. Said in words instead.
            let x = b.put("DRAM pool", x: inner.x + 1, y: y, style: .dim)
            b.put("  none" + (s.deviceWord == "GPU" ? " on GPUs" : ""), x: x, y: y, style: .text, clip: inner)
            y += 1
        }
        // Tokens written over all decode KV, the scope the top line calls "tokens written" (not
        // the groups' held + reserved share beside "now: mean" there): said in the label.
        meter(
            "KV written", kv.decodeUsage, axisPercent(kv.decodeUsage) + (colocated ? " of groups" : " of decode"),
            NPULoad.style(NPULoad.band(kv.decodeUsage))
        )
        if y < inner.maxY && !colocated {
            // The longest wording that leaves both counts whole and a blank before the border:
            // at 80 columns "transfers queued 12777  in progress 212" ran into the border as
            // "in progress 2", a count cut to its first digit.
            let queued = "\(kv.transferQueue)", moving = "\(kv.transfersInProgress)"
            let words = [("transfers queued ", "  in progress "), ("transfers queued ", "  moving "), ("queued ", "  moving ")]
            let (before, between) =
                words.first { $0.0.count + queued.count + $0.1.count + moving.count <= inner.width - 2 } ?? words[2]
            var x = b.put(before, x: inner.x + 1, y: y, style: .dim)
            x = b.put(queued, x: x, y: y, style: kv.transferQueue > 100 ? .warn : .text)
            x = b.put(between, x: x, y: y, style: .dim)
            b.put(moving, x: x, y: y, style: .text, clip: inner)
            y += 1
        }
        if y < inner.maxY {
            // Its scale is fixed (0 to 100 %), and says so: a bare ▅ read as anything.
            let x = b.put("KV trend 0…100% ", x: inner.x + 1, y: y, style: .dim)
            b.sparkline(s.series.kvUsage, x: x, y: y, width: inner.maxX - x - 1, max: 1, style: .accent)
        }
    }
}
