import Foundation
import ServingEngine
import Synchronization

/// Asks the engine for request-table pages and request details off the UI thread (each answer
/// takes one engine turn, or an HTTP round trip) and hands the answers back as messages the UI
/// loop takes each turn. Only the newest question of each kind waits: a console that scrolls
/// fast asks for the window it ends on, not every window it passed.
final class RequestQueryRunner: Sendable {
    static let shared = RequestQueryRunner()

    private struct Queue {
        var page: RequestQuery?
        var detail: Int?
        var link: (any RequestQueryLink)?
        var working = false
        var answers: [ConsoleMessage] = []
    }
    private let queue = Mutex(Queue())

    /// Performs a query effect against `link`; false if the link cannot answer queries.
    @discardableResult
    func perform(_ effect: ConsoleEffect, link: any EngineLink) -> Bool {
        guard let table = link as? RequestQueryLink else { return false }
        let start: Bool = queue.withLock { q in
            switch effect {
            case .queryRequests(let query): q.page = query
            case .queryRequestDetail(let id): q.detail = id
            default: return false
            }
            q.link = table
            defer { q.working = true }
            return !q.working
        }
        if start {
            let thread = Thread { [self] in work() }
            thread.name = "xds-request-query"
            thread.start()
        }
        return true
    }

    private func work() {
        while true {
            let job: (RequestQuery?, Int?, (any RequestQueryLink)?) = queue.withLock { q in
                defer { (q.page, q.detail) = (nil, nil) }
                if q.page == nil && q.detail == nil { q.working = false }
                return (q.page, q.detail, q.link)
            }
            guard let link = job.2, job.0 != nil || job.1 != nil else { return }
            if let query = job.0 {
                let answer = link.requestPage(query)
                queue.withLock { $0.answers.append(.requestPage(answer)) }
            }
            if let id = job.1 {
                let answer = link.requestDetail(id: id)
                queue.withLock { $0.answers.append(.requestDetail(id: id, answer)) }
            }
        }
    }

    func take() -> [ConsoleMessage] { queue.withLock { q in defer { q.answers.removeAll() }; return q.answers } }
}
