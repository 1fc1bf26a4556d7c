import Hummingbird

/// The request context of every route: Hummingbird's basic one plus the connection, so a long
/// completion can notice its client leaving without reading the connection's inbound side (which
/// would cost the connection its keep-alive; see ``ClientWatch``).
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Whether the client's connection is still open.
    let connection: ClientConnection

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let channel = source.channel
        connection = ClientConnection { channel.isActive }
    }
}

/// Runs an operation until it ends or the client's connection closes, whichever comes first; in
/// the second case the operation is cancelled and this throws `CancellationError`.
///
/// Hummingbird's `consumeWithCancellationOnInboundClose` does the same by reading the inbound
/// request stream, after which the connection cannot carry another request (every completion
/// closed its connection). Watching the channel's liveness instead keeps HTTP/1.1 keep-alive:
/// the server still reads the socket, so a peer that closes makes the channel inactive.
struct ClientConnection: Sendable {
    let isOpen: @Sendable () -> Bool
}

enum ClientWatch {
    /// How often the connection is looked at: a client that left is noticed within this.
    static let interval = Duration.milliseconds(50)

    /// `operation` may capture `inout` state (a response body writer): it runs in a child task
    /// that the group awaits before returning, so it never outlives this call.
    static func run<Value: Sendable>(
        on connection: ClientConnection, _ operation: () async throws -> Value
    ) async throws -> Value {
        try await withoutActuallyEscaping(operation) { operation in
            let work = Unchecked(operation)
            return try await withThrowingTaskGroup(of: Value?.self) { group in
                group.addTask { try await work.value() }
                group.addTask {
                    while connection.isOpen() { try await Task.sleep(for: interval) }
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
