import Foundation
import PodModel
import ServingEngine

/// View 2: MoE expert load — where the hot experts are and how unevenly dies are loaded.
enum ExpertsView {
    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let e = s.experts
        let layers = e.heat.count, experts = e.heat.first?.count ?? 0
        // The panels below need 9 rows at 80×24; larger screens give the rest to the heat map.
        let (top, bottom) = area.splitTop(area.height - (area.height >= 40 ? 14 : 9))
        // The map folds experts by whole columns, so on a wide screen it leaves columns over
        // (128 of 196 at 200×55, the rest blank): the hot list then stands beside the map, and
        // the die load below takes the full width.
        let mapWidth = heatPanelWidth(experts: experts, available: top.width)
        if experts > 0, top.width - mapWidth >= Self.besideMinWidth {
            let (map, side) = top.splitLeft(mapWidth)
            drawHeat(&b, map, state, s, theme, layers: layers, experts: experts)
            drawHottest(&b, side, state, s)
            drawDies(&b, bottom, state, s)
            return
        }
        drawHeat(&b, top, state, s, theme, layers: layers, experts: experts)
        let (left, right) = bottom.splitLeft(bottom.width * 3 / 5)
        drawDies(&b, left, state, s)
        drawHottest(&b, right, state, s)
    }

    /// Narrowest hot list beside the map ("L23 E186   30.00×" and its border, with room to spare).
    static let besideMinWidth = 34

    /// The width a heat panel needs for its map in `available` columns: the folded columns, the
    /// layer labels and marker (5), the borders and a blank (3).
    static func heatPanelWidth(experts: Int, available: Int) -> Int {
        guard experts > 0 else { return available }
        let columns = foldedColumns(experts: experts, width: available - 8)
        // The scale line ("colour ≤0.1× ████████ 30.00× mean (max), log") and the selection's
        // note beside the marker must fit too (``drawHeatLegend`` wants 30 columns to spare).
        return min(available, max(columns + 8, 80))
    }

    /// Columns of the map for `experts` in `width` cells: whole experts per column.
    static func foldedColumns(experts: Int, width: Int) -> Int {
        let available = max(1, width)
        let fold = (experts + available - 1) / available
        return (experts + fold - 1) / fold
    }

    /// The `/` filter of the hot list: matches "L03 E12", "L3 E12" or "E12" (any case).
    static func matches(layer: Int, expert: Int, _ filter: String) -> Bool {
        guard !filter.isEmpty else { return true }
        let needle = filter.lowercased()
        return "l\(Format.pad2(layer)) e\(expert)".contains(needle) || "l\(layer) e\(expert)".contains(needle)
    }

    static func drawHeat(
        _ b: inout CellBuffer, _ rect: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme,
        layers: Int, experts: Int
    ) {
        let inner = rect.inner
        guard experts > 0, inner.height >= 2 else {
            b.box(rect, title: "Expert heat")
            b.put("no MoE layers in this deployment", x: inner.x + 1, y: inner.y, style: .dim, clip: inner)
            return
        }
        let available = inner.width - 6
        let fold = (experts + available - 1) / available
        let columns = (experts + fold - 1) / fold
        // With rows to spare the colour scale gets its own row right under the map, starting at
        // its left edge, so it reads as the map's scale (at 200 columns, at the panel's right
        // edge, it sat 60 columns past the map); on a short panel it shares the marker row.
        let legendBelow = inner.height >= Self.legendRowMinHeight
        let mapRect = Rect(
            x: inner.x + 5, y: inner.y, width: columns, height: inner.height - (legendBelow ? 2 : 1))
        let layersPerRow = Double(layers) / Double(mapRect.height)
        b.box(rect, title: "Expert heat · \(layers) layers × \(experts) experts · \(fold) per column, max")
        let peak = max(2, s.experts.heat.lazy.map { $0.max() ?? 0 }.max() ?? 0)
        let scaled = s.experts.heat.map { row in row.map { heatScale($0, peak: peak) } }
        b.heatMap(scaled, in: mapRect, monochrome: theme.monochrome)
        // Layer labels every few rows, and markers for the selected layer and expert.
        for row in stride(from: 0, to: mapRect.height, by: 3) {
            b.put(
                "L" + Format.pad2(Int(Double(row) * layersPerRow)), x: inner.x + 1, y: mapRect.y + row,
                style: .dim)
        }
        let selRow = min(mapRect.height - 1, Int(Double(state.selectedLayer) / layersPerRow))
        let selColumn = state.selectedExpert / fold
        b.put("▶", x: inner.x + 4, y: mapRect.y + selRow, style: .accent)
        b.put("▲", x: mapRect.x + selColumn, y: mapRect.maxY, style: .accent)
        if legendBelow {
            drawHeatLegend(&b, peak: peak, x: mapRect.x, y: mapRect.maxY + 1, inner: inner, theme: theme)
        } else {
            drawHeatLegend(&b, peak: peak, y: mapRect.maxY, inner: inner, theme: theme)
        }
        let row = state.selectedLayer < layers ? s.experts.heat[state.selectedLayer] : []
        let load = state.selectedExpert < row.count ? row[state.selectedExpert] : 0
        let note = "L\(state.selectedLayer) E\(state.selectedExpert) \(Format.fixed(load, 2))× mean"
        let noteX =
            mapRect.x + selColumn < inner.maxX - note.count - 2
            ? mapRect.x + selColumn + 2 : inner.maxX - note.count
        b.put(note, x: max(inner.x, noteX), y: mapRect.maxY, style: .accent, clip: inner)
    }

    /// Loads at or below this share of the layer's mean take the bottom colour.
    static let heatFloor = 0.1

    /// A load (× the layer's mean) on the heat map's log scale, from ``heatFloor`` to the hottest
    /// expert. Log, because skew is heavy-tailed: on a linear scale to a 24× expert every other
    /// expert took the bottom colour and the map said nothing; here the mean sits at a fixed
    /// place (about 40% up for a 24× peak) and a 2× expert is visibly warmer than a 0.5× one.
    static func heatScale(_ load: Double, peak: Double) -> Double {
        guard load > heatFloor, peak > heatFloor else { return 0 }
        return min(1, log(load / heatFloor) / log(peak / heatFloor))
    }

    /// Inner rows of the heat panel from which the legend has a row of its own under the map
    /// (the map keeps at least 10 rows); 80×24 has 9 and keeps the legend on the marker row.
    static let legendRowMinHeight = 12

    /// The heat map's scale with its stops: "colour ≤0.1× ████████ 6.20× mean (max), log" in
    /// eight heat colours, from `x` when given (under the map), else right-aligned in the panel.
    /// Without colour the map draws five shades and the scale shows exactly those, in brackets
    /// so the blank lowest one shows too: "shade ≤0.1× [ ░▒▓█] 6.20× mean (max), log". (It
    /// showed eight stops of the same shades cut at other places than the map's, with the
    /// heat colours' attributes the map cells do not have, under the word "colour".)
    static func drawHeatLegend(_ b: inout CellBuffer, peak: Double, x left: Int? = nil, y: Int, inner: Rect, theme: Theme) {
        let mono = theme.monochrome
        let stops = mono ? CellBuffer.shadeGlyphs.count : 8
        let lead = mono ? "shade ≤0.1× [" : "colour ≤0.1× "
        let tail = (mono ? "]" : "") + " \(Format.fixed(peak, 2))× mean (max), log"
        let width = lead.count + stops + tail.count
        guard inner.width > width + 30 else { return }
        var x = b.put(lead, x: left ?? (inner.maxX - width - 1), y: y, style: .dim)
        for i in 0..<stops {
            let v = Double(i) / Double(stops - 1)
            b[x, y] = mono ? Cell(character: CellBuffer.shadeGlyph(v), style: .text) : Cell(character: "█", style: Style(fg: .heatLevel(v)))
            x += 1
        }
        b.put(tail, x: x, y: y, style: .dim)
    }

    /// Columns the imbalance trend keeps for its range (" 1.21…1.36", two more for 10× and over).
    static let trendRange = 12

    static let imbalanceWarn = 4.0
    static let imbalanceAlarm = 6.0

    static func drawDies(_ b: inout CellBuffer, _ rect: Rect, _ state: ConsoleState, _ s: Snapshot) {
        let e = s.experts
        // The die loads are the first decode TE's (the engine's expert summary): with several
        // decode TEs (colocated replicas) the title names it, so 8 dies do not read as the pod's.
        let decodeTEs = s.instances.filter { $0.kind == "decode" || $0.kind == "colocated" }
        let serving = decodeTEs.filter { $0.state != "retired" }.count
        // The TEs named as they are: a colocated replica prefills and decodes, and "(1 of 2 decode
        // TEs)" called it a decode TE beside an Instances table that says "colocated".
        let kinds = Set(decodeTEs.map(\.kind))
        let teWord = kinds == ["decode"] ? "decode TEs" : kinds == ["colocated"] ? "colocated TEs" : "TEs that decode"
        let dense = s.servesDenseModel
        // On a one-die GPU the die is the GPU (``Snapshot/dieWord``): "8 expert dies" named a part
        // an H100 does not have. The superpod's 910C dies keep their word.
        let die = s.dieWord, load = s.dieWord == "die" ? "Die load" : "\(s.dieWord) load"
        // A dense model's title counts nothing: "0 expert dies of colocated-0 (1 of 4 decode TEs)"
        // read as four TEs whose expert dies had gone missing. Shorter forms keep the TE and the
        // count whole where the panel is narrow (at 80×24 the title was cut at "(1 of").
        let dies = "\(e.dieLoad.count) expert \(die)s"
        let titles = serving > 1
            ? ["\(load) · \(dies) of \(decodeTEs[0].name) (1 of \(serving) \(teWord))",
               "\(load) · \(e.dieLoad.count) \(die)s of \(decodeTEs[0].name) (1 of \(serving) \(teWord))",
               "\(load) · \(e.dieLoad.count) \(die)s of \(decodeTEs[0].name) (1 of \(serving) TEs)",
               "\(load) · \(decodeTEs[0].name) (1 of \(serving) TEs)", load]
            : ["\(load) · \(dies)", load]
        b.box(rect, titles: dense ? [load] : titles)
        let inner = rect.inner
        guard inner.height > 0 else { return }
        // A dense model has nothing to balance: an "imbalance 1.00 · placement stable · r
        // rebalance now" would describe experts that do not exist.
        if dense {
            // Wrapped: at 80×24 the one line was cut by the border, "(no experts" with no mark.
            let note = DetailOverlays.wrap("none: \(s.modelName) is a dense model (no experts, no EPLB)", width: inner.width - 2)
            for (i, line) in note.prefix(inner.height).enumerated() {
                b.put(line, x: inner.x + 1, y: inner.y + i, style: .dim, clip: inner)
            }
            return
        }
        var y = inner.y
        let w = inner.width - 2
        if !e.dieLoad.isEmpty, y < inner.maxY {
            // Fold dies into columns by maximum, so one overloaded die is never averaged away.
            let fold = (e.dieLoad.count + w - 1) / max(1, w)
            let folded = stride(from: 0, to: e.dieLoad.count, by: fold).map {
                e.dieLoad[$0..<min($0 + fold, e.dieLoad.count)].max()!
            }
            b.sparkline(folded, x: inner.x + 1, y: y, width: w, style: .accent)
            y += 1
            // Each die's load is its mean over the layers, so its max sits below the imbalance on
            // the next line (each layer's busiest die, then the mean over layers): "max 1.14×"
            // over "imbalance (max/mean) 1.42" read as two answers to one question. Both say
            // which they are, as far as the width allows.
            let maxLoad = Format.fixed(e.dieLoad.max()!, 2), minLoad = Format.fixed(e.dieLoad.min()!, 2)
            let dies = fold == 1 ? "1 \(die)" : "\(fold) \(die)s"
            let forms = [
                "each \(die), mean over layers: max \(maxLoad)×  min \(minLoad)×  (\(dies) per column)",
                "mean over layers: max \(maxLoad)×  min \(minLoad)×  (\(dies) per column)",
                "layer mean: max \(maxLoad)× min \(minLoad)× (\(dies) per column)",
                "layer mean: max \(maxLoad)× min \(minLoad)× (\(fold)/column)",
            ]
            b.put(firstFitting: forms, x: inner.x + 1, y: y, style: .dim, clip: inner)
            y += 1
        }
        if y < inner.maxY {
            // Thresholds above what normal operation shows between rebalances (about 1.5–3.5
            // max/mean on the default demo and the review's runs), stated on screen.
            let style: Style =
                e.imbalance >= imbalanceAlarm ? .bad : e.imbalance >= imbalanceWarn ? .warn : .good
            let note = " warn ≥\(Format.fixed(imbalanceWarn, 0)) alarm ≥\(Format.fixed(imbalanceAlarm, 0))"
            // The longest label that leaves the value, a sparkline with its range, and the note.
            let labels = ["imbalance (each layer's max/mean, averaged) ", "imbalance (per-layer max/mean) ", "imbalance (max/mean) "]
            let value = Format.fixed(e.imbalance, 2)
            // Two measures stand on this line: the value is the serving placement's expected
            // imbalance, the trend the imbalance measured over each interval's decode steps. Shown
            // bare, side by side, they read as one ("1.20 ▁▂█▇ 1.21…1.36": a value below the
            // minimum of its own trend), so each is named. The trend is as many points as fit
            // (``trendRange`` columns kept for its range), drawn over exactly those points.
            let qualifier = " expected", trend = " · measured "
            func room(_ label: String) -> Int {
                inner.width - 2 - label.count - value.count - qualifier.count - trend.count - Self.trendRange - note.count
            }
            let series = s.series.imbalance.filter(\.isFinite)
            if let label = labels.first(where: { room($0) >= 4 }), !series.isEmpty {
                let shown = Array(series.suffix(room(label)))
                let lo = shown.min()!, hi = shown.max()!
                var x = b.put(label, x: inner.x + 1, y: y, style: .dim)
                x = b.put(value, x: x, y: y, style: style)
                x = b.put(qualifier + trend, x: x, y: y, style: .dim)
                b.sparkline(shown, x: x, y: y, width: shown.count, min: lo, max: hi, style: .accent)
                x = b.put(" \(Format.fixed(lo, 2))…\(Format.fixed(hi, 2))", x: x + shown.count, y: y, style: .dim, clip: inner)
                b.put(note, x: x, y: y, style: .dim, clip: inner)
            } else {
                let label = labels.first { $0.count + value.count + 1 + note.count <= inner.width - 2 } ?? labels[labels.count - 1]
                let x = b.put(label, x: inner.x + 1, y: y, style: .dim)
                let x2 = b.put(value + " ", x: x, y: y, style: style)
                b.put(note, x: x2, y: y, style: .dim, clip: inner)
            }
            y += 1
        }
        if y < inner.maxY {
            // The MoE part of a decode step (experts, dispatch, combine over all layers): what
            // imbalance costs, and what a rebalance wins back.
            let moe = e.moeMsPerStep.map { "MoE \(Format.fixed($0, 1)) ms/step  " } ?? ""
            let x = b.put("rebalances \(e.rebalances)  " + moe, x: inner.x + 1, y: y, style: .dim, clip: inner)
            // The longest wording that fits (at 80 columns "placement stable" was cut to "stab").
            let swapping = e.rebalanceInProgress || !e.loadingDies.isEmpty
            let fixed = e.placementFixed == true && (e.eplb == nil || e.eplb == .on)
            // Without EPLB (`--eplb off`) nothing moves the placement but `r`: "placement stable"
            // in the good colour read as EPLB keeping it balanced beside an imbalance of 4.
            let forms = swapping
                ? ["rebalancing · loading \(e.loadingDies.count) \(die)s", "loading \(e.loadingDies.count) \(die)s",
                   "rebalancing"]
                : e.eplb == .off ? ["EPLB off · static placement", "EPLB off"]
                : e.eplb == .perfect ? ["EPLB perfect (ideal balance)", "EPLB perfect"]
                // One expert per die and no spare slot: any placement leaves each die its load,
                // so EPLB (and `r`) can move nothing; not "stable" in the good colour beside 3.8.
                : fixed ? ["EPLB on, nothing to move: one expert per \(die), no redundant slot",
                           "EPLB on, nothing to move", "nothing to move", "no spare slot"]
                : ["placement stable", "stable"]
            let text = forms.first { $0.count <= inner.maxX - x } ?? forms[forms.count - 1]
            b.put(text, x: x, y: y, style: swapping ? .warn : !fixed && (e.eplb == nil || e.eplb == .on) ? .good : .dim,
                  clip: inner)
            y += 1
        }
        if y < inner.maxY, !e.loadingDies.isEmpty {
            let list = e.loadingDies.prefix(12).map(String.init).joined(separator: " ")
            b.put("loading: " + list, x: inner.x + 1, y: y, style: .warn, clip: inner)
            y += 1
        }
        if y < inner.maxY, !state.capabilities.contains(.rebalance) {
            b.put("r rebalance: not available in this build", x: inner.x + 1, y: y, style: .dim, clip: inner)
        } else if y < inner.maxY {
            b.put(
                "r rebalance now · arrows move the selection", x: inner.x + 1, y: y, style: .dim, clip: inner)
        }
        y += 1
        // With room to spare, every die gets its own cell, under a line saying what it is.
        if let peak = e.dieLoad.max(), peak > 0, inner.maxY - y - 1 >= (e.dieLoad.count + w - 1) / max(1, w) {
            // Colour here is the die's state against the imbalance thresholds, keyed on the
            // caption, not the heat ramp: the heat map above draws that ramp on a log scale to
            // its hottest expert (30× and more), the strip drew it linearly to 4×, so a 1× die
            // was navy beside a teal 1× expert, one colour meaning two loads side by side.
            // Shorter forms before a cut one: at 160 columns the line ended "full at the warn
            // level", the level itself and the busiest die cut off.
            let warn = Format.fixed(imbalanceWarn, 0), alarm = Format.fixed(imbalanceAlarm, 0)
            let busiest = Format.fixed(peak, 2)
            let key = "■ <\(warn)× ■ ≥\(warn)× warn ■ ≥\(alarm)× alarm"
            let forms = [
                "every \(die), in id order, \(w) per row · height = load × mean, full at the warn level \(warn)× (busiest \(busiest)×) · colour \(key)",
                "every \(die), \(w) per row · height = load × mean (over layers), full at \(warn)× (busiest \(busiest)×) · \(key)",
                "every \(die) · height = load × mean, full at \(warn)× · \(key)",
                "every \(die) · height = load × mean, full at \(warn)× · ■ <\(warn)× ■ ≥\(warn)× ■ ≥\(alarm)×",
                "every \(die) · height = load × mean, full at \(warn)×",
            ]
            let end = b.put(firstFitting: forms, x: inner.x + 1, y: y, style: .dim, clip: inner)
            var swatches = [Style.good, .warn, .bad][...]
            for x in (inner.x + 1)..<end where b[x, y].character == "■" {
                if let style = swatches.popFirst() { b[x, y] = Cell(character: "■", style: style) }
            }
            y += 1
            b.levelStrip(
                e.dieLoad.map { min(1, $0 / imbalanceWarn) }, styles: e.dieLoad.map(dieStyle),
                in: Rect(x: inner.x + 1, y: y, width: w, height: inner.maxY - y))
        }
    }

    /// A die's state against the imbalance thresholds, as the strip and its key colour it.
    static func dieStyle(_ load: Double) -> Style {
        load >= imbalanceAlarm ? .bad : load >= imbalanceWarn ? .warn : .good
    }

    static func drawHottest(_ b: inout CellBuffer, _ rect: Rect, _ state: ConsoleState, _ s: Snapshot) {
        let shown = s.experts.hottest.filter { matches(layer: $0.layer, expert: $0.expert, state.expertFilter) }
        let filter = state.expertFilter
        b.box(rect, titles: [
            "Hottest (× mean) · \(RequestsView.filterNote(filter))",
            filter.isEmpty ? "Hottest (× mean)" : "Hottest (× mean) · filter \"\(filter)\"",
            filter.isEmpty ? "Hottest" : "Hottest · filter \"\(filter)\"",
        ])
        let inner = rect.inner
        for (i, hot) in shown.prefix(inner.height).enumerated() {
            let x = b.put(
                "L\(Format.pad2(hot.layer)) E\(hot.expert)", x: inner.x + 1, y: inner.y + i, style: .text)
            // Neutral: a hot expert is skew the placement answers with replicas, not a fault; the
            // die load and its imbalance (left) say whether any die is overloaded. Red at 3× mean
            // painted the whole list red in every normal run.
            let style: Style = .text
            b.put(
                Format.right(Format.fixed(hot.load, 2) + "×", 8), x: max(x, inner.x + 10), y: inner.y + i,
                style: style, clip: inner)
        }
        if shown.isEmpty {
            b.put(
                s.experts.hottest.isEmpty ? "–" : "no expert matches the filter", x: inner.x + 1, y: inner.y,
                style: .dim, clip: inner)
        }
    }
}
