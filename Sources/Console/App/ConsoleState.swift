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

/// Which in-flight requests come first in the Requests view (`s` cycles).
public enum RequestSortKey: String, Sendable, CaseIterable {
    case age, stage, tokens
}

/// The one-line editor opened by `:` (commands) or `/` (event filter).
public struct PromptState: Sendable, Equatable {
    public enum Purpose: Sendable, Equatable { case command, eventFilter }
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
    public init(_ text: String, isError: Bool = false) {
        self.text = text
        self.isError = isError
    }
}

/// The fault menu opened by `f`, for the NPU selected in the Pod view.
public struct FaultMenu: Sendable, Equatable {
    public var npu: Int
    public var highlighted = 0
    public init(npu: Int) { self.npu = npu }

    /// The commands offered, in order (interfaces.md operator language).
    public var items: [(label: String, command: String)] {
        let die = npu * 2  // Ascend 910C: two dies per NPU, die ids 2n and 2n+1
        let node = npu / 8
        return [
            ("fail die \(die)", "fault die \(die)"),
            ("fail NPU \(npu)", "fault npu \(npu)"),
            ("fail node \(node)", "fault node \(node)"),
            ("straggler die \(die) (slowdown 2×)", "fault straggler die \(die) slowdown 2"),
            ("HBM error on die \(die)", "fault hbm die \(die)"),
            ("network glitch", "fault glitch"),
        ]
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
    public var eventFilter = ""

    public var prompt: PromptState?
    public var history: [String] = []
    public var status: StatusLine?
    public var showHelp = false
    public var faultMenu: FaultMenu?
    public var themeIndex = 0
    public var quitting = false
    /// Shown in the help screen so operators know where the console writes.
    public var logPath = ""

    /// Facts copied from the newest snapshot that key handling needs (pause, speed, bounds).
    public var paused = false
    public var speed: Double? = 1
    public var npuCount = 384
    public var layerCount = 58
    public var expertCount = 256
    public var inFlightCount = 0
    public var eventCount = 0

    public static let npusPerNode = 8
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
