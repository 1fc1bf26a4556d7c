import ServingEngine

/// Boxes drawn over the current view: the `?` help and the `f` fault menu.
enum Overlays {
    /// Every key and every panel; each text fits in 64 columns, so a blank stays before the
    /// box's right border at 80 columns (the box is 78 wide there, its texts start 11 in).
    static let helpLines: [(String, String)] = [
        ("1-6", "views: Pod Experts KV-cache Latency Requests Events; click tabs"),
        (":", "command prompt: Enter sends, Esc cancels, Tab completes, ↑↓"),
        // `+`/`-` step through ``ConsoleUpdate/speedSteps`` then `max`; `:speed` takes any S in
        // its range (page 2 says both). This said "0.1×…max" beside a command taking 0.01…100000.
        // `=` and `_` are `+` and `-` without Shift (ConsoleUpdate.handleKey); the wheel moves
        // as j/k do, three steps a notch. Help lists every key that does something.
        ("space", "pause / resume   +/= -/_  speed steps 0.1×…1000×, max (:speed S)"),
        ("hjkl ←↓↑→", "move selection, scroll; PgUp PgDn Home End page; click; wheel"),
        ("d / u", "drain (asks y/n) / undrain node     f  fault menu (y/n)"),
        ("r", "rebalance experts now                 t  next theme"),
        ("/", "filter lists as you type (Esc clears) s/S sort, reverse"),
        ("Enter", "request timeline (5), event in full (6)  w window (4)"),
        ("q Ctrl-C", "quit   Ctrl-Z suspend (fg resumes)    ?  this help"),
        // The header's p99s and SLO % are since start; the Latency panels are of their window.
        // "wait" is the engine's waiting (in flight − in a decode batch): it counts requests
        // being prefilled too, and read as a queue without this. The time, speed, rate and
        // tok/s this line listed before name themselves on the header.
        ("header", "run = decoding, wait = queued/prefill/KV; p99, SLO% since start"),
        // The header's tight forms at 80 columns: under LANG=C they read "!0 /0", and nothing
        // on screen said what the glyphs counted ("!" is also the Pod legend's link glyph).
        ("", "narrow: ⚠N faults (⚠N+M: M degraded), ⊘N drained, ~N draining"),
        ("Pod", "NPUs by node; letter = role (P/D/A/E/C/·), colour = load"),
        ("", "X dead ↓ slow # HBM ≠ link ⊘ drained ~ draining; panel: selected"),
        ("Experts", "layer × expert heat (max per cell), die load, imbalance"),
        ("KV cache", "decode DP-group KV use, prefill TEs, prefix hits, DRAM pool"),
        ("Latency", "TTFT/TPOT/E2E histograms, p50/p90/p99, ▲ = SLO; trends"),
        ("Requests", "in flight: gen/out = generated of output tokens; recent"),
        ("Events", "log, newest first; v level; routine repeats shown ×N"),
    ]

    /// The Pod line of the help in the mono theme (``NPULoad/monoGlyph(_:letter:)``).
    static let monochromePodLine = "letter = role (P/D/A/E/C/·); load: p idle P ok ^ high * crit"

    /// The Latency line of the help in the mono theme: a bar over the SLO is `╳` there
    /// (``LatencyView/monoFill(_:)``), in colour it is red.
    static let monochromeLatencyLine = "TTFT/TPOT/E2E histograms, p50/p90/p99, ▲ SLO, ╳ over it; trends"

    /// A box centred in the rows between the header and the footer: the header's vitals (tok/s,
    /// p99 against the SLOs, faults, SLO %) are what a box (a what-if, the help) is read against,
    /// and centred on the whole screen a box of 21 rows or more covered their line at 80×24.
    static func centered(_ b: CellBuffer, width: Int, height: Int) -> Rect {
        let top = ScreenLayout.headerRows, room = room(b)
        let w = min(width, b.width - 2), h = min(height, room)
        return Rect(x: (b.width - w) / 2, y: top + (room - h) / 2, width: w, height: h)
    }

    /// The most rows a box from ``centered(_:width:height:)`` can have on `b`.
    static func room(_ b: CellBuffer) -> Int { max(0, b.height - ScreenLayout.headerRows - 1) }

    /// Page 2: every `:` command with its syntax (interfaces.md operator language).
    static let commandLines: [(String, String)] = [
        ("drain", "drain node N  ·  undrain node N"),
        ("fault", "fault die D  ·  fault npu N  ·  fault node N  ·  fault glitch"),
        ("", "fault link A-B [degrade F]   (A, B NPUs; no F: the link is down)"),
        ("", "fault straggler die D [slowdown F]  ·  fault hbm die D"),
        // The parser's meaning and range of F (a link's transfers, a die's steps take F times as
        // long): this line said "F 0…1 of bandwidth", and `degrade 0.5` was then refused.
        ("", "F: times slower, greater than 1 and at most \(Int(CommandLimits.maxFactor))"),
        ("heal", "heal FAULT_ID  ·  heal all"),
        ("rebalance", "rebalance   (experts, now)"),
        ("rate", "rate R   (synthetic arrivals, requests/s)"),
        ("speed", "speed S (any \(ConsoleUpdate.formatSpeed(CommandLimits.minSpeed))…\(ConsoleUpdate.formatSpeed(CommandLimits.maxSpeed))) · speed max · pause · resume"),
        ("", "+ / - keys: " + ConsoleUpdate.speedSteps.map(ConsoleUpdate.formatSpeed).joined(separator: " ") + " · max"),
        ("scale", "scale prefill|decode|colocated N, +K or -K"),
        ("autoscale", "autoscale off · autoscale slo"),
        ("policy", "policy je|dp-lb|eplb|recovery NAME   (Tab lists names)"),
        ("preview", "preview COMMAND [for DURATION]   (what-if; Esc cancels)"),
        ("clear", "clear faults   (the console's fault history; local)"),
        ("Tab", "completes what can follow the words typed so far"),
        ("↑ ↓", "history · Enter sends (no confirmation) · Esc cancels"),
        ("paste", "adds its first line to the prompt, runs nothing; else ignored"),
    ]

    /// The quit line where no job-control shell started the console (``ConsoleState/canSuspend``):
    /// there Ctrl-Z only says why it does not suspend, and "suspend (fg resumes)" promised a stop.
    static let noJobControlQuitLine = "quit   Ctrl-Z does not suspend (no job control)  ?  this help"

    /// Page 2's fault lines on hardware with one die per device (a GPU): the `:` language names
    /// the device `npu N` and, for stragglers and HBM, `die N`, while the screen says GPU. Each
    /// line says which GPU the command hits (it listed "fault die D" and "(A, B NPUs …)" on an
    /// A100 cluster). Three lines for three, so page 2 still fits 80×24.
    static func singleDieFaultLines(_ device: String) -> [String: String] {
        [
            "fault die D  ·  fault npu N  ·  fault node N  ·  fault glitch":
                "fault npu N = fault die N (\(device) N) · fault node N · fault glitch",
            "fault link A-B [degrade F]   (A, B NPUs; no F: the link is down)":
                "fault link A-B [degrade F]   (A, B \(device)s; no F: the link is down)",
            "fault straggler die D [slowdown F]  ·  fault hbm die D":
                "fault straggler die N [slowdown F] · fault hbm die N (\(device) N)",
        ]
    }

    /// `colocated`: no TE is a decode or prefill TE (``KVCacheView/isColocated(_:)``).
    /// `dramPool`: the engine has a pooled DRAM KV tier (none on GPUs).
    static func help(_ b: inout CellBuffer, _ state: ConsoleState, _ theme: Theme, colocated: Bool = false,
                     dramPool: Bool = true, denseModel: Bool = false) {
        // Without colour the Pod grid's load is in its glyphs: the help says which.
        var replaced = theme.monochrome ? ["Pod": monochromePodLine, "Latency": monochromeLatencyLine] : [:]
        if !state.canSuspend { replaced["q Ctrl-C"] = noJobControlQuitLine }
        // The device noun of the hardware on screen: "NPUs by node" on an A100 cluster named
        // devices it does not have (the Pod view's title says GPUs there).
        if replaced["Pod"] == nil, state.deviceWord != "NPU", let pod = helpLines.first(where: { $0.0 == "Pod" }) {
            replaced["Pod"] = pod.1.replacingOccurrences(of: "NPUs by node", with: "\(state.deviceWord)s by node")
        }
        // The Experts view calls a one-die GPU's load "GPU load" (``Snapshot/dieWord``): so does the help.
        if state.deviceWord == "GPU", state.diesPerNPU == 1, let experts = helpLines.first(where: { $0.0 == "Experts" }) {
            replaced["Experts"] = experts.1.replacingOccurrences(of: "die load", with: "GPU load")
        }
        // View 3 as it reads there: "decode DP-group KV use, prefill TEs" named TEs a colocated
        // deployment does not have, above a view saying "Colocated DP groups", "TEs that prefill".
        // Without a pooled DRAM tier (a GPU cluster) the view's pool row says "none on GPUs":
        // the line names what is there instead, the KV-written meter or the transfers row.
        if colocated {
            replaced["KV cache"] = "colocated DP-group KV, TEs that prefill, prefix hits, "
                + (dramPool ? "DRAM pool" : "KV written")
        } else if !dramPool {
            replaced["KV cache"] = "decode DP-group KV use, prefill TEs, prefix hits, KV transfers"
        }
        // A dense model has no experts: `r` is answered "… has no experts" and the footer does
        // not offer it (``ConsoleScreen/idleKeys(_:_:)``), so the help does not promise a rebalance.
        if denseModel { replaced["r"] = "nothing: a dense model has no experts    t  next theme" }
        let keys = helpLines.map { line in replaced[line.0].map { (line.0, $0) } ?? line }
        var commands = commandLines
        if state.diesPerNPU == 1 {
            let gpu = singleDieFaultLines(state.deviceWord)
            commands = commands.map { ($0.0, gpu[$0.1] ?? $0.1) }
        }
        let page = state.helpPage == 1 ? commands : keys
        let rect = centered(b, width: 80, height: helpLines.count + 4)
        b.fill(rect)
        b.box(
            rect,
            title: state.helpPage == 1
                ? "Help 2/2 · : commands · Tab keys · any other key closes"
                : "Help 1/2 · keys · Tab : commands · any other key closes", style: .accent)
        let inner = rect.inner
        for (i, (key, text)) in page.enumerated() where i < inner.height {
            b.put(key, x: inner.x + 1, y: inner.y + i, style: .accent, clip: inner)
            b.put(text, x: inner.x + 11, y: inner.y + i, style: .text, clip: inner)
        }
        let footer = "theme \(theme.name) · log \(state.logPath.isEmpty ? "off" : state.logPath)"
        b.put(footer, x: inner.x + 1, y: inner.maxY - 1, style: .dim, clip: inner)
    }

    static func faultMenu(_ b: inout CellBuffer, _ menu: FaultMenu, _ state: ConsoleState, _ s: Snapshot) {
        let available = state.capabilities.contains(.faults)
        let items = menu.items
        // With one die per device the note says how the `:` commands name it (`die N`), on a
        // row of its own under the items.
        let note = menu.dieNote
        let noteRows = note == nil ? 0 : 1
        let rect = centered(b, width: 52, height: items.count + (available ? 4 : 5) + noteRows)
        b.fill(rect)
        b.box(
            rect, title: "Fault · \(menu.deviceWord) \(menu.npu) · node \(menu.npu / ConsoleState.npusPerNode)",
            style: available ? .accent : .dim)
        let inner = rect.inner
        for (i, item) in items.enumerated() {
            var style: Style = available ? .text : .dim
            if i == menu.highlighted && available { style = Style(fg: .selection, bold: true) }
            b.put(" \(i + 1)  \(item.label)", x: inner.x, y: inner.y + i, style: style, clip: inner)
        }
        if let note { b.put(note, x: inner.x + 1, y: inner.y + items.count + 1, style: .dim, clip: inner) }
        let y = inner.y + items.count + 1 + noteRows
        if available {
            b.put("1-\(items.count) or Enter, then y injects · p previews · Esc", x: inner.x + 1, y: y, style: .dim, clip: inner)
        } else {
            b.put("fault injection is not available", x: inner.x + 1, y: y - 1, style: .warn, clip: inner)
            b.put("in this engine build · Esc closes", x: inner.x + 1, y: y, style: .warn, clip: inner)
        }
    }
}
