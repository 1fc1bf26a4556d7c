import PodModel
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
            // The engine's verdict on a drain that leaves no capacity (a green ✓ read as "done, fine").
            s.status?.isWarning = reply.accepted && reply.capacityLost
        case .mouse(let event):
            if !s.tooSmall { handleMouse(event, &s, &effects) }
        case .key(let key):
            handleKey(key, &s, &effects)
        case .paste(let text):
            if !s.tooSmall { PromptEditing.paste(text, &s) }
        case .preview(let update):
            PreviewKeys.absorb(update, &s)
        case .requestPage, .requestDetail:
            RequestPaging.absorb(message, &s)
        case .clock(let wall):
            s.wallNow = wall
            noticeStandingClock(&s, wall: wall)
            // A status set before the first clock (the start hint) starts fading now.
            if s.status != nil && s.statusSince == nil { s.statusSince = wall }
            if let status = s.status, let since = s.statusSince,
                wall - since
                    >= status.seconds
                    ?? (status.isError ? ConsoleState.errorStatusSeconds : ConsoleState.statusSeconds)
            {
                s.status = nil
            }
        }
        if s.status != state.status { s.statusSince = s.status == nil ? nil : s.wallNow }
        switch message {
        case .key, .mouse, .paste:
            // The operator moved the cursor (or filtered): it now marks this event.
            if s.view == .events { s.eventSelected = EventsView.shown(s).dropFirst(s.eventScroll).first?.event }
        default: break
        }
        effects += RequestPaging.follow(state, &s, message)
        return (s, effects)
    }

    static func absorb(_ snapshot: Snapshot, into s: inout ConsoleState) {
        measurePace(snapshot, &s)
        s.paused = snapshot.paused
        s.speed = snapshot.speed
        if !snapshot.npus.isEmpty { s.npuCount = snapshot.npus.count }
        if let hardware = snapshot.hardware { (s.diesPerNPU, s.deviceWord) = (hardware.diesPerDevice, hardware.deviceKind) }
        if let pod = snapshot.podTopology { s.pod = pod }
        if !snapshot.npus.isEmpty {
            (s.prefillNodes, s.decodeNodes) = ([], [])
            for npu in snapshot.npus where !npu.drained && !npu.draining {
                switch npu.role {
                case .prefill: s.prefillNodes.insert(npu.node)
                case .decode, .attention: s.decodeNodes.insert(npu.node)
                case .colocated: s.prefillNodes.insert(npu.node); s.decodeNodes.insert(npu.node)
                case .expert, .spare: break
                }
            }
        }
        if let first = snapshot.experts.heat.first {
            s.layerCount = snapshot.experts.heat.count
            s.expertCount = first.count
        }
        s.inFlightCount = snapshot.inFlight.count + snapshot.recent.count
        s.eventCount = snapshot.events.count
        s.requestsInFlight = snapshot.inFlight
        s.requestsRecent = snapshot.recent
        s.memory.absorb(snapshot)
        let scenario = s.scenario
        s.memory.absorbEvents(snapshot.events, earlier: snapshot.earlierEvents ?? []) { !EventsView.isRoutine($0, scenario) }
        s.events = s.memory.keptEvents + snapshot.events
        followSelectedEvent(&s)
        s.selectedNPU = min(s.selectedNPU, max(0, s.npuCount - 1))
        s.selectedLayer = min(s.selectedLayer, max(0, s.layerCount - 1))
        s.selectedExpert = min(s.selectedExpert, max(0, s.expertCount - 1))
    }

    /// New events push the listed rows down (and the oldest leave the engine's ring): the
    /// cursor stays on the event it marked; on the newest row it stays on the newest. Before, it
    /// kept its row, so the highlight slid onto whatever event came to sit there.
    static func followSelectedEvent(_ s: inout ConsoleState) {
        guard s.eventScroll > 0 else { return }
        if let event = s.eventSelected, let row = EventsView.row(of: event, s) {
            s.eventScroll = row
        } else {
            s.eventScroll = min(s.eventScroll, max(0, EventsView.shown(s).count - 1))
        }
    }

    /// Achieved speed: simulated seconds per wall second over the last few wall seconds.
    /// A pause, a speed change or time running backwards starts a new measurement.
    static func measurePace(_ snapshot: Snapshot, _ s: inout ConsoleState) {
        guard let wall = s.wallNow else { return }
        if snapshot.paused || snapshot.paused != s.paused || snapshot.speed != s.speed
            || (s.pacingSamples.last.map { snapshot.simTime < $0.sim || wall < $0.wall } ?? false)
        {
            s.pacingSamples = []
            s.achievedSpeed = snapshot.paused ? 0 : nil
        }
        if snapshot.paused { return }
        if s.pacingSamples.last?.wall == wall { s.pacingSamples.removeLast() }
        s.pacingSamples.append(PacingSample(wall: wall, sim: snapshot.simTime))
        while s.pacingSamples.count > 2, wall - s.pacingSamples[1].wall >= ConsoleState.pacingWindowSeconds {
            s.pacingSamples.removeFirst()
        }
        if let first = s.pacingSamples.first, wall - first.wall >= 1 {
            s.achievedSpeed = (snapshot.simTime - first.sim) / (wall - first.wall)
        }
    }

    /// While its clock runs the engine publishes a snapshot several times a wall second (every
    /// 0.2 s embedded, every 0.5 s over `--connect`, idle or not), and each one moves the
    /// clock. None for a whole measuring window while running means the clock has stood that
    /// long (a lost connection, a stalled engine thread): the speed achieved over that window
    /// is 0. The header used to repeat the last measurement, "▶ 1× (≈1.0×)" beside a frozen
    /// sim clock, under "reconnecting…" or with the engine stuck. The next snapshot measures
    /// afresh from the samples kept.
    static func noticeStandingClock(_ s: inout ConsoleState, wall: Double) {
        guard !s.paused, let last = s.pacingSamples.last, wall - last.wall >= ConsoleState.pacingWindowSeconds else {
            return
        }
        s.achievedSpeed = 0
    }

    // MARK: keys

    static func handleKey(_ key: Key, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        if key == Key.controlC {
            quit(&s, &effects)
            return
        }
        // In raw mode Ctrl-Z reaches us as a key, not as SIGTSTP: it did nothing at all, where
        // every shell program stops on it. It suspends from anywhere, as Ctrl-C quits; a box or
        // a prompt is there as it was after `fg`.
        if key == Key.controlZ {
            // Without a job-control shell nothing could `fg` it: a console run straight by tmux
            // or a script would stop for good, its screen frozen.
            if s.canSuspend {
                effects.append(.suspend)
            } else {
                s.status = StatusLine("Ctrl-Z: not suspended (no job-control shell to resume it with fg); q quits",
                                      isError: true)
            }
            return
        }
        // Below the minimum size the screen shows only the size needed, so a key would act on
        // something the operator cannot see: at 40×12, `d y` drained node 0 and `f 3 y` failed it,
        // with no question and no reply on screen. Only q (outside a prompt) quits; the rest waits.
        if s.tooSmall {
            if key == .char("q"), s.prompt == nil { quit(&s, &effects) }
            return
        }
        if s.prompt != nil {
            PromptEditing.handle(key, &s, &effects)
            return
        }
        s.status = nil
        // `:` opens the command line from anywhere, closing the box on screen first (a preview
        // still computing is cancelled, a y/n question is answered no). Before, a box took `:`
        // as one of its keys or swallowed it, and the command typed after it ran as keys: on a
        // what-if box `:heal all` applied the previewed fault with its `a` and paused the engine
        // with its space.
        if key == .char(":") {
            closeBoxes(&s, &effects)
            s.prompt = PromptState(purpose: .command)
            return
        }
        if s.preview != nil {
            PreviewKeys.handle(key, &s, &effects)
            return
        }
        if s.showHelp {
            // Tab (or ←/→) turns the page between keys and `:` commands; anything else closes.
            if key == .tab || key == .right || key == .left || key == .char("l") || key == .char("h") {
                s.helpPage = 1 - s.helpPage
                return
            }
            s.showHelp = false
            if key == .char("q") { quit(&s, &effects) }
            return
        }
        if s.requestDetail != nil || s.eventDetail != nil {
            // A detail box closes with any key (Esc, Enter, q); q does not quit from here.
            s.requestDetail = nil
            s.eventDetail = nil
            return
        }
        if let pending = s.confirmation {
            s.confirmation = nil
            if key == .char("p") || key == .char("P") {
                PreviewKeys.start(pending.command, &s, &effects)
            } else if key == .char("y") || key == .char("Y") {
                effects.append(.send(commandLine: pending.command))
            } else {
                s.status = StatusLine("cancelled: \(pending.command)")
            }
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
        case .char("?"):
            s.showHelp = true
            s.helpPage = 0
        case .enter where s.view == .requests:
            if let row = RequestsView.selected(s) { s.requestDetail = row.id }
        case .enter where s.view == .events:
            let shown = EventsView.shown(s)
            if s.eventScroll < shown.count { s.eventDetail = shown[s.eventScroll].event }
        case .char("w") where s.view == .latency:
            let all = LatencyWindow.allCases
            s.latencyWindow = all[(all.firstIndex(of: s.latencyWindow)! + 1) % all.count]
        case .char("v") where s.view == .events:
            let all = EventLevel.allCases
            s.eventLevel = all[(all.firstIndex(of: s.eventLevel)! + 1) % all.count]
            s.eventScroll = 0
        case .char("S") where s.view == .requests:
            s.requestSortReversed.toggle()
        case .char(":"): s.prompt = PromptState(purpose: .command)
        case .char("/"):
            switch s.view {
            case .events: s.prompt = PromptState(purpose: .eventFilter, text: s.eventFilter)
            case .requests: s.prompt = PromptState(purpose: .requestFilter, text: s.requestFilter)
            case .experts: s.prompt = PromptState(purpose: .expertFilter, text: s.expertFilter)
            case .pod, .kvCache, .latency: s.prompt = PromptState(purpose: .noList)
            }
        case .escape:
            switch s.view {
            case .events:
                // As the prompt's Esc does: the cursor's row in the filtered list is some other
                // event in the whole one.
                if !s.eventFilter.isEmpty { s.eventScroll = 0 }
                s.eventFilter = ""
            case .requests: s.requestFilter = ""
            case .experts: s.expertFilter = ""
            case .pod, .kvCache, .latency: break
            }
        case .char(" "):
            effects.append(.send(commandLine: s.paused ? "resume" : "pause"))
            s.paused.toggle()
            // The pace follows the optimistic toggle: otherwise the next running snapshot matched
            // s.paused, kept the paused 0 and the header said "▶ 1× (≈0.0×)" for a second.
            s.pacingSamples = []
            s.achievedSpeed = s.paused ? 0 : nil
        case .char("+"), .char("="): changeSpeed(faster: true, &s, &effects)
        case .char("-"), .char("_"): changeSpeed(faster: false, &s, &effects)
        case .char("t"): s.themeIndex += 1
        case .char("s") where s.view == .requests:
            let all = RequestSortKey.allCases
            s.requestSort = all[(all.firstIndex(of: s.requestSort)! + 1) % all.count]
            s.requestSortReversed = false
        case .char("d"): nodeCommand("drain", &s, &effects)
        case .char("u"): nodeCommand("undrain", &s, &effects)
        case .char("f"): s.faultMenu = FaultMenu(npu: s.selectedNPU, diesPerNPU: s.diesPerNPU, deviceWord: s.deviceWord)
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
        case .pageUp: move(dx: 0, dy: -pageRows(s), &s)
        case .pageDown: move(dx: 0, dy: pageRows(s), &s)
        case .home: scroll(to: 0, &s)
        case .end:
            if s.view == .requests { s.requestScroll = max(0, RequestsView.rowCount(s) - 1) }
            if s.view == .events { s.eventScroll = max(0, EventsView.shown(s).count - 1) }
        default:
            // A key that does nothing here says so and where it acts (as `/` in a view without
            // a list does): `w` in the Pod view, `s` outside Requests or a stray letter were
            // dropped without a sign, and the operator could not tell a dead key from a slow one.
            if let hint = unusedKeyHint(key) { s.status = StatusLine(hint, isError: true) }
        }
    }

    /// What to say about a key that does nothing in the current view: where it acts, or that
    /// no key is bound to it. `nil` for keys that are inert by nature (Esc, Tab, Backspace).
    static func unusedKeyHint(_ key: Key) -> String? {
        switch key {
        case .enter: return "Enter opens a request in Requests (5) or an event in Events (6)"
        case .char("w"): return "w changes the histogram window in Latency (4)"
        case .char("v"): return "v changes the level shown in Events (6)"
        case .char("s"), .char("S"): return "s sorts, S reverses, in Requests (5)"
        case .char(let c) where !c.isWhitespace && !(c.asciiValue.map { $0 < 32 || $0 == 127 } ?? false):
            return "no key \(c) here · ? lists the keys"
        default: return nil
        }
    }

    /// True while a box sits over the view (help, a detail, a y/n question, the fault menu, a
    /// what-if): keys and the mouse act on the box, never on the view under it.
    static func boxOpen(_ s: ConsoleState) -> Bool {
        s.showHelp || s.requestDetail != nil || s.eventDetail != nil || s.confirmation != nil || s.faultMenu != nil
            || s.preview != nil
    }

    /// Closes whatever box is open, as its own dismissal would: a y/n question is cancelled
    /// (and says so), a what-if still computing is cancelled (its forks stop).
    static func closeBoxes(_ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        if s.preview != nil { PreviewKeys.handle(.escape, &s, &effects) }
        if let pending = s.confirmation {
            s.confirmation = nil
            s.status = StatusLine("cancelled: \(pending.command)")
        }
        s.showHelp = false
        s.requestDetail = nil
        s.eventDetail = nil
        s.faultMenu = nil
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
        let command = "\(verb) node \(s.selectedNode)"
        if verb == "drain" {
            // The last node of a side: `y` leaves nothing to serve, and every arrival after it is
            // rejected. The question said only "drain node 0?" on a one-node GPU cluster.
            let node = s.selectedNode
            let last = s.prefillNodes == [node] || s.decodeNodes == [node]
            confirm(command, &s, &effects,
                    question: last ? "\(command)? no capacity left: new requests rejected" : nil)
        } else {
            effects.append(.send(commandLine: command))
        }
    }

    /// Sends a destructive command only after `y` (unless confirmations are switched off).
    static func confirm(_ command: String, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect],
                        question: String? = nil) {
        if s.confirmDestructive {
            s.confirmation = Confirmation(question: question ?? "\(command)?", command: command)
        } else {
            effects.append(.send(commandLine: command))
        }
    }

    static func changeSpeed(faster: Bool, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        let steps = speedSteps
        // The requested speed changes here, before any snapshot carries it: ``measurePace`` would
        // see the first snapshot at the new speed as no change and keep the samples taken at
        // the old one ("▶ 0.1× (≈448×)" after `-` from max). As space does, measure afresh.
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
                s.pacingSamples = []
                s.achievedSpeed = nil
                effects.append(.send(commandLine: "speed \(formatSpeed(next!))"))
                return
            }
            next = steps.last { $0 < current * 0.999999 } ?? steps.first
        }
        s.speed = next
        s.pacingSamples = []
        s.achievedSpeed = nil
        effects.append(.send(commandLine: next.map { "speed \(formatSpeed($0))" } ?? "speed max"))
    }

    /// "0.1", "2", "1000": the shortest form the command language accepts, as the engine writes
    /// numbers back (it had its own copy here, whose `Int(_:)` trapped on a speed past Int's range).
    public static func formatSpeed(_ speed: Double) -> String { OperatorCommand.format(speed) }

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
        case .char("p"):
            PreviewKeys.start(menu.items[menu.highlighted].command, &s, &effects)
            return
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
        confirm(menu.items[index].command, &s, &effects)
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
            s.requestScroll = min(max(s.requestScroll + dy, 0), max(0, RequestsView.rowCount(s) - 1))
        case .events:
            // Bounded by the rows listed, not the events held: folds and filters list fewer, and
            // the cursor went on below the last row unseen (End, then ↑ did nothing for a while,
            // and Enter opened nothing).
            s.eventScroll = min(max(s.eventScroll + dy, 0), max(0, EventsView.shown(s).count - 1))
        case .kvCache, .latency: break
        }
    }

    /// PgUp/PgDn: a screenful of the Requests table (its top panel), ten rows elsewhere.
    static func pageRows(_ s: ConsoleState) -> Int {
        s.view == .requests ? max(1, (s.height - 4) * 3 / 5 - 3) : 10
    }

    static func scroll(to row: Int, _ s: inout ConsoleState) {
        if s.view == .requests { s.requestScroll = row }
        if s.view == .events { s.eventScroll = row }
    }

    // MARK: mouse

    static func handleMouse(_ event: MouseEvent, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        switch event {
        case .click(let x, let y):
            // A click closes the box on screen (a what-if as Esc does); it never also lands on
            // the view under it (a click on the tab row switched views under a what-if).
            if boxOpen(s) {
                closeBoxes(&s, &effects)
                return
            }
            if y == ScreenLayout.tabRow, let view = ScreenLayout.tab(atX: x) {
                // A `/` filter belongs to its view's list: a click on another tab keeps it, as
                // Enter does, and closes the prompt. Left open, "/dp█ filters as you type" stood
                // under the Events view while the letters typed next filtered Requests, unseen.
                if view != s.view, let prompt = s.prompt, prompt.purpose != .command {
                    s.prompt = nil
                    PromptEditing.submit(prompt, &s, &effects)
                }
                s.view = view
            } else if s.view == .pod,
                let npu = PodLayout(width: s.width, height: s.height).npu(atX: x, y: y), npu < s.npuCount
            {
                s.selectedNPU = npu
            }
        // The wheel scrolls the view, so not while a box covers it.
        case .wheelUp: if !boxOpen(s) { move(dx: 0, dy: -3, &s) }
        case .wheelDown: if !boxOpen(s) { move(dx: 0, dy: 3, &s) }
        }
    }
}
