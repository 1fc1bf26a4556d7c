import PodModel
import ServingEngine

/// Geometry of the Pod grid: 48 nodes as 6 columns of 8 node rows, each node a row of
/// 8 NPU cells. Mouse hit-testing and arrow keys use the same arithmetic as drawing.
struct PodLayout {
    static let nodesPerColumn = 8
    static let npusPerNode = ConsoleState.npusPerNode
    /// Node label: a drain/fault marker, 2 digits, a blank. The marker sits before the number,
    /// not between it and the node's first NPU cell: there node 20 with NPU 163 dead read
    /// `20XDDDXDDDD` (nine cells, two of them dead), an HBM-faulted node `21##D^D^DDD`, and with
    /// two-column cells a dead node `20X X X X X X X X X`, nine evenly spaced cells.
    static let fullLabelWidth = 4
    /// The node label's width here: ``fullLabelWidth``, or 3 (no blank after the number) where
    /// six full blocks and a blank after the left border do not fit (80 columns).
    let labelWidth: Int

    let grid: Rect
    let cellWidth: Int
    let blockWidth: Int
    /// Blank columns between the grid's left border and the first node's marker: always one, so a
    /// marked node of the first column reads "│ X00", not "│X00" against the border.
    let lead = 1
    /// Where the NPU/node detail goes: right of the grid when wide, below it otherwise.
    let detail: Rect
    /// Instance table, when there is room for one.
    let instances: Rect?
    /// Active faults and drained nodes, beside the instances on wide screens.
    let faults: Rect?

    init(width: Int, height: Int) {
        let area = ScreenLayout.content(width: width, height: height)
        // Two-column NPU cells take 128 columns; only beside a side column of ≥ 57 (at 185+),
        // else the detail and Faults panels get clipped (console review #3 at 160×45).
        let wide = width >= 185
        cellWidth = wide ? 2 : 1
        // A blank after the cells: with two-column cells it makes two before the next node's
        // marker, which one blank (the cells' own rhythm) drew as a ninth cell of this node.
        let gridWidth = wide ? 6 * (Self.fullLabelWidth + Self.npusPerNode * 2 + 1) + 2 : area.width
        // Two-column cells end in a blank of their own, so the shifted last block keeps one
        // before the right border; one-column cells need a spare column. At 80 columns six full
        // blocks fill the 78 inner columns exactly, and the first column's marker touched the
        // left border ("│⊘05 PPPPPPPP"): there the number goes right before its cells
        // ("│ ⊘05PPPPPPPP  13PPPPPPPP"), the marker still apart from both, and the blank given
        // up goes between blocks, which keep two.
        let full = Self.fullLabelWidth + Self.npusPerNode * cellWidth + 1
        labelWidth = wide || gridWidth - 2 >= 6 * full + 1 ? Self.fullLabelWidth : Self.fullLabelWidth - 1
        blockWidth = full
        // 8 node rows + two legend rows (glyphs, load colours) + borders.
        let (top, rest) = area.splitTop(Self.nodesPerColumn + 4)
        grid = Rect(x: top.x, y: top.y, width: gridWidth, height: top.height)
        if wide {
            detail = Rect(
                x: gridWidth, y: area.y, width: area.width - gridWidth, height: min(area.height, 14))
            instances =
                rest.height >= 4 ? Rect(x: rest.x, y: rest.y, width: gridWidth, height: rest.height) : nil
            let below = area.height - detail.height
            faults =
                below >= 4
                ? Rect(x: gridWidth, y: detail.maxY, width: detail.width, height: below) : nil
        } else {
            if width >= 110 {
                // Faults stay on the main screen at 120 columns: a full-height column on the
                // right; the detail and the instance table (66 columns wide) on the left.
                let (left, right) = rest.splitLeft(max(66, rest.width / 2))
                let (d, below) = left.splitTop(min(left.height, 10))
                detail = d
                instances = below.height >= 4 ? below : nil
                faults = right.height >= 4 ? right : nil
            } else {
                let (d, below) = rest.splitTop(min(rest.height, 10))
                detail = d
                instances = below.height >= 4 ? below : nil
                faults = nil
            }
        }
    }

    /// Fewest rows for which the room under the instance table becomes an events panel (six events).
    static let minEventRows = 8
    /// Rows the Faults panel keeps when a node table joins it below (a few faults with outcomes).
    static let minFaultRows = 12
    /// Narrowest column that shows a node table's two bars at 10 cells or more.
    static let minNodeTableWidth = NodeTable.fixedWidth + 2 * 10 + 4

    /// The lower panels for a snapshot whose instance table wants `instanceRows` rows and that has `nodeCount` nodes. On a
    /// large screen the instance table and the Faults panel each left most of their rows blank
    /// (nine TEs in 74 rows at 300×90): the table keeps the rows its TEs need and the rest shows
    /// the newest events; the Faults column gives a per-node table the rows below its faults.
    func panels(instanceRows: Int, nodeCount: Int)
        -> (instances: Rect?, events: Rect?, faults: Rect?, nodes: Rect?)
    {
        var (instanceRect, events): (Rect?, Rect?) = (instances, nil)
        if let rect = instances {
            // Borders, the header row, the rows of ``InstanceRows``.
            let (top, rest) = rect.splitTop(instanceRows + 3)
            if rest.height >= Self.minEventRows { (instanceRect, events) = (top, rest) }
        }
        var (faultRect, nodes): (Rect?, Rect?) = (faults, nil)
        if let rect = faults, rect.width >= Self.minNodeTableWidth {
            // Borders, the header and scale rows, one row per node.
            let (top, rest) = rect.splitTop(rect.height - (nodeCount + 4))
            if top.height >= Self.minFaultRows { (faultRect, nodes) = (top, rest) }
        }
        return (instanceRect, events, faultRect, nodes)
    }

    static func gridColumns(nodeCount: Int) -> Int {
        max(1, (nodeCount + nodesPerColumn - 1) / nodesPerColumn) * npusPerNode
    }

    /// Logical grid position of an NPU: x counts NPU columns across node columns, y node rows.
    static func gridPosition(ofNPU npu: Int) -> (x: Int, y: Int) {
        let node = npu / npusPerNode
        return ((node / nodesPerColumn) * npusPerNode + npu % npusPerNode, node % nodesPerColumn)
    }

    static func npu(atGridX gx: Int, gridY gy: Int) -> Int {
        let node = (gx / npusPerNode) * nodesPerColumn + gy
        return node * npusPerNode + gx % npusPerNode
    }

    func origin(ofNode node: Int) -> (x: Int, y: Int) {
        (grid.x + 1 + lead + (node / Self.nodesPerColumn) * blockWidth, grid.y + 1 + node % Self.nodesPerColumn)
    }

    func npu(atX x: Int, y: Int) -> Int? {
        let row = y - grid.y - 1
        let rel = x - grid.x - 1 - lead
        guard row >= 0, row < Self.nodesPerColumn, rel >= 0 else { return nil }
        let column = rel / blockWidth
        let inBlock = rel % blockWidth - labelWidth
        guard column < 6, inBlock >= 0, inBlock < Self.npusPerNode * cellWidth else { return nil }
        return (column * Self.nodesPerColumn + row) * Self.npusPerNode + inBlock / cellWidth
    }
}

/// View 1: every NPU of the pod at a glance, and the selected one in detail.
enum PodView {
    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let layout = PodLayout(width: b.width, height: b.height)
        let nodes = NodeTable.rows(s)
        let panels = layout.panels(instanceRows: InstanceRows(s.instances).wanted, nodeCount: nodes.count)
        drawGrid(&b, layout, state, s, monochrome: theme.monochrome)
        drawDetail(&b, layout.detail, state, s)
        if let rect = panels.instances { drawInstances(&b, rect, s) }
        if let rect = panels.events { drawEvents(&b, rect, state, s) }
        if let rect = panels.faults { drawFaults(&b, rect, state, s) }
        if let rect = panels.nodes { NodeTable.draw(&b, rect, nodes, state, s) }
    }

    /// The newest events as the Events view lists them (its level and `/` filter apply), for a
    /// large screen's spare rows under the instance table.
    static func drawEvents(_ b: inout CellBuffer, _ rect: Rect, _ state: ConsoleState, _ s: Snapshot) {
        let shown = EventsView.shown(state)
        let filter = state.eventFilter.isEmpty ? "" : " · filter \"\(state.eventFilter)\""
        b.box(rect, title: "Recent events · newest first · level \(state.eventLevel.rawValue)\(filter) · view 6 lists them all")
        let inner = rect.inner
        // Whole messages, wrapped (this panel has no Enter for the full text): as many of the
        // newest events as fit whole; only one longer than the whole panel is cut, with "…".
        var y = inner.y
        for row in shown {
            let room = inner.maxX - (inner.x + EventsView.messageColumn)
            let need = EventsView.messageLines(row, room: room).count
            guard y < inner.maxY, need <= inner.maxY - y || y == inner.y else { break }
            y += EventsView.drawWrapped(&b, row, y: y, inner: inner, maxLines: inner.maxY - y)
        }
        if shown.isEmpty {
            b.put(state.events.isEmpty ? "no events yet" : "no event matches the filter", x: inner.x + 1, y: inner.y, style: .dim)
        }
    }

    /// `monochrome`: no colour to carry the load, so each band has its own glyph
    /// (``NPULoad/monoGlyph(_:letter:)``), and the legend shows those glyphs.
    static func drawGrid(
        _ b: inout CellBuffer, _ layout: PodLayout, _ state: ConsoleState, _ s: Snapshot, monochrome: Bool = false
    ) {
        let nodes = (s.npus.count + PodLayout.npusPerNode - 1) / PodLayout.npusPerNode
        guard nodes > 0 else {
            // Nothing received yet (a server that does not answer): not "0 nodes × 8 NPUs ·
            // colour = load ()", a pod of nothing.
            b.box(layout.grid, title: "Pod")
            b.put("no snapshot from the engine yet (the header says why)", x: layout.grid.x + 2, y: layout.grid.y + 1,
                  style: .dim, clip: layout.grid.inner)
            return
        }
        // Dies per chip from the deployment's hardware (2 on an Ascend 910C, 1 on a GPU), not assumed.
        let dies = s.hardware.map {
            $0.diesPerDevice == 1 ? " (chips, 1 die each)" : " (chips, \($0.diesPerDevice) dies each)"
        } ?? ""
        let nodeWord = nodes == 1 ? "node" : "nodes"
        let roles = Set(s.npus.map(\.role))
        let basis = "\(monochrome ? "glyph" : "colour") = load (\(NPULoad.basis(of: roles, long: false)))"
        // The basis whole before the node count: where "KV held" (the scope of a chip's KV, not
        // the Instances table's held + reserved) leaves no room, "48×8 NPUs".
        let pod = "Pod · \(nodes) \(nodeWord) × \(PodLayout.npusPerNode) \(s.deviceWord)s"
        let compact = "Pod · \(nodes)×\(PodLayout.npusPerNode) \(s.deviceWord)s"
        b.box(
            layout.grid,
            titles: (layout.grid.width >= 100 ? ["\(pod)\(dies) · \(basis)", "\(compact)\(dies) · \(basis)"] : [])
                + ["\(pod) · \(basis)", "\(compact) · \(basis)"])
        let faults = FaultMap(s)
        let shares = NPULoad.GroupShares(s)
        for node in 0..<nodes {
            let (x, y) = layout.origin(ofNode: node)
            let members = s.npus[
                (node * PodLayout.npusPerNode)..<min(s.npus.count, (node + 1) * PodLayout.npusPerNode)]
            let labelStyle =
                node == state.selectedNode ? Style(fg: .accent, bold: true, underline: true) : Style.dim
            b.put(Format.pad2(node), x: x + 1, y: y, style: labelStyle)
            let states = members.map { faults.state(of: $0, s) }
            if let worst = NPUState.severityOrder.first(where: states.contains), let glyph = worst.glyph {
                b.put(String(glyph), x: x, y: y, style: worst.style)
            }
            for (npu, npuState) in zip(members, states) {
                let cx = x + layout.labelWidth + (npu.id % PodLayout.npusPerNode) * layout.cellWidth
                var style: Style
                var glyph = Format.roleLetter(npu.role)
                switch npuState {
                case .dead, .slow, .hbm, .link:
                    glyph = npuState.glyph ?? glyph
                    style = npuState.style
                case .drained:
                    // A drained node does no work: its role letters are drawn dim, not by load
                    // (without colour, as idle).
                    style = .dim
                    if monochrome, npu.role != .spare { glyph = NPULoad.monoGlyph(.idle, letter: glyph) }
                case .draining, .normal:
                    if npu.role == .spare {
                        style = Style(fg: .role(.spare))
                    } else {
                        let band = NPULoad.band(of: npu, shares)
                        style = NPULoad.style(band)
                        if monochrome { glyph = NPULoad.monoGlyph(band, letter: glyph) }
                    }
                }
                if npu.id == state.selectedNPU { style = Style(fg: .selection, bold: true, reverse: false) }
                b.put(layout.cellWidth == 2 ? "\(glyph) " : "\(glyph)", x: cx, y: y, style: style)
            }
        }
        let inner = layout.grid.inner
        // The letters of the roles on the grid, in the order the grid's TEs come: "A attention
        // E expert" on the superpod and "P prefill D decode" on a GPU cluster of colocated
        // replicas keyed letters no chip shows. A grid with no chip yet keys every role.
        let keyed = Self.roleKeys.filter { roles.isEmpty || roles.contains($0.role) }
        let long = keyed.map(\.long).joined(separator: "  ") + "    " + NPUState.legend
        // The long legend only where every role's would fit whole (the line below it, the load
        // basis, needs that room too); otherwise the short one (never cut).
        let everyRole = Self.roleKeys.map(\.long).joined(separator: "  ") + "    " + NPUState.legend
        let wide = inner.width >= everyRole.count + 2
        let legend = wide ? long : keyed.map(\.short).joined(separator: " ") + " X dead ↓slow #HBM ≠link"
        putLegend(&b, legend, x: inner.x + 1, y: layout.grid.maxY - 3, clip: inner)
        let x = NPULoad.drawLegend(
            &b, x: inner.x + 1, y: layout.grid.maxY - 2, clip: inner, monochrome: monochrome,
            letters: NPULoad.letters(of: roles))
        if wide {
            b.put(" (\(NPULoad.basis(of: roles, long: true)))", x: x, y: layout.grid.maxY - 2, style: .dim, clip: inner)
        } else {
            let states = "⊘drained ~draining"
            putLegend(&b, states, x: x, y: layout.grid.maxY - 2, clip: inner)
            if roles.contains(.expert) {
                drawExpertKey(&b, x: x + states.count, y: layout.grid.maxY - 2, clip: inner, monochrome: monochrome)
            }
        }
    }

    /// Each role's letter in the grid legend, long and short.
    static let roleKeys: [(role: NPURole, long: String, short: String)] = [
        (.prefill, "P prefill", "P pre"), (.decode, "D decode", "D dec"), (.attention, "A attention", "A attn"),
        (.expert, "E expert", "E exp"), (.colocated, "C colocated", "C coloc"), (.spare, "· spare", "·spare"),
    ]

    /// The narrow legend's key of the expert dies' colours, " E ■≥4× ■≥6×", where it fits whole
    /// with a blank before the border: an E is coloured by its MoE load (× the mean die), and
    /// the percentages beside the swatches key nothing it shows (xdeepserve-ma at 80×24 drew its
    /// E dies green under "■<70% ok" beside a detail saying "MoE load 2.32×"). The wide legend
    /// says it in words ("expert: MoE load, high ≥4×, crit ≥6× mean").
    private static func drawExpertKey(_ b: inout CellBuffer, x: Int, y: Int, clip: Rect, monochrome: Bool) {
        let keys = [(NPULoad.Band.high, ExpertsView.imbalanceWarn), (.critical, ExpertsView.imbalanceAlarm)].map { band, level in
            (swatch: NPULoad.swatch(band, monochrome: monochrome, letters: "E"), band: band,
             label: (monochrome ? " " : "") + "≥\(Format.fixed(level, 0))×")
        }
        let width = " E".count + keys.reduce(0) { $0 + 1 + $1.swatch.count + $1.label.count }
        guard x + width < clip.maxX else { return }
        var x = b.put(" E", x: x, y: y, style: .dim, clip: clip)
        for key in keys {
            x = b.put(" ", x: x, y: y, style: .dim, clip: clip)
            x = b.put(key.swatch, x: x, y: y, style: NPULoad.style(key.band), clip: clip)
            x = b.put(key.label, x: x, y: y, style: .dim, clip: clip)
        }
    }

    /// A legend line in dim words, each state glyph (and the spare dot) in the colour the grid
    /// draws it in: an all-grey "X dead ↓slow" keyed red and orange cells to nothing.
    private static func putLegend(_ b: inout CellBuffer, _ text: String, x: Int, y: Int, clip: Rect) {
        b.put(text, x: x, y: y, style: .dim, clip: clip)
        let states: [NPUState] = [.dead, .slow, .hbm, .link, .drained, .draining]
        for (offset, ch) in text.enumerated() where x + offset < clip.maxX {
            if let state = states.first(where: { $0.glyph == ch }) {
                b.put(String(ch), x: x + offset, y: y, style: state.style, clip: clip)
            } else if ch == "·" {
                b.put("·", x: x + offset, y: y, style: Style(fg: .role(.spare)), clip: clip)
            }
        }
    }

    static func drawDetail(_ b: inout CellBuffer, _ rect: Rect, _ state: ConsoleState, _ s: Snapshot) {
        guard rect.height >= 3, state.selectedNPU < s.npus.count else { return }
        let npu = s.npus[state.selectedNPU]
        b.box(rect, title: "\(s.deviceWord) \(npu.id) · node \(npu.node)")
        let inner = rect.inner
        var y = inner.y
        /// Draws the first of `forms` (each a run of styled parts, shortest last) that fits from
        /// `start` to the panel's edge, else the last cut one short of the edge and ended in "…":
        /// beside a two-column grid the panel is 57 columns, and a longer line was cut at its edge
        /// with no sign, mid-number ("MoE load 1.0").
        func fitting(_ forms: [[(String, Style)]], from start: Int) {
            func fits(_ parts: [(String, Style)]) -> Bool { start + parts.reduce(0) { $0 + $1.0.count } <= inner.maxX }
            guard let last = forms.last else { return }
            let parts = forms.first(where: fits) ?? last
            let whole = fits(parts)
            let clip = whole ? inner : Rect(x: inner.x, y: inner.y, width: max(0, inner.width - 1), height: inner.height)
            var x = start
            for (text, style) in parts { x = b.put(text, x: x, y: y, style: style, clip: clip) }
            if !whole { b.put("…", x: inner.maxX - 1, y: y, style: .dim, clip: inner) }
        }
        /// `shorter`: other forms of the line, shortest last; the first of all that fits is drawn.
        func line(_ parts: [(String, Style)], shorter: [[(String, Style)]] = []) {
            guard y < inner.maxY else { return }
            fitting([parts] + shorter, from: inner.x + 1)
            y += 1
        }
        /// `note`: the forms of the note, longest first; the first that fits is drawn.
        func meter(_ label: String, _ value: Double, _ note: [String], style: Style? = nil) {
            guard y < inner.maxY else { return }
            b.put(label, x: inner.x + 1, y: y, style: .dim, clip: inner)
            // Wider on a wide panel (a 300-column screen), for finer steps.
            let w = inner.width >= 120 ? 40 : min(20, max(4, inner.width - 24))
            b.bar(value, x: inner.x + 7, y: y, width: w, style: style ?? NPULoad.style(NPULoad.band(value)))
            fitting(note.map { [($0, Style.text)] }, from: inner.x + 8 + w)
            y += 1
        }
        let faults = FaultMap(s)
        let npuState = faults.state(of: npu, s)
        // A faulted NPU says what is wrong with it first, with the glyph the grid uses.
        let fault: [(String, Style)] =
            [.dead, .slow, .hbm, .link].contains(npuState)
            ? [("\(npuState.glyph.map(String.init) ?? "") \(npuState.label)", npuState.style), ("  ", .dim)] : []
        // A dead NPU is fenced, not a spare: the engine lists it with the spares (no TE, no
        // experts), and "X dead  role spare" read as one that could take over.
        let role: (String, Style) =
            npuState == .dead && npu.role == .spare
            ? ("none (fenced)", Style(fg: .bad)) : (npu.role.rawValue, Style(fg: .role(npu.role), bold: true))
        line(fault + [
            ("role ", .dim), role,
            ("  instance ", .dim), (npu.instance.isEmpty ? "–" : npu.instance, .text),
            ("  requests ", .dim), ("\(npu.requestsInFlight)", .text),
        ])
        // A dead chip that its TE kept (a vertical shrink fences its DP groups and drops its
        // expert replicas; before detection it simply answers nothing) still carries the TE's
        // figures in the snapshot: "experts 44, 60  MoE load 0.75×" and "util 100%" were drawn
        // for NPU 130 after `fault npu 130`, as if it served. Its experts are said to be not
        // served here, with no MoE load.
        let isDead = npuState == .dead
        if isDead, !npu.experts.isEmpty {
            line(dpGroups(npu, s, dead: true) + [("  experts ", .dim), (expertList(npu.experts), .text), (" not served here", Style(fg: .bad))])
        } else {
            // "MoE 0.62×" where "MoE load 0.62×" does not fit: at 185-190 columns the long form
            // was cut mid-figure ("MoE load 0.6…").
            let groups = dpGroups(npu, s, dead: isDead)
            let experts: [(String, Style)] = [("  experts ", .dim), (expertList(npu.experts), .text)]
            let load: (String, Style) = (npu.experts.isEmpty || isDead ? "–" : Format.fixed(npu.expertLoad, 2) + "×", .text)
            // "DP 0 of 1" before "MoE": a replica's one group written out ("DP group 0 of 1")
            // took the room that kept "MoE load" whole beside 16 experts at 120 columns.
            let compact = groups.map { $0.0 == "DP group " ? ("DP ", $0.1) : $0 }
            line(groups + experts + [("  MoE load ", .dim), load],
                 shorter: [compact + experts + [("  MoE load ", .dim), load], compact + experts + [("  MoE ", .dim), load]])
        }
        // Load colours on the busy share only where it is the NPU's load (as in the node table):
        // a prefill TE's busy share is near 100 % at a quarter of capacity, its load is how many
        // of its DP groups hold a prompt, said beside it.
        var utilNote = [Format.percent(npu.utilization)]
        if NPULoad.limit(npu.role) == .groups, let te = NPULoad.GroupShares(s).byTE[npu.instance] {
            let busy = utilNote[0] + " TE busy"
            utilNote = [busy + " · \(te.busy)/\(te.groups) groups busy", busy + " · \(te.busy)/\(te.groups) DP busy", busy]
        }
        if isDead {
            meter("util", 0, ["– dead: runs nothing"], style: Style(fg: .dim))
        } else {
            meter("util", npu.utilization, utilNote,
                  style: NPULoad.limit(npu.role) == .busy ? nil : Style(fg: .accent))
        }
        // HBM in the neutral colour, not the load bands: what the engine counts as used is the
        // weights (fixed when the TE loads) plus the KV blocks in use, and the KV pool is
        // reserved up front (90% of HBM less the weights, vLLM's gpu_memory_utilization), so
        // HBM cannot fill on its own: a fresh superpod's prefill chip holds ~78% in weights
        // alone and was drawn "high" (≥70%) in its normal state. What can run out is the pool,
        // and the KV meter under it carries that state with the load thresholds (≥70% high,
        // ≥90% crit). The note says what the bar holds and where its state is.
        let hbm = npu.hbmCapacityBytes > 0 ? npu.hbmUsedBytes / npu.hbmCapacityBytes : 0
        let gb = "\(Format.gigabytes(npu.hbmUsedBytes))/\(Format.gigabytes(npu.hbmCapacityBytes)) GB"
        let holds = npu.role == .expert ? " expert weights" : npu.role == .spare ? "" : " weights + KV in use"
        let noteRoom = inner.maxX - (inner.x + 8 + (inner.width >= 120 ? 40 : min(20, max(4, inner.width - 24))))
        // A dead chip has no load to colour: its line says it is dead, and since when where a
        // fault the console can read says so (the note on the alarm colour was noise there).
        // That note names the row ("KV below" read as a sentence cut off: KV below what?).
        let dead = faults.cause[npu.id].map { f in [" · dead since \(Format.clock(f.injectedAt)) (fault #\(f.id))",
                                                    " · dead since \(Format.clock(f.injectedAt))"] } ?? [" · dead"]
        // An expert NPU (xdeepserve-ma) holds no KV: its colour is its MoE load, and an empty
        // KV meter read as an idle cache. Its row says there is none.
        let alarm = npu.role == .expert ? [] : [gb + holds + " · alarm colour on the KV row"]
        let hbmNote = (npuState == .dead ? dead.map { gb + $0 } + [gb + " · dead", gb]
                       : alarm + [gb + holds, gb]).first { $0.count <= noteRoom } ?? gb
        meter("HBM", hbm, [hbmNote], style: Style(fg: .accent))
        if npu.role == .expert {
            line([("KV    ", .dim), ("none: an expert \(s.deviceWord) holds no KV", .text)], shorter: [[("KV    ", .dim), ("none", .text)]])
        } else {
            // Held: the snapshot has no reserve per chip (the Instances table's TE figure adds it).
            // Written as that table writes a share, one decimal below 10%: a chip holding 0.4%
            // read "0% held", an empty cache, beside its TE's "0.4%".
            meter("KV", npu.kvUsage, [KVCacheView.axisPercent(npu.kvUsage) + " held"])
        }
        let node = s.npus.filter { $0.node == npu.node }
        // Over the chips that run: a dead one runs nothing (its util meter above says so), yet
        // the snapshot gives it its TE's busy share, and "node 16 faulted  util 100%" counted it.
        let running = node.filter { faults.state(of: $0, s) != .dead }
        let util = running.isEmpty ? 0 : running.map(\.utilization).reduce(0, +) / Double(running.count)
        let requests = nodeRequests(node)
        let worst = faults.worst(of: node, s)
        // The drain state is said beside a fault, not hidden by it ("node 20 faulted" of a node
        // that was also drained), and a drained node that still runs steps says why: its NPUs
        // keep their expert slots, which every DP group of the TE uses (util 88% on a drained node).
        let drain: NPUState? =
            s.drainedNodes.contains(npu.node) ? .drained
            : s.drainingNodes.contains(npu.node) || node.contains(where: \.draining) ? .draining : nil
        var stateParts: [(String, Style)] = []
        if let fault = Self.nodeFault(worst) { stateParts.append(fault) }
        if let drain {
            if !stateParts.isEmpty { stateParts.append((", ", .dim)) }
            stateParts.append(("\(drain.glyph.map(String.init) ?? "") \(drain.label)", .warn))
            if drain == .drained, util >= NPULoad.idle, node.contains(where: { !$0.experts.isEmpty }) {
                stateParts.append((" (its experts still serve)", .dim))
            }
        }
        if stateParts.isEmpty { stateParts.append(("in service", .good)) }
        var nodeLine: [(String, Style)] =
            [("node \(npu.node) ", .dim)] + stateParts + [
                ("  util ", .dim), (Format.percent(util), .text),
                ("  requests ", .dim), ("\(requests)", .text),
            ]
        // The key hint only where it fits whole, a blank before the border (the line starts one
        // in: with "≤ width - 1" it ended "f fault│" at 120×40 with 1074 requests).
        if nodeLine.map(\.0.count).reduce(0, +) + 20 <= inner.width - 2 { nodeLine.append(("  d/u drain  f fault", .dim)) }
        line(nodeLine)
    }

    /// Requests in flight on a node's chips, each DP group once. The snapshot lists a group's
    /// requests on every chip the group spans (a superpod prefill group is 4 dies on 2 NPUs, a
    /// `tp8` GPU replica's group 8 GPUs), so a plain sum counted them once per chip: "node 0 …
    /// requests 2" beside a prefill-0 holding 1, "requests 264" for one GPU replica running 33.
    /// Chips of one TE listing the same groups share them; a chip in no group counts its own.
    static func nodeRequests(_ node: [NPUStatus]) -> Int {
        var seen = Set<[String]>()
        var total = 0
        for npu in node {
            if !npu.dpGroups.isEmpty, !seen.insert([npu.instance] + npu.dpGroups.map(String.init)).inserted { continue }
            total += npu.requestsInFlight
        }
        return total
    }

    /// A node's worst fault in words and colour (a dead chip is bad, the others warnings), named
    /// as it is: a slow die is not a dead one ("faulted" was said of a node whose only fault was a
    /// straggler). Nil when its worst state is no fault (normal, drained or draining).
    static func nodeFault(_ worst: NPUState?) -> (String, Style)? {
        guard let worst, [.dead, .hbm, .slow, .link].contains(worst) else { return nil }
        return (nodeFaultWords(worst), worst == .dead ? .bad : .warn)
    }

    /// What a node with this worst fault is: `faulted` (a dead NPU or die), `slow` (a
    /// straggler), `HBM-masked`, `link fault`.
    static func nodeFaultWords(_ fault: NPUState) -> String {
        switch fault {
        case .slow: "slow"
        case .hbm: "HBM-masked"
        case .link: "link fault"
        default: "faulted"
        }
    }

    /// The NPU's DP groups out of its TE's (`40, 41 of 320`); where its TE is a single group (a
    /// GPU replica, where "DP groups 0" read as a count of zero) `group 0 of 1 · TP4`, its dies
    /// counted: the snapshot's group, which the Requests view names too (`colocated-1/dp0`);
    /// "DP none" there said the replica had no group the requests beside it were placed on.
    /// `–` for an NPU in no group (an expert die).
    /// A dead chip of a TE in no group had its groups fenced off (the snapshot lists only the
    /// groups its TE runs): `– (fenced)`.
    static func dpGroups(_ npu: NPUStatus, _ s: Snapshot, dead: Bool = false) -> [(String, Style)] {
        guard !npu.dpGroups.isEmpty else {
            return dead && !npu.instance.isEmpty && npu.role != .expert
                ? [("DP groups ", .dim), ("– (fenced)", Style(fg: .bad))] : [("DP groups ", .dim), ("–", .text)]
        }
        var all = Set<Int>()
        var peers = 0
        for other in s.npus where other.instance == npu.instance {
            all.formUnion(other.dpGroups)
            if other.dpGroups == npu.dpGroups { peers += 1 }
        }
        if all.count <= 1 {
            let dies = peers * max(1, s.hardware?.diesPerDevice ?? 1)
            return [("DP group ", .dim), ("\(npu.dpGroups[0]) of 1 · TP\(dies)", .text)]
        }
        let mine = npu.dpGroups.map(String.init).joined(separator: ", ")
        return [(npu.dpGroups.count == 1 ? "DP group " : "DP groups ", .dim), ("\(mine) of \(all.count)", .text)]
    }

    static func drawInstances(_ b: inout CellBuffer, _ rect: Rect, _ s: Snapshot) {
        // A TE's KV is the KV view's figure for it, written as there (``TEKVMeasure``). It was
        // the held share alone under a bare "KV": colocated-0 read 2% here and 3.2% in the KV view.
        let measure = TEKVMeasure(s.instances)
        b.box(rect, title: "Instances · " + measure.title)
        let area = Rect(x: rect.x + 2, y: rect.y + 1, width: rect.width - 4, height: rect.height - 2)
        // A panel too narrow for every column drops `kind` (the name already says the role: prefill-3,
        // colocated-0) rather than cut the state to one letter ("s" for serving at 120 columns).
        let withKind = area.width >= 69  // 61 columns before the state, 8 for "draining"
        let list = InstanceRows(s.instances, degraded: InstanceRows.degraded(s))
        let fit = list.fitting(rows: area.height - 1)
        // A TE that has not stepped (idle, starting) has no step time: "–", not "0.0ms".
        let rows = fit.shown.map { i -> [(String, Style)] in
            let kind = withKind ? [(i.kind, Style(fg: .role(NPURole(rawValue: i.kind) ?? .spare)))] : []
            let kv = measure.share(of: i)
            // In its band's colour, the legend's and the KV view's: below 5 % grey (idle), not
            // the text's white, which keyed no state beside the grey swatch.
            return [(i.name, .text)] + kind + [
                ("\(i.npus)", .text), (Format.count(i.queued), .text), (Format.count(i.running), .text),
                (KVCacheView.axisPercent(kv), NPULoad.style(NPULoad.band(kv))), (i.stepMs > 0 ? Format.ms(i.stepMs) : "–", i.stepMs > 0 ? .text : .dim),
                list.state(i),
            ]
        }
        // No TE row fits: the summary alone, on the first line (the column titles over nothing
        // read as an empty table above it).
        if rows.isEmpty, let last = fit.lastLine, !list.live.isEmpty {
            b.put(cutting: last, x: area.x, y: area.y, style: .dim, clip: area)
            return
        }
        let kindColumn: [(title: String, width: Int)] = withKind ? [("kind", 9)] : []
        b.table(
            columns: [("instance", 12)] + kindColumn + [
                ("\(s.deviceWord)s", -5), ("queued", -7), ("running", -8), ("KV", -5), ("step", -8), ("state", 16),
            ],
            rows: rows, in: area
        )
        guard let last = fit.lastLine else { return }
        let y = area.y + 1 + rows.count
        b.put(cutting: last, x: area.x, y: y, style: .dim, clip: area)
    }

    /// The experts an NPU hosts (layer 0): all of a few, else the first four and the count, so
    /// that "MoE load" after them stays on the line (16 experts per GPU pushed it off).
    static func expertList(_ experts: [Int]) -> String {
        guard !experts.isEmpty else { return "–" }
        guard experts.count > 5 else { return experts.map(String.init).joined(separator: ", ") }
        return experts.prefix(4).map(String.init).joined(separator: ", ") + ", … (\(experts.count))"
    }

    /// Lifecycle of a TE (elastic scaling): serving, a start's phase with its time left, draining
    /// after a scale-in, or retired.
    static func instanceState(_ i: InstanceStatus) -> (String, Style) {
        switch i.state ?? "in-service" {
        case "in-service": return ("serving", .good)
        case "draining": return ("draining", .warn)
        case "retired": return ("retired", .dim)
        case let phase:
            let left = i.phaseSecondsLeft.map { " \(Int($0.rounded(.up)))s" } ?? ""
            return (phase + left, .warn)
        }
    }

    /// Every fault the console has seen, newest first, with its outcome, until `:clear faults`;
    /// then the drains.
    static func drawFaults(_ b: inout CellBuffer, _ rect: Rect, _ state: ConsoleState, _ s: Snapshot) {
        let records = state.memory.faults
        let healed = records.filter { $0.healedAt != nil }.count
        b.box(rect, title: "Faults · drains" + (healed > 0 ? " · \(healed) healed (:clear faults)" : ""))
        let inner = rect.inner
        var y = inner.y
        func line(_ parts: [(String, Style)]) {
            guard y < inner.maxY else { return }
            var x = inner.x + 1
            for (text, style) in parts { x = b.put(text, x: x, y: y, style: style, clip: inner) }
            if x > inner.maxX - 1, let last = parts.last, !last.0.isEmpty { b.put("…", x: inner.maxX - 1, y: y, style: .dim) }
            y += 1
        }
        // Drains first (short), so they never scroll off under a long fault history.
        let drained = nodeList(s.drainedNodes, separator: ", ")
        let draining = nodeList(s.drainingNodes, separator: ", ")
        if !drained.isEmpty || !draining.isEmpty {
            line([("⊘ drained ", .dim), (drained.isEmpty ? "none" : drained, drained.isEmpty ? .dim : .warn),
                  ("  ~ draining ", .dim), (draining.isEmpty ? "none" : draining, draining.isEmpty ? .dim : .warn)])
        }
        if records.isEmpty { line([("no faults so far", .good)]) }
        for r in records.reversed() {
            let f = r.status
            let (state, style): (String, Style) =
                r.healedAt != nil ? ("healed", .dim) : f.recoveredAt != nil ? ("recovered, active", .warn)
                : f.detectedAt != nil ? ("detected", .bad) : ("undetected", .bad)
            // The engine's description (with detect/recover times) wraps rather than being cut.
            let head = "#\(f.id) \(state)  "
            let room = max(10, inner.width - 2 - head.count)
            let wrapped = DetailOverlays.wrap(f.shownDescription, width: room)
            line([("#\(f.id) ", style), (state, Style(fg: style.fg, bold: r.healedAt == nil)),
                  ("  " + (wrapped.first ?? ""), r.healedAt == nil ? .text : .dim)])
            for more in wrapped.dropFirst() {
                line([(String(repeating: " ", count: head.count) + more, r.healedAt == nil ? .text : .dim)])
            }
            var when: [(String, Style)] = [(" at \(Format.clock(f.injectedAt))", .dim)]
            if let healedAt = r.healedAt { when.append((" · healed \(Format.clock(healedAt))", .dim)) }
            let outcome: [(String, Style)] = [
                ("\(r.reprefilled) re-prefilled", r.reprefilled > 0 ? .warn : .dim), (" · ", .dim),
                ("\(r.failed) failed", r.failed > 0 ? .bad : .dim),
            ]
            // One line where it fits, else the outcome on its own line (never cut).
            if (when + outcome).map(\.0.count).reduce(3, +) <= inner.width - 1 {
                line(when + [(" · ", .dim)] + outcome)
            } else {
                line(when)
                line([(" ", .dim)] + outcome)
            }
        }
    }

    /// Drained or draining nodes by number, with the word: "node 5", "nodes 5, 20". The bare
    /// "⊘ drained 5" (node 5) sat under the header's "drained 1" (a count), and read as five
    /// drained nodes.
    static func nodeList(_ nodes: [Int], separator: String) -> String {
        guard !nodes.isEmpty else { return "" }
        return (nodes.count == 1 ? "node " : "nodes ") + nodes.map(String.init).joined(separator: separator)
    }

    /// One line for the bottom border of any view that does not show the Faults panel:
    /// unrecovered faults, active degradations and drains, or nil when all is well.
    /// `width`: the columns it has; where the engine's descriptions (with their detection
    /// times) do not fit, each fault is named by the first part of its description, so the
    /// degraded count and the drains after it stay in sight (at 80 columns a straggler's
    /// "· detected in 0.2 s · kept until healed" pushed "⊘ drained 20" off the line).
    static func ticker(_ s: Snapshot, width: Int = .max) -> (String, Style)? {
        let down = s.activeFaults.filter { $0.recoveredAt == nil }
        let degraded = s.activeFaults.filter { $0.recoveredAt != nil }
        // Shorter and shorter: the descriptions' first parts, "degraded" (the header's word)
        // for "recovered, still active", one fault named and the rest counted, all counted.
        func line(short: Bool, named: Int, terse: Bool) -> String? {
            var parts: [String] = []
            for f in down.prefix(named) {
                let what = short ? f.description.components(separatedBy: " · ")[0] : f.shownDescription
                parts.append("#\(f.id) \(what)")
            }
            let rest = down.count - named
            if rest > 0 { parts.append((named > 0 ? "+\(rest) more" : "\(rest)") + " fault" + (rest == 1 ? "" : "s")) }
            if !degraded.isEmpty { parts.append(terse ? "\(degraded.count) degraded" : "\(degraded.count) recovered, still active") }
            if !s.drainingNodes.isEmpty { parts.append("~ draining " + nodeList(s.drainingNodes, separator: ",")) }
            if !s.drainedNodes.isEmpty { parts.append("⊘ drained " + nodeList(s.drainedNodes, separator: ",")) }
            return parts.isEmpty ? nil : " ⚠ " + parts.joined(separator: " · ") + " "
        }
        let forms = [(false, 2, false), (true, 2, false), (true, 2, true), (true, 1, true), (true, 0, true)].compactMap {
            line(short: $0.0, named: $0.1, terse: $0.2)
        }
        guard let text = forms.first(where: { $0.count <= width }) ?? forms.last else { return nil }
        return (text, down.isEmpty ? .warn : Style(fg: .bad, bold: true))
    }
}

/// The Instances panel's rows: the TEs that hold hardware (serving, starting, draining) in the
/// engine's order, then the retired ones folded into one line. Retired TEs kept their place in
/// the engine's list, so a scale-in put them (with their last step times, stale) between the
/// serving prefill TEs and the decode TE, and pushed serving TEs off a 120×40 screen unsaid.
struct InstanceRows {
    var live: [InstanceStatus]
    var retired: [InstanceStatus]
    /// Serving TEs with a faulted NPU (dead, slow, HBM-masked, link down) still in them.
    var degraded: Set<String>

    init(_ instances: [InstanceStatus], degraded: Set<String> = []) {
        live = instances.filter { $0.state != "retired" }
        retired = instances.filter { $0.state == "retired" }
        self.degraded = degraded
    }

    /// The TEs that hold an NPU the fault map marks faulted.
    static func degraded(_ s: Snapshot) -> Set<String> {
        let faults = FaultMap(s)
        return Set(s.npus.filter { !$0.instance.isEmpty && [.dead, .slow, .hbm, .link].contains(faults.state(of: $0, s)) }
            .map(\.instance))
    }

    /// A TE's state as its row and the summaries say it: a serving TE with a faulted NPU is
    /// "degraded" (it read "serving" in green beside a dead chip).
    func state(_ te: InstanceStatus) -> (String, Style) {
        let (word, style) = PodView.instanceState(te)
        return word == "serving" && degraded.contains(te.name) ? ("degraded", Style(fg: .warn, bold: true)) : (word, style)
    }

    /// Not serving as it should: starting, draining, or degraded.
    func needsAttention(_ te: InstanceStatus) -> Bool { state(te).0 != "serving" }

    /// Rows the whole list takes: one per live TE, one for all the retired ones.
    var wanted: Int { live.count + (retired.isEmpty ? 0 : 1) }

    /// "3 retired (scaled in): prefill-5, prefill-6, prefill-7"; nil when none is.
    var retiredLine: String? {
        retired.isEmpty ? nil : "\(retired.count) retired (scaled in): " + retired.map(\.name).joined(separator: ", ")
    }

    /// "6 serving, 2 loading": TEs counted by their state's first word, in order of first
    /// appearance.
    func counts(_ tes: some Sequence<InstanceStatus>) -> String {
        var states: [(String, Int)] = []
        for te in tes {
            let word = state(te).0.split(separator: " ").first.map(String.init) ?? ""
            if let i = states.firstIndex(where: { $0.0 == word }) { states[i].1 += 1 } else { states.append((word, 1)) }
        }
        return states.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
    }

    /// The TEs that get a row in `rows` rows, and the line under them: the retired line when all
    /// fit, else what is left out ("+3 more TEs (2 serving, 1 draining) · 3 retired"), so a cut
    /// list never looks whole. A cut list shows the TEs that need attention (starting, draining,
    /// degraded) first, then the serving ones in the engine's order: at 100×30 the one row read
    /// "+9 more TEs (9 serving)" and a degraded TE could be among those never shown. With room for
    /// one line only, that line counts them all and names the ones that need attention.
    func fitting(rows: Int) -> (shown: [InstanceStatus], lastLine: String?) {
        guard rows > 0 else { return ([], nil) }
        if wanted <= rows { return (live, retiredLine) }
        let retiredNote = retired.isEmpty ? "" : " · \(retired.count) retired"
        let attention = live.filter(needsAttention)
        if rows == 1 {
            let head = "\(live.count) TE\(live.count == 1 ? "" : "s")"
            guard !attention.isEmpty else { return ([], head + (live.isEmpty ? "" : ", all serving") + retiredNote) }
            let named = attention.map { "\($0.name) \(state($0).0)" }.joined(separator: ", ")
            return ([], "\(head): \(counts(live))\(retiredNote) · \(named)")
        }
        let ordered = attention + live.filter { !needsAttention($0) }
        let shown = Array(ordered.prefix(rows - 1))
        let hidden = ordered.dropFirst(rows - 1)
        let more = "+\(hidden.count) more TE\(hidden.count == 1 ? "" : "s") (\(counts(hidden)))"
        return (shown, more + retiredNote)
    }
}

/// Per-node figures for a large screen: what the grid's colours say, as numbers and bars with
/// their scale (busy share and KV held as means over the node's chips; HBM summed over them).
enum NodeTable {
    struct Row {
        var node: Int
        var chips: [NPUStatus]
    }

    /// Columns besides the two bars: node 4, roles 12, instances 16, state 14, the bars' values
    /// (5 each) and gaps, HBM 18, requests 9.
    static let fixedWidth = 4 + 1 + 12 + 1 + 16 + 1 + 14 + 1 + 5 + 3 + 5 + 3 + 18 + 9

    static func rows(_ s: Snapshot) -> [Row] {
        var byNode: [Int: [NPUStatus]] = [:]
        for npu in s.npus { byNode[npu.node, default: []].append(npu) }
        return byNode.keys.sorted().map { Row(node: $0, chips: byNode[$0]!) }
    }

    /// "8 prefill" for one role, else counts by letter ("4 P 4 D"); spares by name ("4 C 4 spare"),
    /// as the grid's "·" beside a count read as a stray mark. `fenced`: dead chips the engine
    /// lists with the spares (a dead chip replaced by a spare through NPU-fork leaves its TE),
    /// counted as "dead", as the grid draws them `X` and the NPU panel says "none (fenced)":
    /// node 21 read "7 D 1 spare" beside the grid's X for NPU 170, a spare that could take over.
    static func roles(_ chips: [NPUStatus], fenced: Set<Int> = []) -> String {
        let listed = chips.filter { !fenced.contains($0.id) }
        let dead = chips.count - listed.count
        let present = NPURole.allCases.filter { role in listed.contains { $0.role == role } }
        if present.count == 1, dead == 0 { return "\(chips.count) \(present[0].rawValue)" }
        return (present.map { role in
            "\(listed.filter { $0.role == role }.count) \(role == .spare ? "spare" : String(Format.roleLetter(role)))"
        } + (dead > 0 ? ["\(dead) dead"] : [])).joined(separator: " ")
    }

    /// The chips of `chips` that are dead and listed as spares (see ``roles(_:fenced:)``).
    static func fenced(_ chips: [NPUStatus], _ faults: FaultMap, _ s: Snapshot) -> Set<Int> {
        Set(chips.filter { $0.role == .spare && faults.state(of: $0, s) == .dead }.map(\.id))
    }

    /// "prefill-0,prefill-1" when it fits `width`, else the names that fit and how many more
    /// ("prefill-0 +2"). A cut list ended in "…", which under `LANG=C` is `~`, the draining
    /// node's glyph, two columns from this table's own state markers.
    static func instanceList(_ names: [String], width: Int) -> String {
        let all = names.joined(separator: ",")
        guard all.count > width else { return all }
        guard names.count > 1 else { return String(all.prefix(width)) }
        var shown = 0
        for k in stride(from: names.count - 1, through: 1, by: -1) {
            let head = names.prefix(k).joined(separator: ",") + " +\(names.count - k)"
            if head.count <= width { shown = k; break }
        }
        if shown > 0 { return names.prefix(shown).joined(separator: ",") + " +\(names.count - shown)" }
        let more = " +\(names.count - 1)"
        return String(names[0].prefix(max(1, width - more.count))) + more
    }

    static func draw(_ b: inout CellBuffer, _ rect: Rect, _ rows: [Row], _ state: ConsoleState, _ s: Snapshot) {
        let chipWord = s.hardware.map { $0.diesPerDevice == 1 ? "chips (1 die each)" : "chips (\($0.diesPerDevice) dies each)" } ?? "chips"
        // KV held: the snapshot has no reserve per chip, so none per node (the Instances
        // table's TE figure, held + reserved, is another scope).
        b.box(rect, title: "Nodes · \(rows.count) · busy and KV held: mean over the node's \(chipWord), 0–100%, in load colours where the grid judges by it · HBM: node total")
        let inner = rect.inner
        guard inner.height >= 3 else { return }
        let barWidth = min(40, max(10, (inner.width - 2 - fixedWidth) / 2))
        let x0 = inner.x + 1
        let busyX = x0 + 4 + 1 + 12 + 1 + 16 + 1 + 14 + 1
        let kvX = busyX + barWidth + 5 + 3
        let hbmX = kvX + barWidth + 5 + 3
        let header = Style(fg: .title, bold: true, underline: true)
        b.put("node", x: x0, y: inner.y, style: header, clip: inner)
        b.put("roles", x: x0 + 5, y: inner.y, style: header, clip: inner)
        b.put("instances", x: x0 + 18, y: inner.y, style: header, clip: inner)
        b.put("state", x: x0 + 35, y: inner.y, style: header, clip: inner)
        b.put("busy share", x: busyX, y: inner.y, style: header, clip: inner)
        b.put("KV held", x: kvX, y: inner.y, style: header, clip: inner)
        b.put("HBM used/total", x: hbmX, y: inner.y, style: header, clip: inner)
        b.put(Format.right("requests", 8), x: hbmX + 19, y: inner.y, style: header, clip: inner)
        // The bars' scale, under their headers: 0% at the first cell, 100% at the last.
        for x in [busyX, kvX] {
            b.put("0%", x: x, y: inner.y + 1, style: .dim, clip: inner)
            b.put("50%", x: x + barWidth / 2 - 1, y: inner.y + 1, style: .dim, clip: inner)
            b.put("100%", x: x + barWidth - 4, y: inner.y + 1, style: .dim, clip: inner)
        }
        let faults = FaultMap(s)
        for (i, row) in rows.prefix(inner.height - 2).enumerated() {
            let y = inner.y + 2 + i
            let chips = row.chips
            let worst = faults.worst(of: chips, s)
            let selected = row.node == state.selectedNode
            // The marker before the number, as the grid's node labels have it (``PodLayout/fullLabelWidth``):
            // this table read `17X` beside the grid's `X17` for the same node.
            if let worst, let glyph = worst.glyph { b.put(String(glyph), x: x0, y: y, style: worst.style, clip: inner) }
            b.put(Format.pad2(row.node), x: x0 + 1, y: y,
                  style: selected ? Style(fg: .accent, bold: true, underline: true) : .dim, clip: inner)
            let fenced = fenced(chips, faults, s)
            b.put(roles(chips, fenced: fenced), x: x0 + 5, y: y, style: .text, clip: Rect(x: x0 + 5, y: y, width: 12, height: 1))
            var names: [String] = []
            for c in chips where !c.instance.isEmpty && !names.contains(c.instance) { names.append(c.instance) }
            b.put(names.isEmpty ? "–" : instanceList(names, width: 16), x: x0 + 18, y: y,
                  style: names.isEmpty ? .dim : .text, clip: inner)
            let (word, style): (String, Style) =
                if let fault = PodView.nodeFault(worst) { fault }
                else if worst == .drained { ("drained", .warn) }
                else if worst == .draining { ("draining", .warn) }
                // A node of spare chips serves nothing: it is the pool a TE starts on.
                else if chips.allSatisfy({ $0.role == .spare }) { ("spare", .dim) }
                else { ("in service", .good) }
            b.put(word, x: x0 + 35, y: y, style: style, clip: inner)
            let count = Double(max(1, chips.count))
            let busy = chips.map { unitInterval($0.utilization) }.reduce(0, +) / count
            let kv = chips.map { unitInterval($0.kvUsage) }.reduce(0, +) / count
            // Load colours only on the measure the grid judges these chips by: a decode node is
            // busy every step by design, and a red 100% busy bar there would be a false alarm.
            // A fenced dead chip runs nothing: its "spare" role gave node 21's decode bar the
            // busy colours (orange at 87%) where every other decode node's is neutral.
            let limits = Set(chips.filter { !fenced.contains($0.id) }.map { NPULoad.limit($0.role) })
            let neutral = Style(fg: .accent)
            b.bar(busy, x: busyX, y: y, width: barWidth,
                  style: limits.contains(.busy) ? NPULoad.style(NPULoad.band(busy)) : neutral)
            b.put(Format.right(Format.percent(busy), 5), x: busyX + barWidth, y: y, style: .text, clip: inner)
            b.bar(kv, x: kvX, y: y, width: barWidth,
                  style: limits.contains(.kv) ? NPULoad.style(NPULoad.band(kv)) : neutral)
            b.put(Format.right(Format.percent(kv), 5), x: kvX + barWidth, y: y, style: .text, clip: inner)
            let used = chips.map(\.hbmUsedBytes).filter(\.isFinite).reduce(0, +)
            let total = chips.map(\.hbmCapacityBytes).filter(\.isFinite).reduce(0, +)
            b.put(Format.right("\(Format.gigabytes(used))/\(Format.gigabytes(total)) GB", 18), x: hbmX, y: y,
                  style: .text, clip: inner)
            // Each DP group once, as the detail panel's node line counts them.
            b.put(Format.right(Format.count(PodView.nodeRequests(chips)), 8), x: hbmX + 19, y: y,
                  style: .text, clip: inner)
        }
    }
}
