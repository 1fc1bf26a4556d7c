import ServingEngine

/// The console's state machine (Elm's `update`): a pure function from a state and a
/// message to the next state and the effects to perform. No I/O happens here.
///
/// ```swift
/// let (next, effects) = ConsoleUpdate.update(state, .key(.char("d")))
/// // effects == [.send(commandLine: "drain node 0")]
/// ```
public enum ConsoleUpdate {
    /// Speed steps for `+` / `-`; beyond the last comes "max" (as fast as possible).
    public static let speedSteps: [Double] = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

    public static func update(_ state: ConsoleState, _ message: ConsoleMessage) -> (
        ConsoleState, [ConsoleEffect]
    ) {
        var s = state
        var effects: [ConsoleEffect] = []
        switch message {
        case .resize(let width, let height):
            s.width = width
            s.height = height
        case .tick(let snapshot):
            absorb(snapshot, into: &s)
        case .reply(let reply, _):
            s.status = StatusLine(reply.message, isError: !reply.accepted)
        case .mouse(let event):
            handleMouse(event, &s)
        case .key(let key):
            handleKey(key, &s, &effects)
        }
        return (s, effects)
    }

    static func absorb(_ snapshot: Snapshot, into s: inout ConsoleState) {
        s.paused = snapshot.paused
        s.speed = snapshot.speed
        if !snapshot.npus.isEmpty { s.npuCount = snapshot.npus.count }
        if let first = snapshot.experts.heat.first {
            s.layerCount = snapshot.experts.heat.count
            s.expertCount = first.count
        }
        s.inFlightCount = snapshot.inFlight.count + snapshot.recent.count
        s.eventCount = snapshot.events.count
        s.selectedNPU = min(s.selectedNPU, max(0, s.npuCount - 1))
        s.selectedLayer = min(s.selectedLayer, max(0, s.layerCount - 1))
        s.selectedExpert = min(s.selectedExpert, max(0, s.expertCount - 1))
    }

    // MARK: keys

    static func handleKey(_ key: Key, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        if key == Key.controlC {
            quit(&s, &effects)
            return
        }
        if s.prompt != nil {
            PromptEditing.handle(key, &s, &effects)
            return
        }
        s.status = nil
        if s.showHelp {
            s.showHelp = false
            if key == .char("q") { quit(&s, &effects) }
            return
        }
        if s.faultMenu != nil {
            handleFaultMenu(key, &s, &effects)
            return
        }
        switch key {
        case .char(let c) where ("1"..."6").contains(c):
            s.view = ConsoleView(rawValue: Int(String(c))!)!
        case .char("q"): quit(&s, &effects)
        case .char("?"): s.showHelp = true
        case .char(":"): s.prompt = PromptState(purpose: .command)
        case .char("/") where s.view == .events:
            s.prompt = PromptState(purpose: .eventFilter, text: s.eventFilter)
        case .escape where s.view == .events: s.eventFilter = ""
        case .char(" "):
            effects.append(.send(commandLine: s.paused ? "resume" : "pause"))
            s.paused.toggle()
        case .char("+"), .char("="): changeSpeed(faster: true, &s, &effects)
        case .char("-"), .char("_"): changeSpeed(faster: false, &s, &effects)
        case .char("t"): s.themeIndex += 1
        case .char("s") where s.view == .requests:
            let all = RequestSortKey.allCases
            s.requestSort = all[(all.firstIndex(of: s.requestSort)! + 1) % all.count]
        case .char("d"): nodeCommand("drain", &s, &effects)
        case .char("u"): nodeCommand("undrain", &s, &effects)
        case .char("f"): s.faultMenu = FaultMenu(npu: s.selectedNPU)
        case .char("r"):
            if s.capabilities.contains(.rebalance) {
                effects.append(.send(commandLine: "rebalance"))
            } else {
                s.status = StatusLine("rebalance is not available in this engine build", isError: true)
            }
        case .char("h"), .left: move(dx: -1, dy: 0, &s)
        case .char("l"), .right: move(dx: 1, dy: 0, &s)
        case .char("k"), .up: move(dx: 0, dy: -1, &s)
        case .char("j"), .down: move(dx: 0, dy: 1, &s)
        case .pageUp: move(dx: 0, dy: -10, &s)
        case .pageDown: move(dx: 0, dy: 10, &s)
        case .home: scroll(to: 0, &s)
        default: break
        }
    }

    static func quit(_ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        s.quitting = true
        effects.append(.quit)
    }

    static func nodeCommand(_ verb: String, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        guard s.capabilities.contains(.drain) else {
            s.status = StatusLine("\(verb) is not available in this engine build", isError: true)
            return
        }
        effects.append(.send(commandLine: "\(verb) node \(s.selectedNode)"))
    }

    static func changeSpeed(faster: Bool, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        let steps = speedSteps
        var next: Double?
        if faster {
            guard let current = s.speed else {
                s.status = StatusLine("already running as fast as possible")
                return
            }
            next = steps.first { $0 > current * 1.000001 }
        } else {
            guard let current = s.speed else {
                next = steps.last
                s.speed = next
                effects.append(.send(commandLine: "speed \(formatSpeed(next!))"))
                return
            }
            next = steps.last { $0 < current * 0.999999 } ?? steps.first
        }
        s.speed = next
        effects.append(.send(commandLine: next.map { "speed \(formatSpeed($0))" } ?? "speed max"))
    }

    /// "0.1", "2", "1000": the shortest form the command language accepts.
    public static func formatSpeed(_ speed: Double) -> String {
        speed == speed.rounded() ? String(Int(speed)) : String(speed)
    }

    static func handleFaultMenu(_ key: Key, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        guard var menu = s.faultMenu else { return }
        let count = menu.items.count
        var choose: Int?
        switch key {
        case .escape, .char("f"), .char("q"):
            s.faultMenu = nil
            return
        case .up, .char("k"): menu.highlighted = (menu.highlighted + count - 1) % count
        case .down, .char("j"): menu.highlighted = (menu.highlighted + 1) % count
        case .enter: choose = menu.highlighted
        case .char(let c) where ("1"..."9").contains(c): choose = Int(String(c))! - 1
        default: break
        }
        s.faultMenu = menu
        guard let index = choose, index < count else { return }
        guard s.capabilities.contains(.faults) else {
            s.status = StatusLine("fault injection is not available in this engine build", isError: true)
            return
        }
        s.faultMenu = nil
        effects.append(.send(commandLine: menu.items[index].command))
    }

    // MARK: selection and scrolling

    static func move(dx: Int, dy: Int, _ s: inout ConsoleState) {
        switch s.view {
        case .pod:
            let (gx, gy) = PodLayout.gridPosition(ofNPU: s.selectedNPU)
            let maxColumns = PodLayout.gridColumns(nodeCount: s.nodeCount)
            let nx = min(max(gx + dx, 0), maxColumns - 1)
            let ny = min(max(gy + dy.signum() * min(abs(dy), 1), 0), PodLayout.nodesPerColumn - 1)
            let npu = PodLayout.npu(atGridX: nx, gridY: ny)
            if npu < s.npuCount { s.selectedNPU = npu }
        case .experts:
            s.selectedExpert = min(max(s.selectedExpert + dx, 0), max(0, s.expertCount - 1))
            s.selectedLayer = min(max(s.selectedLayer + dy, 0), max(0, s.layerCount - 1))
        case .requests:
            s.requestScroll = min(max(s.requestScroll + dy, 0), max(0, s.inFlightCount - 1))
        case .events:
            s.eventScroll = min(max(s.eventScroll + dy, 0), max(0, s.eventCount - 1))
        case .kvCache, .latency: break
        }
    }

    static func scroll(to row: Int, _ s: inout ConsoleState) {
        if s.view == .requests { s.requestScroll = row }
        if s.view == .events { s.eventScroll = row }
    }

    // MARK: mouse

    static func handleMouse(_ event: MouseEvent, _ s: inout ConsoleState) {
        switch event {
        case .click(let x, let y):
            if s.showHelp || s.faultMenu != nil {
                s.showHelp = false
                return
            }
            if y == ScreenLayout.tabRow, let view = ScreenLayout.tab(atX: x) {
                s.view = view
            } else if s.view == .pod,
                let npu = PodLayout(width: s.width, height: s.height).npu(atX: x, y: y), npu < s.npuCount
            {
                s.selectedNPU = npu
            }
        case .wheelUp: move(dx: 0, dy: -3, &s)
        case .wheelDown: move(dx: 0, dy: 3, &s)
        }
    }
}
