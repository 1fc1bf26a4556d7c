import PodModel
import ServingEngine

/// What an NPU cell means at a glance (issue 13 item 1): one glyph per state, the same in
/// the grid, the node markers, the legend and the detail panel, and a load colour that is
/// calm in the healthy steady state.
enum NPUState: Equatable {
    case dead, slow, hbm, link, drained, draining, normal

    /// The glyph used everywhere for this state (`nil`: the role letter).
    var glyph: Character? {
        switch self {
        case .dead: "X"
        case .slow: "↓"
        case .hbm: "#"
        case .link: "≠"
        case .drained: "⊘"
        case .draining: "~"
        case .normal: nil
        }
    }

    var label: String {
        switch self {
        case .dead: "dead"
        case .slow: "straggler (slow)"
        case .hbm: "HBM-masked"
        case .link: "link down"
        case .drained: "drained"
        case .draining: "draining"
        case .normal: "in service"
        }
    }

    var style: Style {
        switch self {
        case .dead: Style(fg: .bad, bold: true)
        case .slow, .hbm, .link: Style(fg: .warn, bold: true)
        case .drained: .dim
        case .draining: .warn
        case .normal: .text
        }
    }

    /// The state a fault's effect puts a chip in.
    init(_ effect: FaultEffect) {
        switch effect {
        case .dead: self = .dead
        case .slow: self = .slow
        case .hbm: self = .hbm
        case .link: self = .link
        }
    }

    /// Worst first: the node marker shows the worst state among the node's NPUs.
    static let severityOrder: [NPUState] = [.dead, .hbm, .slow, .link, .drained, .draining]

    /// The legend of the state glyphs, in the words used in the detail panel.
    static let legend = "X dead  ↓ slow  # HBM  ≠ link  ⊘ drained  ~ draining"
}

/// Faults of a snapshot per NPU, from the active faults' effects and chips, or (from an engine
/// that does not send them) their command lines ("fault npu 163", "fault link 10-200", …).
/// An NPU the engine marks faulted without a recognised command counts as dead.
struct FaultMap {
    var byNPU: [Int: NPUState] = [:]
    /// The active fault behind each NPU's state (when the engine's faulted flag alone says so,
    /// none): what the detail panel dates a dead NPU by.
    var cause: [Int: FaultStatus] = [:]

    init(_ s: Snapshot) {
        let perNode = ConsoleState.npusPerNode
        // Die D is on NPU D / dies-per-chip of the deployment's hardware: 2 on an Ascend 910C, 1 on
        // a GPU, where "fault straggler die 3" is GPU 3 (taken as 2 always, it marked GPU 1).
        let diesPerNPU = max(1, s.hardware?.diesPerDevice ?? 2)
        for fault in s.activeFaults {
            func mark(_ npu: Int, _ state: NPUState) { self.mark(npu, state, fault) }
            // The engine says which chips and how (``FaultStatus/effect``); an engine that does not
            // (an older `xds serve`) is read from its command words below.
            if let effect = fault.effect, let chips = fault.chips {
                for npu in chips { mark(npu, NPUState(effect)) }
                continue
            }
            let head = fault.description.split(separator: "·").first.map(String.init) ?? ""
            let words = head.split(separator: " ").map { $0.lowercased() }
            func number(after word: String) -> Int? {
                guard let i = words.firstIndex(of: word), i + 1 < words.count else { return nil }
                return Int(words[i + 1])
            }
            // A straggler is listed by the engine's words, "straggler GPU 3 (2× slower)" on a
            // one-die GPU (where die D is GPU D), "straggler die 74 (…)" on Ascend.
            if words.contains("straggler"), let die = number(after: "die") ?? number(after: "gpu") {
                mark(die / diesPerNPU, .slow)
            } else if words.contains("hbm"), let die = number(after: "die") {
                mark(die / diesPerNPU, .hbm)
            } else if let i = words.firstIndex(of: "link"), i + 1 < words.count {
                for end in words[i + 1].split(separator: "-").compactMap({ Int($0) }) { mark(end, .link) }
            } else if words.first == "fault", let npu = number(after: "npu") {
                mark(npu, .dead)
            } else if words.first == "fault", let die = number(after: "die") {
                mark(die / diesPerNPU, .dead)
            } else if words.first == "fault", let node = number(after: "node") {
                for npu in (node * perNode)..<((node + 1) * perNode) { mark(npu, .dead) }
            }
        }
        for npu in s.npus where npu.faulted && byNPU[npu.id] == nil { byNPU[npu.id] = .dead }
    }

    private mutating func mark(_ npu: Int, _ state: NPUState, _ fault: FaultStatus) {
        let current = byNPU[npu]
        let rank = { (x: NPUState) in NPUState.severityOrder.firstIndex(of: x) ?? 99 }
        if current == nil || rank(state) < rank(current!) { (byNPU[npu], cause[npu]) = (state, fault) }
    }

    /// The worst state among `chips` (faults before drains), nil when all are normal: what a
    /// node's words show (the NPU detail's node line, the node table).
    func worst(of chips: some Sequence<NPUStatus>, _ s: Snapshot) -> NPUState? {
        let states = chips.map { state(of: $0, s) }
        return NPUState.severityOrder.first(where: states.contains)
    }

    /// The NPU's state: its fault if any, otherwise its node's drain state.
    func state(of npu: NPUStatus, _ s: Snapshot) -> NPUState {
        if let fault = byNPU[npu.id] { return fault }
        if s.drainedNodes.contains(npu.node) { return .drained }
        if s.drainingNodes.contains(npu.node) || npu.draining { return .draining }
        return .normal
    }
}

/// The load an NPU is judged by: what limits it now (issue 13 item 1). Decode and attention
/// dies run every step by design, so their busy share is always near 100 % and says nothing;
/// what fills up there is the KV cache. The expert dies of MoE–attention disaggregation
/// (xdeepserve-ma) also run every step (100 % busy at 1 req/s, so the whole expert half of the
/// pod was red): what limits them is how much of the MoE work lands on them, their MoE load
/// (× the mean die), judged by the Experts view's thresholds. Colocated replicas (a GPU
/// cluster's PD-colocated TEs) batch continuously too: a replica steps whenever any request is in
/// flight, so one GPU serving 4 requests at 0.13 req/s was 100 % busy and drawn red "crit" (its
/// detail's util bar red beside "node 0 … util 16%") with the SLO met and room for many more.
/// What fills up there is the KV cache, as on a decode die: they are judged by it.
///
/// Prefill is judged by its TE's headroom: the share of the TE's DP groups with a prompt now
/// (queued or prefilling). Its busy share is no guide (README): a TE steps whenever any one
/// of its groups has a prompt, so at 40 requests/s, about a quarter of the default pod's
/// capacity, 48 of its 128 prefill NPUs were ≥ 90 % busy and drawn red "crit", the red of dead
/// hardware, while about 10 % of the groups were prefilling. A TE is saturated (red) when
/// (almost) every group holds a prompt, so a new prompt waits.
enum NPULoad {
    enum Limit: String { case busy, kv = "KV", moe = "MoE load", groups = "groups with a prompt" }

    static func limit(_ role: NPURole) -> Limit {
        switch role {
        case .decode, .attention, .colocated: .kv
        case .expert: .moe
        case .prefill: .groups
        default: .busy
        }
    }

    /// Each prefill TE's share of DP groups holding a prompt, by TE name, from its NPUs' prompt
    /// counts (an NPU's count is of its groups: one group per NPU pair on the default pod; an NPU
    /// of several groups counts them all as holding one when any does).
    struct GroupShares {
        var byTE: [String: (busy: Int, groups: Int)] = [:]

        init(_ s: Snapshot) {
            var groups: [String: Set<Int>] = [:], busy: [String: Set<Int>] = [:]
            for npu in s.npus where npu.role == .prefill && !npu.instance.isEmpty {
                groups[npu.instance, default: []].formUnion(npu.dpGroups)
                if npu.requestsInFlight > 0 { busy[npu.instance, default: []].formUnion(npu.dpGroups) }
            }
            for (te, all) in groups { byTE[te] = (busy[te]?.count ?? 0, all.count) }
        }

        /// 0…1; 0 for an NPU of no TE or no groups.
        func share(_ npu: NPUStatus) -> Double {
            guard let te = byTE[npu.instance], te.groups > 0 else { return 0 }
            return Double(te.busy) / Double(te.groups)
        }
    }

    static func value(_ npu: NPUStatus, _ shares: GroupShares) -> Double {
        let v: Double =
            switch limit(npu.role) {
            case .kv: npu.kvUsage
            case .groups: shares.share(npu)
            case .busy, .moe: npu.utilization
            }
        return v.isFinite ? min(max(v, 0), 1) : 0
    }

    /// Band thresholds: below `idle` the NPU is idle, below `high` healthy, below `critical` high.
    static let idle = 0.05, high = 0.70, critical = 0.90

    enum Band: CaseIterable { case idle, ok, high, critical }

    /// An NPU's band: idle only when it does (almost) no work; otherwise by its limit, so a
    /// decode die that is busy with an empty KV cache is healthy, not idle and not red.
    static func band(of npu: NPUStatus, _ shares: GroupShares) -> Band {
        let busy = npu.utilization.isFinite ? npu.utilization : 0
        switch limit(npu.role) {
        case .moe:
            let load = npu.expertLoad.isFinite ? npu.expertLoad : 0
            if busy < idle { return .idle }
            return load >= ExpertsView.imbalanceAlarm ? .critical : load >= ExpertsView.imbalanceWarn ? .high : .ok
        case .groups:
            // A TE with no prompt anywhere is idle, whatever its last interval's busy share.
            return band(value(npu, shares))
        case .busy, .kv:
            if busy < idle && value(npu, shares) < idle { return .idle }
            return band(max(value(npu, shares), idle))
        }
    }

    static func band(_ v: Double) -> Band {
        v < idle ? .idle : v < high ? .ok : v < critical ? .high : .critical
    }

    /// Theme roles that every theme keeps readable on its own background (no navy on black).
    static func style(_ band: Band) -> Style {
        switch band {
        case .idle: .dim
        case .ok: Style(fg: .good)
        case .high: Style(fg: .warn, bold: true)
        case .critical: Style(fg: .bad, bold: true)
        }
    }

    /// The Pod legend's key of a band. Idle is no percentage: a die is idle when it does (almost)
    /// no work, and a busy decode die under 5 % KV is drawn green ("<70% ok"), so the grey key
    /// "<5% idle" said such a die was grey.
    static func label(_ band: Band) -> String {
        switch band {
        case .idle: "idle"
        case .ok: "<70% ok"
        case .high: "<90% high"
        case .critical: "≥90% crit"
        }
    }

    /// What the colour of each role on the grid measures, roles sharing a measure together:
    /// short for the title ("prefill busy, decode KV held"), long for the legend ("prefill: busy
    /// share · decode: KV held"). A chip's KV is the share of its groups' blocks its requests
    /// hold: the snapshot has no reserve per chip, and the Instances table beside the grid shows
    /// a TE's held + reserved, so the word says which ("KV" alone read as the same figure). Only
    /// the roles present: xdeepserve-ma's pod holds attention and expert dies (its prefill is
    /// outside), a GPU cluster colocated replicas.
    static func basis(of roles: Set<NPURole>, long: Bool) -> String {
        var groups: [(measure: Limit, roles: [NPURole])] = []
        for role in NPURole.allCases where role != .spare && roles.contains(role) {
            if let i = groups.firstIndex(where: { $0.measure == limit(role) }) {
                groups[i].roles.append(role)
            } else {
                groups.append((limit(role), [role]))
            }
        }
        return groups.map { group in
            let names = group.roles.map(\.rawValue).joined(separator: ", ")
            guard long else {
                let short: String =
                    switch group.measure {
                    case .busy: "busy"
                    case .kv: "KV held"
                    case .moe: "MoE load"
                    case .groups: "groups busy"
                    }
                return names + " " + short
            }
            let measure: String =
                switch group.measure {
                case .busy: "busy share"
                case .groups: "share of its TE's DP groups with a prompt"
                case .kv: "KV held"
                case .moe: "MoE load, high ≥\(Format.fixed(ExpertsView.imbalanceWarn, 0))×, crit ≥\(Format.fixed(ExpertsView.imbalanceAlarm, 0))× mean"
                }
            return names + ": " + measure
        }.joined(separator: long ? " · " : ", ")
    }

    /// Without colour (the mono theme: `NO_COLOR`, a terminal without colours) a band has its
    /// own glyph, as every state must: idle the role letter in lower case, ok the letter, high
    /// `^`, critical `*` (in colour the letter's colour says it). Before, the four bands differed
    /// only by attribute and the legend drew them as four identical swatches, `#` under
    /// `LANG=C`, the HBM fault's glyph. None of these is a state glyph, a role letter or, in
    /// ASCII, the stand-in of another glyph the grid box draws (`+` is a box corner there).
    static func monoGlyph(_ band: Band, letter: Character) -> Character {
        switch band {
        case .idle: Character(letter.lowercased())
        case .ok: letter
        case .high: "^"
        case .critical: "*"
        }
    }

    /// The role letters of `roles` in the grid's legend order (no spare: it has no load).
    static func letters(of roles: Set<NPURole>) -> String {
        String(NPURole.allCases.filter { $0 != .spare && roles.contains($0) }.map(Format.roleLetter))
    }

    /// The band swatches of a legend: `■` in the band's colour; without colour, the glyphs the
    /// grid draws for the band (``monoGlyph(_:letter:)``) for the role letters `letters`
    /// ("pde" idle, "PDE" ok, "^" high, "*" critical).
    static func swatch(_ band: Band, monochrome: Bool, letters: String) -> String {
        guard monochrome else { return "■" }
        switch band {
        case .idle, .ok: return String(letters.map { monoGlyph(band, letter: $0) })
        case .high, .critical: return String(monoGlyph(band, letter: "P"))
        }
    }

    /// The band's range of the value alone ("<5%" for idle): what the KV strip's groups, coloured
    /// by their KV only, are keyed by.
    static func threshold(_ band: Band) -> String {
        switch band {
        case .idle: "<5%"
        case .ok: "<70%"
        case .high: "<90%"
        case .critical: "≥90%"
        }
    }

    /// Draws "load ■idle ■<70% ok ■<90% high ■≥90% crit" (without colour "load pde idle
    /// PDE <70% ok ^ <90% high * ≥90% crit") and returns the next x.
    @discardableResult
    static func drawLegend(
        _ b: inout CellBuffer, x: Int, y: Int, clip: Rect, monochrome: Bool = false, letters: String = "PDAEC"
    ) -> Int {
        var x = b.put("load ", x: x, y: y, style: .dim, clip: clip)
        for band in Band.allCases {
            x = b.put(swatch(band, monochrome: monochrome, letters: letters), x: x, y: y, style: style(band), clip: clip)
            x = b.put((monochrome ? " " : "") + label(band) + " ", x: x, y: y, style: .dim, clip: clip)
        }
        return x
    }
}

extension Snapshot {
    /// Whether anything is known of the engine: a console attached to a server that never
    /// answered has an empty snapshot (no pod, no names), whose zeros are no measurements.
    var hasData: Bool { !npus.isEmpty || !deploymentName.isEmpty }

    /// The deployment's hardware profile (dies per chip for fault menus, titles and group sizes),
    /// nil for a name this build does not know (a newer server): views then claim nothing.
    var hardware: HardwareProfile? { try? HardwareProfile.named(hardwareName) }

    /// Whether the model served is a dense one (no experts, nothing for EPLB or `r` to move);
    /// false for an MoE model and for a name this build does not know.
    var servesDenseModel: Bool { (try? ModelSpec.named(modelName))?.isMoE == false }

    /// What a device is called on this hardware ("GPU" on an A100 or H100, "NPU" on Ascend):
    /// labels say it, while the `:` language keeps `fault npu N` for every kind.
    var deviceWord: String { hardware?.deviceKind ?? "NPU" }

    /// What the KV and Experts views call one die: on a GPU of one die the die is the GPU, and
    /// "(4 dies each)" or "8 expert dies" named a part the hardware does not have. An Ascend die
    /// keeps its word (a 910C chip has two; the superpod's views count dies).
    /// The engine's texts name dies by the same rule (``HardwareProfile/dieWord``).
    var dieWord: String { hardware?.dieWord ?? "die" }
}

extension FaultStatus {
    /// The engine's description as the Faults panel and the ticker show it. The engine writes
    /// its detect and recover times to a tenth of a second, so a glitch found when the
    /// iteration in flight ended (4 ms later) and an HBM fault found by a heartbeat round at the
    /// instant it was injected both read "detected in 0.0 s", a figure that looks missing. Under
    /// a twentieth of a second the time is written from the engine's own timestamps instead: in
    /// milliseconds, or "at once" when it is zero (an HBM error the DP master reports in the
    /// heartbeat round of that instant: "at once (ECC, heartbeat)"). Longer times are kept as sent.
    var shownDescription: String {
        let isHBM = description.lowercased().hasPrefix("fault hbm")
        func exact(_ verb: String, _ part: String, at time: Double?) -> String {
            guard part.hasPrefix(verb + " in "), part.hasSuffix(" s"), let time, time.isFinite else { return part }
            let seconds = time - injectedAt
            guard seconds < 0.05 else { return part }
            if seconds < 0.0005 { return verb + " at once" + (isHBM && verb == "detected" ? " (ECC, heartbeat)" : "") }
            return verb + " in \(Int((seconds * 1000).rounded())) ms"
        }
        return description.components(separatedBy: " · ").map {
            exact("recovered", exact("detected", $0, at: detectedAt), at: recoveredAt)
        }.joined(separator: " · ")
    }
}
