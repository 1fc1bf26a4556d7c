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

    /// Worst first: the node marker shows the worst state among the node's NPUs.
    static let severityOrder: [NPUState] = [.dead, .hbm, .slow, .link, .drained, .draining]

    /// The legend of the state glyphs, in the words used in the detail panel.
    static let legend = "X dead  ↓ slow  # HBM  ≠ link  ⊘ drained  ~ draining"
}

/// Faults of a snapshot per NPU, derived from the active faults' command lines
/// ("fault npu 163", "fault straggler die 4 slowdown 2", "fault link 10-200", …).
/// An NPU the engine marks faulted without a recognised command counts as dead.
struct FaultMap {
    var byNPU: [Int: NPUState] = [:]

    init(_ s: Snapshot) {
        let perNode = ConsoleState.npusPerNode
        // Die D is on NPU D / dies-per-chip of the deployment's hardware: 2 on an Ascend 910C, 1 on
        // a GPU, where "fault straggler die 3" is GPU 3 (taken as 2 always, it marked GPU 1).
        let diesPerNPU = max(1, s.hardware?.diesPerDevice ?? 2)
        for fault in s.activeFaults {
            let head = fault.description.split(separator: "·").first.map(String.init) ?? ""
            let words = head.split(separator: " ").map { $0.lowercased() }
            func number(after word: String) -> Int? {
                guard let i = words.firstIndex(of: word), i + 1 < words.count else { return nil }
                return Int(words[i + 1])
            }
            if words.contains("straggler"), let die = number(after: "die") {
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

    private mutating func mark(_ npu: Int, _ state: NPUState) {
        let current = byNPU[npu]
        let rank = { (x: NPUState) in NPUState.severityOrder.firstIndex(of: x) ?? 99 }
        if current == nil || rank(state) < rank(current!) { byNPU[npu] = state }
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
/// (× the mean die), judged by the Experts view's thresholds. Prefill and colocated dies are
/// limited by compute, so their busy share is the load.
enum NPULoad {
    enum Limit: String { case busy, kv = "KV", moe = "MoE load" }

    static func limit(_ role: NPURole) -> Limit {
        switch role {
        case .decode, .attention: .kv
        case .expert: .moe
        default: .busy
        }
    }

    static func value(_ npu: NPUStatus) -> Double {
        let v = limit(npu.role) == .kv ? npu.kvUsage : npu.utilization
        return v.isFinite ? min(max(v, 0), 1) : 0
    }

    /// Band thresholds: below `idle` the NPU is idle, below `high` healthy, below `critical` high.
    static let idle = 0.05, high = 0.70, critical = 0.90

    enum Band: CaseIterable { case idle, ok, high, critical }

    /// An NPU's band: idle only when it does (almost) no work; otherwise by its limit, so a
    /// decode die that is busy with an empty KV cache is healthy, not idle and not red.
    static func band(of npu: NPUStatus) -> Band {
        let busy = npu.utilization.isFinite ? npu.utilization : 0
        if limit(npu.role) == .moe {
            let load = npu.expertLoad.isFinite ? npu.expertLoad : 0
            if busy < idle { return .idle }
            return load >= ExpertsView.imbalanceAlarm ? .critical : load >= ExpertsView.imbalanceWarn ? .high : .ok
        }
        if busy < idle && value(npu) < idle { return .idle }
        return band(max(value(npu), idle))
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

    static func label(_ band: Band) -> String {
        switch band {
        case .idle: "<5% idle"
        case .ok: "<70% ok"
        case .high: "<90% high"
        case .critical: "≥90% crit"
        }
    }

    /// What the colour of each role on the grid measures, roles sharing a measure together:
    /// short for the title ("prefill busy, decode KV"), long for the legend ("prefill: busy
    /// share · decode: KV use"). Only the roles present: xdeepserve-ma's pod holds attention and
    /// expert dies (its prefill is outside), a GPU cluster colocated replicas.
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
                return names + " " + (group.measure == .busy ? "busy" : group.measure == .kv ? "KV" : "MoE load")
            }
            let measure: String =
                switch group.measure {
                case .busy: "busy share"
                case .kv: "KV use"
                case .moe: "MoE load, high ≥\(Format.fixed(ExpertsView.imbalanceWarn, 0))×, crit ≥\(Format.fixed(ExpertsView.imbalanceAlarm, 0))× mean"
                }
            return names + ": " + measure
        }.joined(separator: long ? " · " : ", ")
    }

    /// Draws "load ■<5% idle ■<70% ok ■<90% high ■≥90% crit" and returns the next x.
    @discardableResult
    static func drawLegend(_ b: inout CellBuffer, x: Int, y: Int, clip: Rect) -> Int {
        var x = b.put("load ", x: x, y: y, style: .dim, clip: clip)
        for band in Band.allCases {
            x = b.put("■", x: x, y: y, style: style(band), clip: clip)
            x = b.put(label(band) + " ", x: x, y: y, style: .dim, clip: clip)
        }
        return x
    }
}

extension Snapshot {
    /// The deployment's hardware profile (dies per chip for fault menus, titles and group sizes),
    /// nil for a name this build does not know (a newer server): views then claim nothing.
    var hardware: HardwareProfile? { try? HardwareProfile.named(hardwareName) }
}
