import ServingEngine

/// A key as the console understands it, decoded by the terminal backend.
public enum Key: Sendable, Hashable {
    case char(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backspace

    /// Ctrl-C arrives as a character in raw mode (swift-notes.md 1.3.6).
    public static let controlC = Key.char("\u{03}")
    /// Ctrl-Z, also a character in raw mode: the terminal sends no SIGTSTP for it.
    public static let controlZ = Key.char("\u{1A}")
}

public enum MouseEvent: Sendable, Hashable {
    case click(x: Int, y: Int)
    case wheelUp(x: Int, y: Int)
    case wheelDown(x: Int, y: Int)
}

/// Everything that can change the console's state.
public enum ConsoleMessage: Sendable, Equatable {
    case key(Key)
    /// Text pasted in one piece (bracketed paste): never keys. Into an open prompt goes its first
    /// line; with no prompt open it is ignored (see ``PromptEditing/paste(_:_:)``).
    case paste(String)
    case mouse(MouseEvent)
    case resize(width: Int, height: Int)
    /// A new snapshot (or the 1 s idle tick with the same one).
    case tick(Snapshot)
    /// What the engine answered to a command line the console sent.
    case reply(CommandReply, commandLine: String)
    /// The wall clock (monotonic seconds), sent by the app loop on every turn: status lines
    /// fade with it and the achieved speed is measured against it.
    case clock(wallSeconds: Double)
    /// Progress or the answer of a preview computing off the UI thread.
    case preview(PreviewUpdate)
    /// The engine's answer to a request-table query (``ConsoleEffect/queryRequests(_:)``).
    case requestPage(Result<RequestPage, RequestQueryRefusal>)
    /// The engine's answer to ``ConsoleEffect/queryRequestDetail(id:)``.
    case requestDetail(id: Int, Result<RequestDetail, RequestQueryRefusal>)
}

/// What ``ConsoleUpdate/update(_:_:)`` asks the outside world to do; the app loop performs
/// it, so the update stays pure.
public enum ConsoleEffect: Sendable, Equatable {
    case send(commandLine: String)
    /// Compute `preview …` off the UI thread; progress and answer come back as ``ConsoleMessage/preview(_:)``.
    case preview(commandLine: String)
    /// Stop computing that preview (Esc while it computes): nobody will read its answer.
    case cancelPreview(commandLine: String)
    /// Ask the engine for a window of its request table, off the UI thread (RequestQueryRunner).
    case queryRequests(RequestQuery)
    /// Ask the engine for one request's recorded timeline, off the UI thread.
    case queryRequestDetail(id: Int)
    /// Hand the terminal back to the shell and stop until `fg` (SIGCONT), as a SIGTSTP does.
    case suspend
    case quit
}
