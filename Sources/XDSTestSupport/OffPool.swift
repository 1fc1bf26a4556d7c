import Foundation

/// Runs CPU-heavy synchronous test work on a thread of its own and awaits it.
///
/// Swift Testing runs tests as tasks on the cooperative pool, which has one thread per core (two
/// here). A long simulation run inline holds a pool thread for its whole duration; two of them
/// starve every other test — in particular the live HTTP servers of the API tests, whose
/// handlers run on that pool and then time out. Heavy tests compute on a thread and assert on
/// the results afterwards (keep `#expect` outside `body`: it needs the test's task context).
///
/// ```swift
/// let report = try await offPool { try runLongSimulation() }
/// #expect(report.requests.completed == 3_000)
/// ```
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
