import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``DrainMigration``'s decisions through its own API: a fake pod (``DrainView``) and a recording
/// ``MigrationActuator``.
@Suite struct DrainMigrationTests {
    /// TE 0 prefill; TEs 1 and 2 decode, 8 NPUs per node. TE 1's groups: g0 NPU 0 (node 0), g1 NPU
    /// 8 and g2 NPU 9 (node 1, drained), g3 NPU 16 (node 2, drained), g4 NPU 1 (node 0). TE 2 has
    /// one drained group on node 1.
    struct Pod: DrainView {
        var npusPerNode = 8
        var tokensPerStep = 2.0
        var roles: [InstanceRole] = [.prefill, .decode, .decode]
        var outages: Set<Int> = []
        var groupNPUs: [[[Int]]] = [[[0]], [[0], [8], [9], [16], [1]], [[10], [24]]]
        var drained: [[Bool]] = [[false], [false, true, true, true, false], [true, false]]
        var steps = [0, 100, 50]
        var requests: [[DecodingRequest]] = [
            [],
            [DecodingRequest(id: 9, group: 1, promptTokens: 1_000, joinStep: 0, joining: false),
             DecodingRequest(id: 3, group: 1, promptTokens: 2_000, joinStep: 10, joining: false),
             DecodingRequest(id: 5, group: 2, promptTokens: 500, joinStep: 0, joining: false),
             DecodingRequest(id: 7, group: 2, promptTokens: 900, joinStep: 0, joining: true),
             DecodingRequest(id: 4, group: 3, promptTokens: 900, joinStep: 0, joining: false),
             DecodingRequest(id: 2, group: 0, promptTokens: 900, joinStep: 0, joining: false)],
            [DecodingRequest(id: 6, group: 0, promptTokens: 4_000, joinStep: 50, joining: false)],
        ]

        /// Requests in flight for the queued-prefill choice (none unless a test says so).
        var placed: [PlacedRequest] = []

        var teCount: Int { roles.count }
        func role(of te: Int) -> InstanceRole { roles[te] }
        func forEachPlacedRequest(_ body: (PlacedRequest) -> Void) { placed.forEach(body) }
        func hasOutage(_ te: Int) -> Bool { outages.contains(te) }
        func groupCount(of te: Int) -> Int { groupNPUs[te].count }
        func isDrained(_ te: Int, group g: Int) -> Bool { drained[te][g] }
        func npus(of te: Int, group g: Int) -> [Int] { groupNPUs[te][g] }
        func stepIndex(of te: Int) -> Int { steps[te] }
        func decodingRequests(on te: Int) -> [DecodingRequest] { requests[te] }
        /// 1 ms per 1,000 tokens.
        func kvCopySeconds(tokens: Double) -> Double { tokens / 1_000_000 }
    }

    struct Recorder: MigrationActuator {
        /// Targets handed out per TE, in order (none left: no room).
        var targets: [Int: [Int]] = [1: [0, 4, 0, 4], 2: [1]]
        var refused: Set<Int> = []
        /// Queued prefills with nowhere to go (they fail when moved).
        var unplaceable: Set<Int> = []
        var steps: [String] = []

        mutating func moveQueued(_ ids: [Int]) -> Int {
            steps.append("requeue \(ids)")
            return ids.filter(unplaceable.contains).count
        }

        mutating func pickTarget(_ te: Int) -> Int? {
            guard let next = targets[te]?.first else {
                steps.append("no room on \(te)")
                return nil
            }
            targets[te]?.removeFirst()
            return next
        }
        mutating func move(_ id: Int, on te: Int, from source: Int, to target: Int) -> Bool {
            steps.append("\(refused.contains(id) ? "refused" : "move") \(id) \(te)/\(source)→\(target)")
            return !refused.contains(id)
        }
        mutating func pause(_ te: Int, for seconds: SimTime) { steps.append("pause \(te) \(seconds)") }
    }

    @Test func runningRequestsOnTheNodeMoveInIdOrderAndTheTEPausesForTheLongestDie() {
        var act = Recorder()
        let moved = DrainMigration().migrate(off: 1, pod: Pod(), act: &act)
        // TE 1: group 1 copies 3 (2,000 + 90 steps × 2) then 9 (1,000 + 100 × 2) tokens; group 2
        // copies 5 (500 + 200). Joining 7, group 3 (node 2) and group 0 stay. TE 2: 6 (4,000).
        let die1 = 2_180.0 / 1_000_000 + 1_200.0 / 1_000_000
        #expect(act.steps == ["move 3 1/1→0", "move 5 1/2→4", "move 9 1/1→0", "pause 1 \(die1)",
                              "move 6 2/0→1", "pause 2 \(4_000.0 / 1_000_000)"])
        #expect(moved == 4)
        #expect(DrainMigration().movers(on: 1, off: 1, pod: Pod()).map(\.id) == [3, 5, 9])
        #expect(DrainMigration().movers(on: 1, off: 2, pod: Pod()).map(\.id) == [4])
        #expect(DrainMigration().movers(on: 1, off: 0, pod: Pod()).isEmpty, "node 0's groups are not drained")
    }

    @Test func noRoomStopsTheTERefusedMovesAreSkippedAndCostNothing() {
        var act = Recorder()
        act.targets = [1: [0, 4]]
        act.refused = [3]
        var pod = Pod()
        pod.outages = [2]
        let moved = DrainMigration().migrate(off: 1, pod: pod, act: &act)
        // 3 refused (no copy), 5 moves, then no room: 9 finishes in place. TE 2 is out: untouched.
        #expect(act.steps == ["refused 3 1/1→0", "move 5 1/2→4", "no room on 1", "pause 1 \(700.0 / 1_000_000)"])
        #expect(moved == 1)
        // Nothing moved: no pause.
        var none = Recorder()
        none.targets = [:]
        #expect(DrainMigration().migrate(off: 1, pod: pod, act: &none) == 0)
        #expect(none.steps == ["no room on 1"])
    }

    /// Queued on a drained group (any drained group, on any node) moves; started, queued on a
    /// group in service, or not placed yet stays.
    @Test func queuedPrefillsOnDrainedGroupsMoveInIdOrder() {
        func placed(_ id: Int, _ stage: RequestStage, te: Int, group: Int) -> PlacedRequest {
            PlacedRequest(id: id, stage: stage, prefillTE: te, prefillGroup: group, decodeTE: -1, decodeGroup: -1)
        }
        var pod = Pod()
        pod.placed = [placed(12, .queued, te: 1, group: 1), placed(4, .queued, te: 1, group: 3),
                      placed(8, .queued, te: 1, group: 0), placed(5, .prefill, te: 1, group: 2),
                      placed(6, .queued, te: -1, group: -1), placed(7, .queued, te: 1, group: -1),
                      placed(9, .transfer, te: 2, group: 0), placed(2, .queued, te: 2, group: 0)]
        #expect(DrainMigration().queuedOnDrainedGroups(pod: pod) == [2, 4, 12])
        var act = Recorder()
        act.unplaceable = [4]
        let outcome = DrainMigration().moveQueuedPrefills(pod: pod, act: &act)
        #expect(outcome.moved == 2 && outcome.failed == 1, "4 had nowhere to go")
        #expect(act.steps == ["requeue [2, 4, 12]"])
        // Nothing queued on a drained group: nothing is asked of the pod.
        pod.drained = pod.drained.map { $0.map { _ in false } }
        var idle = Recorder()
        let none = DrainMigration().moveQueuedPrefills(pod: pod, act: &idle)
        #expect(none.moved == 0 && none.failed == 0 && idle.steps.isEmpty)
    }

    @Test func thePauseIsTheLongestDieCopyAsAnEngineDelay() {
        #expect(DrainMigration.pause([:]) == nil)
        #expect(DrainMigration.pause([3: 0]) == nil, "a zero-length copy does not pause the TE")
        #expect(DrainMigration.pause([1: 0.25, 2: 0.5, 7: 0.125]) == 0.5)
        #expect(DrainMigration.pause([1: 1e300]) == ServingEngine.delay(1e300), "bounded like every delay")
    }
}
