import PodModel
import SimKit
import Testing
import XDSTestSupport
@testable import ServingEngine

/// A client that goes away before its request reaches decode: the request leaves the engine
/// without being prefilled (or at the end of the chunk it is in), not after a whole prefill, a
/// KV transfer and a decode step.
@Suite struct CancelBeforeDecodeTests {
    func engine(_ deployment: Deployment = TestDeployments.toyPod) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: deployment)
        config.syntheticRate = 0
        return try ServingEngine(configuration: config)
    }

    /// Every cancelled request left exactly once, as cancelled, and nothing is left behind.
    func expectSound(_ e: ServingEngine, cancelled ids: [Int], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(e.audit() == [], sourceLocation: sourceLocation)
        #expect(e.inFlightProblems() == [], sourceLocation: sourceLocation)
        let events = e.recentEvents()
        for id in ids {
            let count = events.filter { $0.kind == .requestCancelled && $0.requestId == id }.count
            #expect(count <= 1, "request \(id) cancelled \(count) times", sourceLocation: sourceLocation)
        }
    }

    /// The repro of the last session: long prompts queued behind each other, their clients gone
    /// after a second. Before, each was still prefilled in turn, handed over to decode and freed
    /// after one decode step (tens of seconds later); then the queued ones left at once and the
    /// ones being prefilled only at the end of their chunk (seconds later, still listed as
    /// prefilling). Now every one leaves at once, its KV freed, and the batch still ends when it
    /// would have (its hardware computed the chunk anyway).
    @Test func queuedRequestsLeaveAtOnceWhenTheirClientGoes() throws {
        let e = try engine()
        let ids = (0..<20).map { _ in e.submitExternal(promptTokens: 60_000, maxTokens: 100) }
        e.run(until: 1)
        let before = e.inFlightCensus()
        #expect(before.prefillQueued > 0 && before.prefilling > 0 && before.total == 20, "\(before)")
        let prefillTEs = e.instances.indices.filter { e.instances[$0].hasPrefill }
        let batchEnd = try #require(prefillTEs.compactMap { e.instances[$0].stepEndsAt }.max())
        #expect(batchEnd > e.now + 0.5, "a long chunk is mid-batch at the cancellation")
        var decoded = 0
        e.observers.requestFinished = { if $0.decodeSteps > 0 || $0.firstTokenAt != nil { decoded += 1 } }
        let cancelledAt = e.now
        for id in ids { e.cancelExternal(id: id) }
        // Gone without the clock moving, the ones in the running batch too.
        #expect(e.now == cancelledAt)
        let census = e.inFlightCensus()
        #expect(census.total == 0, "\(census)")
        let report = e.report()
        #expect(report.requests.inFlight == 0 && report.requests.failed == 20 && report.requests.completed == 0)
        #expect(report.requests.failureReasons == ["cancelled": 20])
        for id in ids { #expect(e.requestDetail(id: id)?.stage == .cancelled, "request \(id)") }
        for te in prefillTEs {
            for g in 0..<e.instances[te].groupCount {
                #expect(e.kvStore.requestsHoldingKV(GroupRef(te: te, group: g)) == 0, "TE \(te) dp\(g) still holds KV")
            }
        }
        expectSound(e, cancelled: ids)
        // The batch keeps its time: the TE is busy until it ends, and no chunk of it is applied.
        #expect(prefillTEs.compactMap { e.instances[$0].stepEndsAt }.max() == batchEnd)
        e.run(until: batchEnd)
        #expect(decoded == 0, "a request cancelled before decode was decoded")
        #expect(e.report().requests.failureReasons == ["cancelled": 20])
        expectSound(e, cancelled: ids)
        // The pod serves the next request as if those had never come.
        let next = e.submitExternal(promptTokens: 500, maxTokens: 20)
        #expect(e.runToCompletion(limit: 120))
        #expect(e.requestDetail(id: next)?.stage == .completed)
        #expect(e.audit() == [] && e.inFlightProblems() == [])
    }

    /// Cancelled while its batch hangs on a dead die: recovery takes it off the TE, and it
    /// leaves as cancelled, not prefilled again elsewhere for a client that is gone.
    @Test func aCancelledRequestOnFailedHardwareLeavesAsCancelled() throws {
        let e = try FaultTests.engine(rate: 0, limit: 0) { $0.recoveryPolicy = "fine-grained" }
        let ids = (0..<6).map { _ in e.submitExternal(promptTokens: 30_000, maxTokens: 50) }
        e.run(until: 0.5)
        let p = try #require(ids.compactMap { e.requests[$0] }.first { $0.stage == .prefill }?.prefillInstance,
                             "\(e.inFlightCensus())")
        #expect(e.apply(.faultDie(e.cluster.dies(of: p)[0])).accepted)   // the TE's batch hangs
        let hung = ids.filter { e.requests[$0]?.prefillInstance == p && e.requests[$0]?.stage == .prefill }
        for id in ids { e.cancelExternal(id: id) }
        expectSound(e, cancelled: ids)
        // Mid-batch on the hung TE: gone at once too, not held until recovery takes it off.
        #expect(!hung.isEmpty && hung.allSatisfy { e.requests[$0] == nil }, "\(hung)")
        #expect(e.runToCompletion(limit: 600))
        let report = e.report()
        #expect(report.requests.failureReasons == ["cancelled": 6], "\(report.requests.failureReasons)")
        #expect(report.faultDetails.allSatisfy { $0.requestsReprefilled == 0 && $0.requestsFailed == 0 }, "\(report.faultDetails)")
        expectSound(e, cancelled: ids)
        FaultTests.expectEmpty(e)
    }

    /// A request whose KV reached decode but which waits for the step boundary to join the
    /// batch leaves at once, without a decode step (it was given one before leaving). (A
    /// colocated TE's joiners join within the event that prefilled them: never seen waiting.)
    @Test func aJoiningRequestLeavesWithoutADecodeStep() throws {
        let e = try engine()
        var steps: [Int: Int] = [:]
        e.observers.requestFinished = { steps[$0.id] = $0.decodeSteps }
        let ids = (0..<40).map { _ in e.submitExternal(promptTokens: 700, maxTokens: 300) }
        var joining: Int?
        while joining == nil, e.now < 60, e.step() {
            joining = ids.first { id in
                e.requests[id].map { e.instances.indices.contains($0.decodeInstance) } == true
                    && e.instances[e.requests[id]!.decodeInstance].decode?.joining.contains(id) == true
            }
        }
        let id = try #require(joining)
        e.cancelExternal(id: id)
        #expect(e.requestDetail(id: id)?.stage == .cancelled)
        #expect(steps[id] == 0, "decode steps: \(steps[id] ?? -1)")
        expectSound(e, cancelled: [id])
        #expect(e.runToCompletion(limit: 600))
        #expect(e.report().requests.failureReasons == ["cancelled": 1] && e.report().requests.completed == 39)
        expectSound(e, cancelled: [id])
    }

    /// Cancelling at every point of the lifecycle, on a disaggregated and a colocated pod: each
    /// cancelled request leaves once, counted as cancelled; one cancelled before decode never
    /// decodes; KV and the census stay sound after every cancellation.
    @Test(arguments: ["toy", "colocated"])
    func cancellingAtAnyStageIsSound(_ pod: String) throws {
        let e = try engine(pod == "toy" ? TestDeployments.toyPod : TestDeployments.colocatedLlama())
        var rng = RandomStream(seed: 11)
        var ids: [Int] = []
        var cancelled: [Int: RequestStage] = [:]
        /// Cancelled before their first decode step: queued, prefilling, transferring, or with
        /// their KV on the decode side waiting for the step boundary (joining).
        var beforeDecoding = Set<Int>()
        var decodedEarly: [Int] = []
        e.observers.requestFinished = { r in
            if beforeDecoding.contains(r.id), r.decodeSteps > 0 { decodedEarly.append(r.id) }
        }
        for tick in 0..<200 {
            if tick < 120 {
                let prompt = pod == "toy" ? Int(rng.next() % 30_000) + 100 : Int(rng.next() % 3_000) + 50
                ids.append(e.submitExternal(promptTokens: prompt, maxTokens: Int(rng.next() % 200) + 1))
            }
            e.run(until: Double(tick) * 0.05)
            if let id = ids.randomElement(using: &rng), cancelled[id] == nil, let detail = e.requestDetail(id: id),
               [.queued, .prefill, .transfer, .decode].contains(detail.stage) {
                cancelled[id] = detail.stage
                let joining = e.requests[id].map { r in
                    r.decodeInstance >= 0 && e.instances[r.decodeInstance].decode?.joining.contains(id) == true
                } ?? false
                if detail.stage != .decode || joining { beforeDecoding.insert(id) }
                e.cancelExternal(id: id)
                if joining {
                    #expect(e.requestDetail(id: id)?.stage == .cancelled, "joining request \(id) left at once")
                } else if detail.stage != .decode {
                    #expect(e.requestDetail(id: id)?.stage == .cancelled, "\(detail.stage) request \(id) left at once")
                }
                expectSound(e, cancelled: Array(cancelled.keys))
            }
        }
        #expect(e.runToCompletion(limit: 3_600))
        let report = e.report()
        #expect(report.requests.failureReasons["cancelled"] == cancelled.count)
        #expect(report.requests.completed + report.requests.failed == ids.count)
        #expect(decodedEarly.isEmpty, "cancelled before decode, yet decoded: \(decodedEarly)")
        #expect(Set(cancelled.values).count >= 3, "cancellations hit several stages: \(cancelled.values)")
        expectSound(e, cancelled: Array(cancelled.keys))
    }
}
