import Foundation
import Testing

/// A suite marked `.ownThread` runs its tests on that thread, not on Swift's cooperative pool:
/// the synchronous body, what follows an `await`, and the tasks it starts in a group.
@Suite(.timeLimit(.minutes(10)), .ownThread("OffPoolTests"))
struct OffCooperativePoolTests {
    static let thread = "OffPoolTests"
    /// The executor of the running thread, by name (nil: not one of ours, e.g. a pool thread).
    static func here() -> String? { ThreadsExecutor.current?.name }

    @Test func aSynchronousBodyRunsOnTheSuitesThread() {
        #expect(Self.here() == Self.thread)
    }

    @Test func anAsyncBodyStaysOnItAcrossAwaitsAndInChildTasks() async throws {
        try await Task.sleep(for: .milliseconds(20))
        #expect(Self.here() == Self.thread)
        let names = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<3 { group.addTask { Self.here() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(names == Array(repeating: Self.thread, count: 3), "\(names)")
    }
}
