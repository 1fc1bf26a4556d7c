import Foundation
import NIOCore
import ServingEngine
import Synchronization

/// An ``EngineLink`` to a running `xds serve`: snapshots from the admin event stream
/// (`GET /admin/events`, server-sent events), commands through `POST /admin/commands`.
///
/// When the stream drops, the last snapshot stays on screen marked "reconnecting…" (its
/// `linkStatus`) and the link retries every second. HTTP goes through the link's own small client
/// on SwiftNIO (``HTTPClient``), not URLSession: see RemoteEngineLink+HTTPClient.swift for why.
///
/// ```swift
/// let link = RemoteEngineLink(baseURL: URL(string: "http://127.0.0.1:8000")!, token: "T")
/// link.start()
/// ConsoleApp.run(link: link)
/// link.stop()
/// ```
public final class RemoteEngineLink: EngineLink, @unchecked Sendable {
    public let baseURL: URL
    let token: String
    let http: HTTPClient
    public let capabilities: Set<EngineCapability> = [.drain, .speed, .rebalance]

    /// How long a command may wait for its answer; the event stream may stay silent this long
    /// before the link calls it dead (the server sends a snapshot every fraction of a second).
    static let commandTimeout = TimeAmount.seconds(10)
    static let streamIdleTimeout = TimeAmount.seconds(30)

    private struct State {
        var snapshot = Snapshot()
        var events = ServerSentEventReader()
        var connected = false
        /// A snapshot has come from the server at least once.
        var everReceived = false
        var stopped = false
        /// Which connection of the stream is current: a late callback from an earlier one is ignored.
        var generation = 0
        var channel: (any Channel)?
    }
    private let state = Mutex(State())
    /// The largest event the stream may send (``ServerSentEventReader/largestEvent``); a bigger
    /// one ends the connection with a message instead of growing the console's memory.
    let largestEvent: Int

    public init(baseURL: URL, token: String, largestEvent: Int = 64 << 20) {
        self.baseURL = baseURL
        self.token = token
        self.largestEvent = largestEvent
        self.http = HTTPClient(token: token)
        state.withLock { $0.snapshot.linkStatus = "connecting to \(baseURL.absoluteString)…" }
    }

    public func start() {
        let thread = Thread { [self] in
            while !state.withLock({ $0.stopped }) {
                if !state.withLock({ $0.connected }) { connect() }
                Thread.sleep(forTimeInterval: 1)
            }
        }
        thread.name = "xds-remote-link"
        thread.start()
    }

    public func stop() {
        let channel = state.withLock { state in
            state.stopped = true
            defer { state.channel = nil }
            return state.channel
        }
        channel?.close(promise: nil)
    }

    public func latestSnapshot() -> Snapshot { state.withLock { $0.snapshot } }

    public func send(commandLine: String) -> CommandReply {
        // Against the served pod as the newest snapshot pictures it, so a bad index names its
        // range ("the pod has nodes 0…47") as the server's own parse would.
        if case .failure(let error) = OperatorCommand.parse(commandLine, on: latestSnapshot().podTopology) {
            return CommandReply(accepted: false, message: error.message)
        }
        let body = (try? JSONOutput.encoder().encode(AdminCommandBody(command: commandLine))).map { [UInt8]($0) } ?? []
        switch http.exchange(baseURL.appendingPathComponent("admin/commands"), method: .POST, json: body,
                             timeout: Self.commandTimeout) {
        case .failure(let failure):
            return CommandReply(accepted: false, message: "not connected to \(baseURL.absoluteString): \(failure.explanation)")
        case .success(let answer):
            let noAnswer = CommandReply(accepted: false, message: "no answer from \(baseURL.absoluteString)")
            guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any] else {
                return noAnswer
            }
            if let accepted = object["accepted"] as? Bool {
                return CommandReply(accepted: accepted, message: object["message"] as? String ?? "",
                                    capacityLost: accepted && object["capacity_lost"] as? Bool == true)
            } else if let error = object["error"] as? [String: Any] {
                return CommandReply(accepted: false, message: error["message"] as? String ?? "rejected")
            }
            return noAnswer
        }
    }

    // MARK: The event stream

    private func connect() {
        let (generation, previous) = state.withLock { state in
            state.generation += 1
            state.connected = true
            state.events = ServerSentEventReader(largestEvent: largestEvent)
            defer { state.channel = nil }
            return (state.generation, state.channel)
        }
        previous?.close(promise: nil)
        let opened = http.stream(
            baseURL.appendingPathComponent("admin/events"), idleTimeout: Self.streamIdleTimeout,
            head: { [self] status in
                guard status != 200 else { return true }
                lost(status == 401 ? "wrong admin token" : "HTTP \(status)", generation: generation)
                return false
            },
            body: { [self] piece in received(piece, generation: generation) },
            end: { [self] failure in
                // A refusal (401, HTTP error) has already said why; keep that message.
                guard state.withLock({ !$0.stopped && $0.connected && $0.generation == generation }) else { return }
                lost(failure == nil ? "stream ended" : "disconnected", generation: generation, connectionFailed: failure != nil)
            })
        opened.whenSuccess { [self] channel in
            let keep = state.withLock { state in
                guard !state.stopped, state.generation == generation else { return false }
                state.channel = channel
                return true
            }
            if !keep { channel.close(promise: nil) }
        }
    }

    private func received(_ piece: ByteBuffer, generation: Int) {
        let (events, overflowed) = state.withLock { state in
            state.generation == generation ? (state.events.feed(piece.readableBytesView), state.events.overflowed) : ([], false)
        }
        if overflowed {
            // A server that sends this much without ending an event is broken: hang up, say why,
            // and let the reconnect loop try a fresh stream.
            let channel = state.withLock { $0.generation == generation ? $0.channel : nil }
            lost("an event over \(Self.sizeText(largestEvent)) from the server", generation: generation)
            channel?.close(promise: nil)
            return
        }
        for event in events where event.name == "snapshot" {
            guard let snapshot = Self.decode(event.data) else {
                // Skipped, and said: a server that only sends snapshots this console cannot read
                // (another program, a newer xds) left the header at "connecting to …" for ever.
                // The last snapshot drawn stays; the next good one clears the line.
                let said = "\(server): sent a snapshot this console cannot read (not xds serve, or another version?); "
                    + "skipped, waiting for the next"
                state.withLock { if $0.generation == generation { $0.snapshot.linkStatus = said } }
                continue
            }
            state.withLock {
                guard $0.generation == generation else { return }
                $0.snapshot = snapshot
                $0.everReceived = true
            }
        }
    }

    /// `connectionFailed`: the connection itself failed (not a refusal or an ended stream).
    private func lost(_ why: String, generation: Int, connectionFailed: Bool = false) {
        state.withLock {
            guard $0.generation == generation else { return }
            $0.connected = false
            // Never reached: say where it looked, not "disconnected" over an empty pod (as if a
            // connection had been lost).
            $0.snapshot.linkStatus = connectionFailed && !$0.everReceived
                ? "no answer from \(baseURL.absoluteString) (is xds serve running there?) — retrying…"
                : "\(server): \(why) — reconnecting…"
        }
    }

    /// The server as the header names it when the link is down ("127.0.0.1:8000"): "disconnected
    /// — reconnecting…" alone did not say from what.
    var server: String {
        guard let host = baseURL.host else { return baseURL.absoluteString }
        return baseURL.port.map { "\(host):\($0)" } ?? host
    }

    /// `bytes` for a status line: MiB, KiB or bytes, whichever is whole.
    static func sizeText(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : bytes >= 1 << 10 ? "\(bytes >> 10) KiB" : "\(bytes) bytes"
    }

    /// Snapshot JSON as the admin API writes it (NaN and infinities as strings); nil for one no
    /// engine sends (``isFromAnEngine(_:)``), which the link skips like an undecodable one.
    static func decode(_ json: String) -> Snapshot? {
        guard case .decoded(let snapshot)? = decodeAnswer(Snapshot.self, Data(json.utf8)),
            isFromAnEngine(snapshot)
        else { return nil }
        return snapshot
    }

    /// What an answer of the admin API decoded to.
    enum Answer<T> {
        case decoded(T)
        /// It decoded, but holds a number past 2^53 (beyond exact doubles): no count, byte total,
        /// id or time of an engine gets near, and the console does integer arithmetic on what it
        /// is sent (a preview's failed + rejected, a snapshot's sums), which Int.max traps.
        case foreign
    }

    /// `data` as the admin API writes `T` (NaN and infinities as strings); nil when it is not one.
    static func decodeAnswer<T: Decodable>(_ type: T.Type, _ data: Data) -> Answer<T>? {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        guard let value = try? decoder.decode(T.self, from: data) else { return nil }
        return largestNumber(inJSON: data) <= 9_007_199_254_740_992 ? .decoded(value) : .foreign
    }

    /// An admin API answer (a preview, a request page or detail) as `T`, or why not: the server's
    /// own error message (and whether it said 404), an answer no engine sends, or none at all.
    func read<T: Decodable>(_ answer: HTTPAnswer, as type: T.Type) -> Result<T, AnswerRefusal> {
        let data = Data(answer.body)
        switch Self.decodeAnswer(T.self, data) {
        case .decoded(let value)?:
            return .success(value)
        case .foreign?:
            return .failure(AnswerRefusal(
                message: "\(server) sent an answer this console cannot read (not xds serve, or another version?)"))
        case nil:
            if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let error = object["error"] as? [String: Any] {
                return .failure(AnswerRefusal(message: error["message"] as? String ?? "refused",
                                              notFound: answer.status == 404))
            }
            return .failure(AnswerRefusal(message: "no answer from \(baseURL.absoluteString)"))
        }
    }

    struct AnswerRefusal: Error {
        var message: String
        var notFound = false
    }

    /// Whether an engine could have sent this decoded snapshot: a paced speed within
    /// ``Pacer/speedRange`` (or none: `max`) and SLOs finite and positive (its numbers are within
    /// 2^53 already, ``decodeAnswer(_:_:)``). The console trusts what it draws (it writes the
    /// speed with `Int(_:)`, scales charts by the SLOs, sums counts), so a broken or foreign
    /// server streaming `"speed":"Infinity"` or an Int.max count trapped it.
    static func isFromAnEngine(_ snapshot: Snapshot) -> Bool {
        if let speed = snapshot.speed, !Pacer.speedRange.contains(speed) { return false }
        let slos = [snapshot.slo.ttftMs, snapshot.slo.tpotMs]
        return slos.allSatisfy { $0.isFinite && $0 > 0 }
    }

    /// The largest magnitude among the JSON text's numbers (strings skipped, so digits inside a
    /// message do not count); infinity for a number token that does not parse. Read from the bytes
    /// the decoder read: a snapshot is hundreds of kilobytes, and a String of it was a copy each.
    static func largestNumber(inJSON json: Data) -> Double {
        var largest = 0.0
        var inString = false
        var escaped = false
        var token: [UInt8] = []
        func endToken() {
            guard !token.isEmpty else { return }
            largest = max(largest, Double(String(decoding: token, as: UTF8.self)).map(abs) ?? .infinity)
            token.removeAll(keepingCapacity: true)
        }
        for byte in json {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            let startsNumber = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
            // Only inside a number: the e of true and false is not one.
            let continuesNumber = !token.isEmpty && "+.eE".utf8.contains(byte)
            if startsNumber || continuesNumber {
                token.append(byte)
            } else {
                endToken()
                if byte == UInt8(ascii: "\"") { inString = true }
            }
        }
        endToken()
        return largest
    }
}

/// The body of `POST /admin/commands` (interfaces.md): `{"command": "drain node 5"}`.
struct AdminCommandBody: Encodable {
    var command: String
}
