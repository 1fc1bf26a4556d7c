import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization

/// The request context of every route: Hummingbird's basic one plus the connection, so a long
/// completion can notice its client leaving without reading the connection's inbound side (which
/// would cost the connection its keep-alive; see ``ClientWatch``).
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

extension ServerContext {
    /// The path parameter `name` as the client meant it, percent-decoded (RFC 3986 §2.1:
    /// `/v1/models/deepseek%2Dr1` names `deepseek-r1`); the router hands the segment as sent. One
    /// whose escapes do not decode (`%zz`, bytes that are not UTF-8) is kept as sent. Error
    /// messages that echo it still go through `InputEcho` (control characters escaped).
    func pathParameter(_ name: String) -> String {
        let sent = parameters.get(name) ?? ""
        return sent.removingPercentEncoding ?? sent
    }
}

/// Runs an operation until it ends or the client goes away, whichever comes first; in the second
/// case the operation is cancelled and this throws `CancellationError`.
///
/// Hummingbird's `consumeWithCancellationOnInboundClose` does the same by reading the inbound
/// request stream, after which the connection cannot carry another request (every completion
/// closed its connection). Instead, a small handler at the front of the connection's pipeline
/// (``InputClosedHandler``, installed once per connection) notes when the client closes its side
/// (the server allows half-closure, so the channel itself stays active) or the channel closes;
/// the watch looks at that flag. HTTP/1.1 keep-alive is kept.
///
/// A server that starts stopping (a graceful shutdown) ends the wait too, with ``ServerStopping``:
/// the caller answers 503 or ends its stream with an error event, so every connection closes on
/// its own well inside ``APIServer``'s grace, before anything is cancelled.
enum ClientWatch {
    /// How often the flag is looked at: a client that left is noticed within this.
    static let interval = Duration.milliseconds(20)

    /// `operation` may capture `inout` state (a response body writer): it runs in a child task
    /// that the group awaits before returning, so it never outlives this call.
    static func run<Value: Sendable>(
        on channel: any Channel, _ operation: () async throws -> Value
    ) async throws -> Value {
        // A connection that closed before this first wait (a client that reset it) has its
        // pipeline torn down, and the flag's lookup fails with "I/O on closed channel": a client
        // that left, not a server error (it was answered, and counted, as a 500).
        let gone: InputClosedHandler.FlagView
        do { gone = try await InputClosedHandler.flag(of: channel) } catch { throw CancellationError() }
        return try await withoutActuallyEscaping(operation) { operation in
            let work = Unchecked(operation)
            return try await withThrowingTaskGroup(of: Value?.self) { group in
                group.addTask { try await work.value() }
                group.addTask {
                    while !gone.isSet && channel.isActive {
                        if Task.isShuttingDownGracefully { throw ServerStopping() }
                        try await Task.sleep(for: interval)
                    }
                    return nil
                }
                defer { group.cancelAll() }
                guard case .some(.some(let value)) = try await group.next() else { throw CancellationError() }
                return value
            }
        }
    }

    /// Carries the operation into the child task; only that task calls it, while the caller waits.
    private struct Unchecked<T>: @unchecked Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }
}

/// The server began to stop while a completion was under way (``ClientWatch``).
struct ServerStopping: Error {}

/// Sets a flag when the client closes its side of the connection or the connection closes,
/// passing every event on unchanged. The server puts one on every connection when it opens
/// (``APIServer/run()``), so a client that closes before its completion's first wait is seen;
/// ``flag(of:)`` installs one on a connection that has none.
final class InputClosedHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let closed = Atomic<Bool>(false)

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { closed.store(true, ordering: .releasing) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.store(true, ordering: .releasing)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    /// The flag of the connection's handler (installed at the front of its pipeline if it has none).
    static func flag(of channel: any Channel) async throws -> FlagView {
        try await channel.eventLoop.submit {
            let pipeline = channel.pipeline.syncOperations
            if let existing = try? pipeline.handler(type: InputClosedHandler.self) { return FlagView(existing) }
            let handler = InputClosedHandler()
            try pipeline.addHandler(handler, position: .first)
            return FlagView(handler)
        }.get()
    }

    /// Read access to a handler's flag from any thread.
    struct FlagView: Sendable {
        private let handler: InputClosedHandler
        init(_ handler: InputClosedHandler) { self.handler = handler }
        var isSet: Bool { handler.closed.load(ordering: .acquiring) }
    }
}
