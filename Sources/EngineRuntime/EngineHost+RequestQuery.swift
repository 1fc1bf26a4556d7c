import Foundation
import ServingEngine
import Synchronization

/// A core whose request table can be queried (``ServingEngine``).
public protocol RequestQueryCore: AnyObject {
    func requestPage(_ query: RequestQuery) -> RequestPage
    func requestDetail(id: Int) -> RequestDetail?
}

extension ServingEngine: RequestQueryCore {}

/// A question for the engine thread; `answer` runs there (or with `nil` when the engine stops).
final class PendingQuery: @unchecked Sendable {
    // Written under `claimed` before `done` is signalled; read after.
    private let body: (RequestQueryCore?) -> Void
    let claimed = Atomic<Bool>(false)
    let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping (RequestQueryCore?) -> Void) { self.body = body }

    /// Runs the question once (engine thread, or the stopping host with nil); false if it was
    /// already answered or withdrawn.
    @discardableResult
    func answer(_ core: RequestQueryCore?) -> Bool {
        guard !claimed.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        body(core)
        done.signal()
        return true
    }

    /// The asker gives up waiting: the engine thread will skip it.
    func withdraw() -> Bool { !claimed.exchange(true, ordering: .acquiringAndReleasing) }
}

/// The request table of a hosted engine, read on the engine thread between events (a read only:
/// the command log and the run never see it).
extension EngineHost: RequestQueryLink {
    public func requestPage(_ query: RequestQuery) -> Result<RequestPage, RequestQueryRefusal> {
        if let problem = query.problem { return .failure(RequestQueryRefusal(problem)) }
        return ask { core in core.requestPage(query) }
    }

    public func requestDetail(id: Int) -> Result<RequestDetail, RequestQueryRefusal> {
        switch ask({ core in core.requestDetail(id: id) }) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let detail?): return .success(detail)
        case .success(nil):
            return .failure(RequestQueryRefusal(
                "request \(id) is unknown: not in flight and not among the last requests that left", notFound: true))
        }
    }

    /// Runs `question` on the engine thread and waits for it at most ``Bounds/command``.
    private func ask<T: Sendable>(_ question: @escaping (RequestQueryCore) -> T) -> Result<T, RequestQueryRefusal> {
        guard core is RequestQueryCore else { return .failure(RequestQueryRefusal("this engine cannot list its requests")) }
        guard isRunning else { return .failure(RequestQueryRefusal("engine is not running")) }
        let result = Mutex<Result<T, RequestQueryRefusal>>(.failure(RequestQueryRefusal("engine stopped")))
        let pending = PendingQuery { core in
            if let core { result.withLock { $0 = .success(question(core)) } }
        }
        queryInbox.withLock { $0.append(pending) }
        wakeEngine()
        if pending.done.wait(timeout: .now() + bounds.command) == .timedOut {
            if pending.withdraw() {
                queryInbox.withLock { q in q.removeAll { $0 === pending } }
                return .failure(RequestQueryRefusal(
                    "the engine did not answer within \(Pacer.format(bounds.command)) s (request query withdrawn)"))
            }
            pending.done.wait()  // the engine thread is answering it now
        }
        return result.withLock { $0 }
    }

    /// Engine thread: answers every queued question (or, stopping, refuses them).
    func answerPendingQueries(refusing: Bool = false) {
        let batch = queryInbox.withLock { q in defer { q.removeAll() }; return q }
        guard !batch.isEmpty else { return }
        let core = refusing ? nil : core as? RequestQueryCore
        for pending in batch { pending.answer(core) }
    }
}
