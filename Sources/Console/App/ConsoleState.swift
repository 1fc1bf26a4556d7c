import PodModel
import ServingEngine

/// The console's views, in tab order; the raw value is the key that selects it.
public enum ConsoleView: Int, Sendable, CaseIterable {
    case pod = 1, experts, kvCache, latency, requests, events

    public var title: String {
        switch self {
        case .pod: "Pod"
        case .experts: "Experts"
        case .kvCache: "KV cache"
        case .latency: "Latency"
        case .requests: "Requests"
        case .events: "Events"
        }
    }
}

/// The column the Requests view sorts by (`s` cycles the columns, `S` reverses); the engine
/// sorts its whole table by the same keys (``RequestQuery``).
public typealias RequestSortKey = RequestSort

/// The lowest severity the Events view lists.
public enum EventLevel: String, Sendable, CaseIterable {
    case all = "all", warnings = "warn+", errors = "errors"

    func admits(_ severity: EngineEvent.Severity) -> Bool {
        switch self {
        case .all: true
        case .warnings: severity != .info
        case .errors: severity == .error
        }
    }
}

/// The one-line editor opened by `:` (commands) or `/` (the list filter of the current view).
///
/// While a prompt is open every printable key is text: nothing typed after `/` or `:` can
/// reach a hotkey.
public struct PromptState: Sendable, Equatable {
    public enum Purpose: Sendable, Equatable {
        case command
        /// Live filters: the view's list follows the text as it is typed.
        case eventFilter, requestFilter, expertFilter
        /// `/` in a view without a list: the prompt opens anyway (so the letters that follow
        /// are swallowed, not run as hotkeys) and says where filtering works.
        case noList
    }
    public var purpose: Purpose
    public var text = ""
    /// Position in the history while browsing with up/down; `nil` = editing a new line.
    public var historyIndex: Int?
    public init(purpose: Purpose, text: String = "") {
        self.purpose = purpose
        self.text = text
    }
}

/// The last thing the console wants the operator to read in the footer.
public struct StatusLine: Sendable, Equatable {
    public var text: String
    public var isError: Bool
    /// Accepted, but not good news (a drain that leaves nothing serving): ⚠ in the warning colour.
    public var isWarning = false
    /// How long it stays; `nil` = the default for its kind.
    public var seconds: Double?
    public init(_ text: String, isError: Bool = false, seconds: Double? = nil) {
        self.text = text
        self.isError = isError
        self.seconds = seconds
    }
}

/// One point of the pacing measurement: wall and simulated time at a tick.
public struct PacingSample: Sendable, Equatable {
    public var wall: Double
    public var sim: Double
}

/// A destructive action waiting for its one-key confirmation (`y`; anything else cancels).
public struct Confirmation: Sendable, Equatable {
    /// Names the target: "drain node 3?".
    public var question: String
    /// What is sent on `y`.
    public var command: String
    public init(question: String, command: String) {
        self.question = question
        self.command = command
    }
}

/// The fault menu opened by `f`, for the NPU selected in the Pod view.
public struct FaultMenu: Sendable, Equatable {
    public var npu: Int
    /// Dies per NPU of the deployment's hardware: NPU n's first die is `n × diesPerNPU` (2 on an
    /// Ascend 910C; 1 on a GPU, where "die 2n" would have failed another GPU).
    public var diesPerNPU: Int
    /// "NPU" or "GPU" (``Snapshot/deviceWord``), for the labels; the commands say `npu` either way.
    public var deviceWord: String
    public var highlighted = 0
    public init(npu: Int, diesPerNPU: Int = 2, deviceWord: String = "NPU") {
        self.npu = npu
        self.diesPerNPU = max(1, diesPerNPU)
        self.deviceWord = deviceWord
    }

    /// With one die per device, how the `:` commands name the device (they say `die N` for the
    /// straggler and HBM faults); nil where a die is part of a chip.
    var dieNote: String? {
        diesPerNPU > 1 ? nil : "\(deviceWord) N is die N in :fault (1 die per \(deviceWord))"
    }

    /// The commands offered, in order (interfaces.md operator language). With one die per device
    /// (a GPU) "fail die N" and "fail GPU N" fail the same device: it is offered once, as the device.
    /// There the straggler and HBM items name the device, with the die id their command takes:
    /// "straggler die 5" on an A100 cluster named a part the screen shows nowhere else.
    /// Each command is the engine's own line for it (``OperatorCommand``'s description), so the
    /// menu sends exactly what `:` would, and cannot drift from the language.
    public var items: [(label: String, command: String)] {
        let die = npu * diesPerNPU  // the NPU's first die
        let node = npu / 8
        let failDie = diesPerNPU > 1 ? [("fail die \(die)", OperatorCommand.faultDie(die))] : []
        let items: [(String, OperatorCommand)] = failDie + [
            ("fail \(deviceWord) \(npu)", .faultNPU(npu)),
            ("fail node \(node)", .faultNode(node)),
            (diesPerNPU > 1 ? "straggler die \(die) (slowdown 2×)" : "straggler \(deviceWord) \(npu), slowdown 2× (die \(die))",
             .faultStraggler(die: die, slowdown: 2)),
            (diesPerNPU > 1 ? "HBM error on die \(die)" : "HBM error on \(deviceWord) \(npu) (die \(die))", .faultHBM(die: die)),
            ("network glitch", .faultGlitch),
        ]
        return items.map { (label: $0.0, command: $0.1.description) }
    }
}

/// Everything the console remembers between frames; changed only by ``ConsoleUpdate/update(_:_:)``.
///
/// ```swift
/// var state = ConsoleState(width: 80, height: 24, capabilities: link.capabilities)
/// (state, effects) = ConsoleUpdate.update(state, .key(.char("2")))   // → Experts view
/// ```
public struct ConsoleState: Sendable, Equatable {
    public var view: ConsoleView = .pod
    public var width: Int
    public var height: Int
    public var capabilities: Set<EngineCapability>

    /// Selected NPU (Pod view); the selected node is `selectedNPU / npusPerNode`.
    public var selectedNPU = 0
    /// Selected (layer, expert) in the Experts view.
    public var selectedLayer = 0
    public var selectedExpert = 0
    /// First visible row of the Requests and Events tables.
    public var requestScroll = 0
    public var eventScroll = 0
    public var requestSort: RequestSortKey = .age
    /// `S` flips the order of the sort column (its arrow: ▲ smallest first, ▼ largest first).
    public var requestSortReversed = false
    /// Enter on a request: its id, while the detail (timeline) box is open.
    public var requestDetail: Int?
    /// Enter on an event: the event, while its box is open (not its row: rows shift down as
    /// new events arrive).
    public var eventDetail: EngineEvent?
    /// The event under the Events cursor when the operator last moved it: as new events push
    /// the rows down, the highlight stays on it (as the Requests view keeps its request), unless
    /// the cursor is on the newest row, which keeps showing the newest event.
    public var eventSelected: EngineEvent?
    /// The Latency view's histogram window (`w` cycles).
    public var latencyWindow: LatencyWindow = .oneMinute
    /// History derived from consecutive snapshots: fault outcomes, request timelines, windows.
    public var memory = ConsoleMemory()
    /// The help's page: 0 keys and panels, 1 the `:` commands (Tab switches).
    public var helpPage = 0
    public var eventFilter = ""
    /// The Events view's severity filter (`v` cycles: all, warnings and errors, errors).
    public var eventLevel: EventLevel = .all
    /// Live `/` filters of the Requests view and of the Experts view's hot list.
    public var requestFilter = ""
    public var expertFilter = ""
    /// A destructive key (`d`, a fault from the `f` menu) waiting for `y`.
    public var confirmation: Confirmation?
    /// `false` skips the one-key confirmation of destructive keys (a `--yes`-style setting).
    /// The `:` command line never asks.
    public var confirmDestructive = true
    /// The scenario the engine runs (from `--scenario`), for its name and next step in the header.
    public var scenario: Scenario?

    /// Wall clock of the newest ``ConsoleMessage/clock(wallSeconds:)``; `nil` until the first.
    public var wallNow: Double?
    /// When the current status line appeared (wall seconds); it fades after ``statusSeconds``.
    public var statusSince: Double?
    /// (wall seconds, simulated seconds) of recent ticks, for the achieved speed.
    public var pacingSamples: [PacingSample] = []
    /// Simulated seconds per wall second over the last few seconds; `nil` when unknown.
    public var achievedSpeed: Double?

    public var prompt: PromptState?
    public var history: [String] = []
    public var status: StatusLine?
    public var showHelp = false
    public var faultMenu: FaultMenu?
    /// The what-if overlay (`:preview …`, `p` at a confirmation); see PreviewOverlay.swift.
    public var preview: PreviewOverlay?
    public var themeIndex = 0
    public var quitting = false
    /// Whether a job-control shell started the console, so that a Ctrl-Z suspension can be
    /// resumed with `fg` (``JobControl/available()``); true until the app says.
    public var canSuspend = true
    /// Shown in the help screen so operators know where the console writes.
    public var logPath = ""

    /// Facts copied from the newest snapshot that key handling needs (pause, speed, bounds).
    public var paused = false
    public var speed: Double? = 1
    public var npuCount = 384
    /// Dies per NPU of the snapshot's hardware (the fault menu's die ids); 2 until one says.
    public var diesPerNPU = 2
    /// What the snapshot's hardware calls a device ("NPU", "GPU"); "NPU" until one says.
    public var deviceWord = "NPU"
    /// Nodes of the newest snapshot that take new work for a side, drained and draining ones left
    /// out: nodes with an NPU (GPU) that prefills, and one that decodes (a colocated one does both).
    /// `d` on the last of either warns that the drain leaves nothing to serve.
    public var prefillNodes: Set<Int> = []
    public var decodeNodes: Set<Int> = []
    /// The pod of the newest snapshot (``Snapshot/podTopology``); nil until one says. A preview
    /// is parsed against it, so a bad index names the pod's range as a sent command's reply does.
    public var pod: PodTopology?
    public var layerCount = 58
    public var expertCount = 256
    public var inFlightCount = 0
    /// The newest snapshot's requests (in flight, then recent), so Enter can name the selected one.
    public var requestsInFlight: [RequestStatus] = []
    public var requestsRecent: [RequestStatus] = []
    /// The newest snapshot's events (oldest first), for Enter in the Events view.
    public var events: [EngineEvent] = []
    public var eventCount = 0
    /// The link answers request-table queries (``RequestQueryLink``): the Requests view pages
    /// through every request in flight and the detail shows the engine's own times. Without it,
    /// both come from the snapshot (its oldest few hundred in flight, times seen by the console).
    public var requestQueries = false
    /// The newest window of the engine's in-flight table, and the selected request's detail.
    public var requestPage: RequestPage?
    public var requestDetailRecord: RequestDetail?
    /// Why the last request query got no answer (shown in the Requests view and the detail box).
    public var requestQueryProblem: String?
    /// The request under the cursor when the operator last moved it: as requests before it
    /// finish and the rows shift, the highlight follows that request (k9s keeps its selection).
    public var requestSelectedID: Int?

    public static let npusPerNode = 8
    /// How long a status line stays before the key hints come back (errors stay longer).
    public static let statusSeconds = 5.0
    public static let errorStatusSeconds = 10.0
    /// The window the achieved speed is measured over.
    public static let pacingWindowSeconds = 3.0
    public static let minimumWidth = 80
    public static let minimumHeight = 24

    public init(
        width: Int = 80, height: Int = 24,
        capabilities: Set<EngineCapability> = Set(EngineCapability.allCases)
    ) {
        self.width = width
        self.height = height
        self.capabilities = capabilities
    }

    public var selectedNode: Int { selectedNPU / Self.npusPerNode }
    public var nodeCount: Int { max(1, (npuCount + Self.npusPerNode - 1) / Self.npusPerNode) }
    public var tooSmall: Bool { width < Self.minimumWidth || height < Self.minimumHeight }
}
