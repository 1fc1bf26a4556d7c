import Foundation
import PodModel
import ServingEngine
import SimKit
import Testing
import XDSTestSupport

/// The request table on demand (issue 13): every request in flight can be paged through, sorted
/// and filtered by the engine, and each request's stages carry the engine's own times.
@Suite(.timeLimit(.minutes(10))) struct RequestQueryTests {
    /// The fault pod under more load than it takes: a few hundred requests in flight.
    static func busyEngine(rate: Double = 400, requests: Int = 1_500) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: TestDeployments.faultPod, seed: 5, syntheticRate: rate)
        config.expertSkew = false
        config.eplb = .perfect
        config.eventCapacity = 100_000
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: rate)
        synthetic.maxRequests = requests
        synthetic.maxOutputTokens = 512
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 5, configuration: synthetic))
    }

    @Test func pagesReachEveryRequestInFlightInTheirOrder() throws {
        let engine = try Self.busyEngine()
        engine.run(until: 4)
        let inFlight = engine.snapshot().requests.inFlight
        #expect(inFlight > 200, "the test wants more in flight than a snapshot lists (got \(inFlight))")
        for sort in RequestSort.allCases {
            for reversed in [false, true] {
                var seen: [RequestStatus] = []
                var offset = 0
                while true {
                    let page = engine.requestPage(RequestQuery(sort: sort, reversed: reversed, offset: offset, limit: 97))
                    #expect(page.inFlight == inFlight && page.matching == inFlight)
                    seen += page.rows
                    offset += page.rows.count
                    if page.rows.count < 97 || offset >= inFlight { break }
                }
                #expect(seen.count == inFlight, "\(sort) \(reversed)")
                #expect(Set(seen.map(\.id)).count == inFlight, "no request twice: \(sort) \(reversed)")
                let whole = engine.requestPage(RequestQuery(sort: sort, reversed: reversed, offset: 0, limit: 1_000)).rows
                #expect(whole.map(\.id) == Array(seen.prefix(1_000)).map(\.id), "pages join up to the whole list: \(sort)")
                if sort == .age {
                    let arrivals = seen.map(\.arrivedAt)
                    #expect(arrivals == (reversed ? arrivals.sorted(by: >) : arrivals.sorted()))
                }
                if sort == .prompt && !reversed {
                    #expect(seen.map(\.promptTokens) == seen.map(\.promptTokens).sorted(by: >))
                }
            }
        }
        // The snapshot's rows and the page's agree field by field.
        let listed = engine.snapshot().inFlight
        let paged = engine.requestPage(RequestQuery(sort: .id, limit: listed.count)).rows
        #expect(paged == listed)
        // An offset past the end is clamped to the last row.
        let last = engine.requestPage(RequestQuery(sort: .id, offset: 10_000_000, limit: 5))
        #expect(last.query.offset == inFlight - 1 && last.rows.count == 1)
        #expect(engine.audit().isEmpty)
    }

    @Test func theFilterMatchesIdStageAndPlace() throws {
        let engine = try Self.busyEngine()
        engine.run(until: 4)
        let all = engine.requestPage(RequestQuery(sort: .id, limit: 1_000)).rows
        let decoding = engine.requestPage(RequestQuery(sort: .id, filter: "DECODE", limit: 1_000))
        #expect(decoding.matching == all.filter { $0.stage == .decode || $0.location.contains("decode") }.count)
        #expect(decoding.matching > 0 && decoding.rows.allSatisfy { $0.stage == .decode || $0.location.contains("decode") })
        let one = all[all.count / 2]
        let byId = engine.requestPage(RequestQuery(filter: "#\(one.id)", limit: 10))
        #expect(byId.rows.contains(one))
        #expect(engine.requestPage(RequestQuery(filter: "no such place", limit: 10)).matching == 0)
    }

    @Test func queriesAreCheckedAgainstTheirRanges() {
        #expect(RequestQuery(limit: 0).problem == "limit must be within 1…1000, got 0")
        #expect(RequestQuery(limit: 1_001).problem != nil)
        #expect(RequestQuery(offset: -1).problem == "offset must be within 0…10000000, got -1")
        #expect(RequestQuery(filter: String(repeating: "x", count: 201)).problem != nil)
        #expect(RequestQuery().problem == nil)
    }

    @Test func detailCarriesTheEngineTimesOfEachStage() throws {
        let engine = try Self.busyEngine(rate: 20, requests: 60)
        engine.run(until: 30)
        let finished = engine.snapshot().recent.filter { $0.stage == .completed }
        #expect(!finished.isEmpty)
        for status in finished {
            guard let d = engine.requestDetail(id: status.id) else {
                Issue.record("no detail for finished request \(status.id)")
                continue
            }
            // Every stage of a disaggregated request, in order, from the engine's stamps.
            let times = [d.arrivedAt, d.prefillStartedAt, d.prefillEndedAt, d.transferStartedAt, d.transferEndedAt,
                         d.decodeJoinedAt, d.firstTokenAt, d.finishedAt]
            #expect(!times.contains(nil), "request \(d.id): \(d)")
            let known = times.compactMap { $0 }
            #expect(known == known.sorted(), "request \(d.id) stages out of order: \(known)")
            #expect(d.stage == .completed && d.generatedTokens == status.generatedTokens)
            #expect(d.prefillInstance?.hasPrefix("prefill") == true && d.decodeInstance?.hasPrefix("decode") == true)
            #expect(d.decodeGroup != nil && d.prefillGroup != nil && d.reprefills == 0)
            #expect(abs((d.firstTokenAt! - d.arrivedAt) * 1000 - status.ttftMs!) < 1e-6)
            #expect(d.finishedAt == status.finishedAt)
        }
        // In flight: stages reached so far only.
        engine.run(until: 30.5)
        for status in engine.snapshot().inFlight {
            let d = try #require(engine.requestDetail(id: status.id))
            #expect(d.finishedAt == nil && d.stage == status.stage)
            if status.stage == .queued { #expect(d.prefillStartedAt == nil) }
        }
        #expect(engine.requestDetail(id: 10_000_000) == nil)
    }

    @Test func faultsCountTheirRequestsAndTheRequestsKnowIt() throws {
        let engine = try Self.busyEngine(rate: 60, requests: 2_000)
        engine.run(until: 5)
        #expect(engine.apply(try OperatorCommand.parse("fault npu 20").get()).accepted)
        engine.run(until: 15)
        let report = engine.report()
        let detail = try #require(report.faultDetails.first)
        let status = try #require(engine.snapshot().activeFaults.first)
        // The snapshot carries the engine's own counts, the same as the report's.
        #expect(status.requestsReprefilled == detail.requestsReprefilled)
        #expect(status.requestsFailed == detail.requestsFailed)
        #expect(detail.requestsReprefilled > 0, "NPU 20 hosted decode requests that had to be prefilled again")
        // Those requests say they were re-prefilled.
        let ids = engine.requestPage(RequestQuery(sort: .id, limit: 1_000)).rows.map(\.id)
            + engine.snapshot().recent.map(\.id)
        let reprefilled = ids.compactMap { engine.requestDetail(id: $0) }.filter { $0.reprefills > 0 }
        #expect(!reprefilled.isEmpty)
        for d in reprefilled {
            let requeued = try #require(d.requeuedAt)
            #expect(requeued >= 5 && requeued <= 15 && requeued >= d.arrivedAt)
            if let start = d.prefillStartedAt { #expect(start >= requeued) }
        }
        #expect(engine.audit().isEmpty)
    }
}
