import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import ServingEngine
import Synchronization

/// The HTTP face of xds: OpenAI-compatible completions, Prometheus metrics, health probes and the
/// admin API (interfaces.md, "HTTP API"). Like every face it only sends commands and reads
/// snapshots and events: engine state comes from an ``EngineLink``, completions from a
/// ``CompletionBackend``.
///
/// | route | what |
/// |---|---|
/// | `POST /v1/chat/completions`, `POST /v1/completions` | OpenAI-compatible; `stream: true` → SSE chunks, `data: [DONE]` |
/// | `GET /v1/models` | the served model |
/// | `GET /metrics` | Prometheus text: vLLM V1 names + `xds_*` |
/// | `GET /health`, `GET /ready` | liveness; readiness: 200 `ready`/`degraded`, 503 `not_ready` + reason (``HealthRoutes``) |
/// | `GET /admin/state` | the snapshot as JSON (bearer token) |
/// | `POST /admin/commands` | `{"command": "drain node 5"}` → `{"accepted", "message"}`: 200 applied, 400 rejected, 503 engine unavailable or the command timed out (bearer token) |
/// | `POST /admin/preview` | `{"command": "drain node 20", "duration": "10m"}` → `{"command", "duration_s", "from_s", "reply", "baseline", "with_command", "wall_seconds"}`: what-if on forks of the live engine, which is not changed; 400 refused (bad command or duration, or the engine would reject it) (bearer token) |
/// | `GET /admin/events` | SSE: `event: snapshot` every interval, `event: event` per new engine event (bearer token) |
///
/// ```swift
/// let server = APIServer(
///     configuration: .init(port: 8000, adminToken: AdminToken.generate()),
///     link: host, backend: host)
/// async let serving: Void = server.run()       // until the task is cancelled
/// print("listening on port \(try await server.boundPort())")
/// ```
public final class APIServer: Sendable {
    public struct Configuration: Sendable {
        /// Interface to bind; loopback unless the operator asks for more (interfaces.md).
        public var host: String
        /// TCP port; 0 picks a free one (see ``APIServer/boundPort()``).
        public var port: Int
        /// Bearer token for `/admin/*`; empty keeps admin closed (every admin request gets 401).
        public var adminToken: String
        /// Larger request bodies get 413. Prompts of a 128K-token context fit in well under 1 MiB.
        public var maxBodyBytes: Int
        /// `max_tokens` when a request does not say.
        public var defaultMaxTokens: Int
        /// Larger `max_tokens` are lowered to this.
        public var maxTokensCap: Int
        /// The model's context window (prompt plus output, tokens): longer prompts get 400
        /// `context_length_exceeded`, larger `max_tokens` 400 naming the range.
        public var maxModelLen: Int
        /// Time between `event: snapshot` frames on `/admin/events`.
        public var adminEventInterval: Duration
        /// How long the server waits for a client's request head, body bytes, or next request.
        public var readTimeouts: ReadTimeouts
        /// Where server logs go; silent by default because the console may own the terminal.
        public var logger: Logger
        /// Connections open at once; one more is answered 503 `too_many_connections` and closed.
        /// Nil: below the process's file-descriptor limit (``ConnectionLimit/forThisProcess()``).
        public var maxConnections: Int?
        /// How long a stopping server waits for its connections to end on their own before it
        /// cancels them (``APIServer/shutdownGrace``). Tests on a loaded machine give it longer:
        /// with every test of the suite sharing two cores, the tasks that end the connections
        /// could wait past 2 s for a thread, and a stream was cut instead of ended.
        public var shutdownGrace: Duration = APIServer.shutdownGrace
        /// Where the server's own Swift tasks run (the service group and, inheriting it, the
        /// accept loop and every connection's handler); nil: Swift's cooperative pool, as for any
        /// task, which is what `xds serve` and the console use. A test process sets it: there the
        /// pool's two threads are shared by hundreds of tests, and a live test server could not
        /// bind, answer or stop until the pool got round to it. `run()` starts the group as an
        /// unstructured task (so a cancel becomes a graceful shutdown), which inherits no
        /// executor preference from its caller: it is given here.
        public var taskExecutor: (any TaskExecutor)? = nil

        public init(
            host: String = "127.0.0.1", port: Int = 0, adminToken: String, maxBodyBytes: Int = 1 << 20,
            defaultMaxTokens: Int = 256, maxTokensCap: Int = 16_384, maxModelLen: Int = 131_072,
            adminEventInterval: Duration = .milliseconds(500), readTimeouts: ReadTimeouts = .init(),
            logger: Logger = Logger(label: "xds.api", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.host = host
            self.port = port
            self.adminToken = adminToken
            self.maxBodyBytes = maxBodyBytes
            self.defaultMaxTokens = defaultMaxTokens
            self.maxTokensCap = maxTokensCap
            self.maxModelLen = max(2, maxModelLen)
            self.adminEventInterval = adminEventInterval
            self.readTimeouts = readTimeouts
            self.logger = logger
        }
    }

    /// The xds version: `GET /version` and `xds --version`.
    public static let version = "0.2.0"

    public let configuration: Configuration
    private let link: any EngineLink
    private let backend: any CompletionBackend
    private let metrics: ServingMetrics
    private let listening = ListeningPort()

    /// `engineFeed`: the engine's feed of requests that left it (set as its
    /// ``EngineObservers/requestFinished`` before the engine starts); with it the `vllm:` series
    /// describe the whole engine, without it only the HTTP requests this server served.
    public init(configuration: Configuration, link: any EngineLink, backend: any CompletionBackend,
                engineFeed: EngineFeed? = nil) {
        self.configuration = configuration
        self.link = link
        self.backend = backend
        self.metrics = ServingMetrics(modelName: backend.modelName, arrivals: backend as? any ArrivalStamping)
        if let engineFeed { metrics.follow(engineFeed) }
    }

    /// Serves until the calling task is cancelled; throws if the address cannot be bound.
    public func run() async throws {
        let maxBodyBytes = configuration.maxBodyBytes
        let readTimeouts = configuration.readTimeouts
        let connections = ConnectionLimit(limit: configuration.maxConnections ?? ConnectionLimit.forThisProcess())
        let app = Application(
            router: makeRouter(),
            // Every connection watches for its client leaving from the start: installed lazily, at
            // a long completion's first wait, a client that closed in between went unnoticed.
            // The read timeouts come after ExpectContinueHandler, to see the requests the router sees.
            // HeadParseErrorAnswer comes first, to see a bad head's error before anything else.
            // OversizeBodyLinger sees the parts the router sees, after ExpectContinueHandler ends a
            // refused announced body. The connection cap comes before them all: a refused
            // connection is answered and closed before any request of its is read. RequestHeadCheck
            // places itself right after NIO's decoder, before HTTP10Framing (whose installer runs
            // first): a head HTTP/1.1 refuses never reaches the rest. ChunkSizeLimit places itself
            // right before that decoder, where a chunk's size line is still raw bytes.
            server: .http1(configuration: .init(additionalChannelHandlers: [
                connections.handler(), HeadParseErrorAnswer(), InputClosedHandler(), ExpectContinueHandler(maxBodyBytes: maxBodyBytes), OversizeBodyLinger(),
                HTTP10Framing.installer(), RequestHeadCheck.installer(), ChunkSizeLimit.installer(maxBodyBytes: maxBodyBytes),
                ReadTimeoutHandler(readTimeouts, timedOut: { [metrics = self.metrics] part in metrics.readTimedOut(part) }),
            ])),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "xds"),
            onServerRunning: { [listening] channel in listening.bound(channel.localAddress?.port) },
            logger: configuration.logger)
        // No signal handling here: the CLI owns SIGINT/SIGTERM and cancels this task. Cancelled
        // outright, the server dropped connections its listener had accepted but not yet handed
        // on, and NIO traps on such a connection's unfinished writer ("Deinited NIOAsyncWriter
        // without calling finish()", SIGILL): `xds serve` stopped while clients were connecting
        // died instead of exiting 0. So cancellation starts a graceful shutdown (the listener
        // closes, every accepted connection is handled, idle ones close) in a task of its own;
        // completions under way answer 503 (or end their stream with that error) and event
        // streams end, on their own (``ClientWatch``, ``AdminEventStream``). Whatever still runs
        // after ``shutdownGrace`` (a client that stopped reading) is cancelled as before.
        let services = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [], logger: configuration.logger))
        let executor = configuration.taskExecutor
        // High priority, here and for the stop below: Hummingbird, ServiceLifecycle and backends
        // start unstructured tasks (`Task {}`: a server's graceful stop, its cancellation, a
        // stream's producer), which take the starting task's priority but not its executor, and
        // so run on Swift's shared pool. At an ordinary priority they queue behind every job
        // already waiting there: in a full `swift test`, whose pool holds the other suites' test
        // bodies, a test server took 277 s to stop (2 ms alone) and a completion went unanswered
        // past its client's 8 s timeout. At high priority they wait only for a pool thread to free.
        let running = Task(executorPreference: executor, priority: .high) { try await services.run() }
        let grace = configuration.shutdownGrace
        do {
            try await withTaskCancellationHandler {
                try await running.value
            } onCancel: {
                Task(executorPreference: executor, priority: .high) {
                    await services.triggerGracefulShutdown()
                    try? await Task.sleep(for: grace)
                    running.cancel()
                }
            }
        } catch {
            listening.stopped()
            throw error
        }
        listening.stopped()
    }

    /// How long a stopping server waits for its connections to close before cancelling them.
    /// They close on their own within tens of milliseconds; this is the bound for one that cannot
    /// (its client stopped reading), and it is long so that connections accepted but not yet
    /// handed on are handed on first even on a loaded machine (at 250 ms one could be dropped,
    /// which NIO traps on). Under the CLI's own 3 s bound on stopping.
    public static let shutdownGrace = Duration.seconds(2)

    /// The port the server listens on, once it does (useful with port 0). Throws if `run()` ended
    /// without ever listening, e.g. because the port was taken.
    public func boundPort() async throws -> Int {
        try await listening.wait()
    }

    /// Routes swift-metrics' process-wide `MetricsSystem` into this server's registry, so that
    /// Hummingbird's own HTTP metrics (`hb_requests`, `http_server_request_duration`, …)
    /// appear on `/metrics` beside the vLLM and xds ones. swift-metrics allows one bootstrap per
    /// process, so only the process owner (`xds serve`) calls this, once; returns false if a server
    /// already did. Without it those middleware metrics go nowhere, and nothing else changes.
    @discardableResult
    public func bootstrapMetricsSystem() -> Bool {
        guard !Self.metricsSystemBootstrapped.exchange(true, ordering: .acquiringAndReleasing) else {
            return false
        }
        MetricsSystem.bootstrap(DescribedMetricsFactory(registry: metrics.registry))
        return true
    }

    private static let metricsSystemBootstrapped = Atomic<Bool>(false)

    func makeRouter() -> Router<ServerContext> {
        // HEAD on every GET route (`curl -I /metrics`, uptime probes): the GET answer's status and
        // headers, Content-Length included, without its body. Without it only routes that declared a
        // HEAD had one, and `HEAD /v1/models` was a 404.
        let router = Router(context: ServerContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: RequestIDMiddleware())
        // Records into the global MetricsSystem: a no-op until bootstrapMetricsSystem() is called.
        // Outside the error middleware, so it sees the status a client got (a 404 counts as 404,
        // not as an error thrown past it).
        let routes = RouteMethods()
        router.add(middleware: HTTPMetricsMiddleware(routes: routes))
        router.add(middleware: APIErrorMiddleware(routes: routes))
        router.add(middleware: RequestIDCheck())
        router.add(middleware: AnnouncedBodyLimit(maxBodyBytes: configuration.maxBodyBytes))
        HealthRoutes(link: link, backend: backend).register(on: router)
        CompletionRoutes(
            backend: backend, metrics: metrics,
            validator: CompletionValidator(
                servedModel: backend.modelName, defaultMaxTokens: configuration.defaultMaxTokens,
                maxTokensCap: configuration.maxTokensCap, maxModelLen: configuration.maxModelLen),
            maxBodyBytes: configuration.maxBodyBytes, startedAt: Int(Date().timeIntervalSince1970)
        ).register(on: router)
        router.get("/metrics") { [metrics, link] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.exposition(for: link.latestSnapshot()))))
        }
        AdminRoutes(
            link: link, token: configuration.adminToken, maxBodyBytes: configuration.maxBodyBytes,
            eventInterval: configuration.adminEventInterval
        ).register(on: router)
        routes.learn(router.routes)
        return router
    }
}

public enum APIServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `run()` ended before the server listened (e.g. the port was in use).
    case notListening

    public var description: String { "the HTTP server is not listening" }
}

/// The bound port, published once by the server and awaited by any number of callers.
private final class ListeningPort: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Int, any Error>])
        case bound(Int)
        case stopped
    }
    private let state = Mutex<State>(.waiting([]))

    func bound(_ port: Int?) {
        guard let port else { return }
        let waiters = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
            guard case .waiting(let waiters) = state else { return [] }
            state = .bound(port)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    func stopped() {
        let waiters = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
            defer { state = .stopped }
            guard case .waiting(let waiters) = state else { return [] }
            return waiters
        }
        for waiter in waiters { waiter.resume(throwing: APIServerError.notListening) }
    }

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<Int, any Error>? = state.withLock { state in
                switch state {
                case .bound(let port): return .success(port)
                case .stopped: return .failure(APIServerError.notListening)
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                }
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }
}
