import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The refactor's safety net (engine-components.md §6 step 0): recorded results of a handful of
/// runs, compared byte for byte. Each golden holds the run's report (wall time zeroed) and
/// digests of its final snapshot and event log, so any change in behaviour shows, while the
/// files stay a few KB. Recorded from the engine before the refactor; `XDS_RECORD_GOLDEN=1`
/// re-records (and the commit must say why). The JSON is written with sorted keys and the
/// digests are FNV-1a over sorted-key JSON, so a golden is the same in every process.
@Suite(.timeLimit(.minutes(10))) struct GoldenTests {
    /// What one golden records.
    struct Golden: Codable, Equatable {
        var report: RunReport
        /// FNV-1a of the final snapshot as sorted-key JSON.
        var snapshotDigest: String
        /// FNV-1a of `recentEvents()` as sorted-key JSON, and how many there were.
        var eventsDigest: String
        var eventCount: Int
        /// The last few events in words, so a mismatch points somewhere.
        var lastEvents: [String]
        /// The events that show a case took the path it is named for (migration, kill-prefill,
        /// wait for repair…), in words; absent from the older goldens, so their files are unchanged.
        var witnesses: [String]?
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Recorded")

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func digest<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return String(fnv(data), radix: 16)
    }

    /// 64-bit FNV-1a of raw bytes.
    static func fnv(_ data: Data) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The golden of an engine's current state; `witness` picks the events kept in words.
    static func golden(of engine: ServingEngine, witness: ((EngineEvent) -> Bool)? = nil) throws -> Golden {
        var report = engine.report()
        report.wallSeconds = 0
        // A trace fixture is a temporary file, named anew each run.
        if report.workload?.file != nil { report.workload?.file = "(fixture)" }
        let events = engine.recentEvents()
        return Golden(report: report, snapshotDigest: try digest(engine.snapshot()),
                      eventsDigest: try digest(events), eventCount: events.count,
                      lastEvents: events.suffix(5).map(words),
                      witnesses: witness.map { events.filter($0).map(words) })
    }

    static func words(_ event: EngineEvent) -> String {
        "\(OperatorCommand.format(event.time)) \(event.kind.rawValue): \(event.message)"
    }

    /// Compares with (or, under `XDS_RECORD_GOLDEN=1`, records) `Recorded/<name>.json`.
    static func check(_ name: String, _ engine: ServingEngine, witness: ((EngineEvent) -> Bool)? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let data = try encoder().encode(try golden(of: engine, witness: witness))
        let url = directory.appendingPathComponent("\(name).json")
        if ProcessInfo.processInfo.environment["XDS_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: url)
            return
        }
        let recorded = try #require(try? Data(contentsOf: url), "no golden \(name).json; record with XDS_RECORD_GOLDEN=1",
                                    sourceLocation: sourceLocation)
        if data != recorded {
            let now = String(decoding: data, as: UTF8.self), then = String(decoding: recorded, as: UTF8.self)
            let diff = zip(now.split(separator: "\n"), then.split(separator: "\n")).first { $0 != $1 }
            Issue.record("golden \(name) differs; first differing line now/recorded: \(diff.map { "\($0.0) / \($0.1)" } ?? "(length)")",
                         sourceLocation: sourceLocation)
        }
    }

    // MARK: The runs (each also used by the fork tests as a starting point)

    static func toyPod(seed: UInt64) throws -> ServingEngine {
        try ServingEngineTests.synthetic(TestDeployments.toyPod, rate: 20, limit: 120, seed: seed)
    }

    static func superpod() throws -> ServingEngine {
        var config = EngineConfiguration(deployment: .superpod, seed: 1, syntheticRate: 40)
        config.eventCapacity = 100_000
        return try ServingEngine(configuration: config)
    }

    static func colocated() throws -> ServingEngine {
        try ServingEngineTests.synthetic(TestDeployments.colocatedLlama(), rate: 4, limit: 120)
    }

    /// Drain, an NPU fault on the decode TE and a rebalance in flight at once.
    static func faultMix(_ engine: ServingEngine, at time: SimTime = 4) {
        engine.run(until: time)
        for line in ["drain node 1", "fault npu 21", "rebalance"] {
            guard case .success(let command) = OperatorCommand.parse(line) else { continue }
            _ = engine.apply(command)
        }
    }

    /// A small Mooncake trace (shared prefixes, bursts of equal timestamps), written to a
    /// temporary file so the engine streams it from disk as it does a real trace.
    static func mooncakeFixture() throws -> String {
        var lines: [String] = []
        for i in 0..<60 {
            let shared = (0..<(i % 4 + 1)).map { "\($0 + 100 * (i % 3))" }
            let own = (0..<(i % 5)).map { "\(10_000 + i * 10 + $0)" }
            let hashes = (shared + own).joined(separator: ", ")
            let prompt = (shared.count + own.count) * 512 - (i % 7) * 13
            lines.append("{\"timestamp\": \((i / 3) * 250), \"input_length\": \(max(1, prompt)), \"output_length\": \(20 + (i * 37) % 300), \"hash_ids\": [\(hashes)]}")
        }
        return try TestScratch.write(lines.joined(separator: "\n") + "\n", name: "golden-mooncake.jsonl")
    }

    static func trace(_ path: String) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 1, workload: .trace(path: path))
        config.eventCapacity = 100_000
        return try ServingEngine(configuration: config)
    }

    // MARK: Tests

    @Test(arguments: [UInt64(1), 7])
    func toyPodToCompletion(seed: UInt64) throws {
        let engine = try Self.toyPod(seed: seed)
        #expect(engine.runToCompletion(limit: 3_600))
        try Self.check("toy-pod-seed\(seed)", engine)
    }

    @Test(arguments: [UInt64(1), 7])
    func faultPodToCompletion(seed: UInt64) throws {
        let engine = try FaultTests.engine(rate: 20, limit: 80, seed: seed)
        #expect(engine.runToCompletion(limit: 3_600))
        try Self.check("fault-pod-seed\(seed)", engine)
    }

    @Test func superpodTwentySecondsAtRate40() throws {
        let engine = try Self.superpod()
        engine.run(until: 20)
        try Self.check("superpod-20s-rate40", engine)
    }

    @Test func colocatedLlama() throws {
        let engine = try Self.colocated()
        #expect(engine.runToCompletion(limit: 3_600))
        try Self.check("colocated-2-llama-2-7b-a100-tp1", engine)
    }

    @Test func faultMixDrainNPUFaultRebalance() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 300)
        Self.faultMix(engine)
        engine.run(until: 60)
        try Self.check("fault-mix-drain-npu-rebalance", engine)
    }

    @Test func mooncakeFixture() throws {
        let path = try Self.mooncakeFixture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let engine = try Self.trace(path)
        #expect(engine.runToCompletion(limit: 3_600))
        try Self.check("mooncake-fixture-toy-pod", engine)
    }
}
