import PodModel
import Foundation
import Testing
import XDSTestSupport
@testable import ServingEngine

/// The snapshot carries, per TE, the KV blocks its requests hold and those reserved for the
/// rest of their replies (`kvBlocksHeld`, `kvBlocksReserved`, over `kvBlocksTotal`): the KV
/// view's strip draws each decode group's held + reserved share, and the TE panel beside it
/// showed only the held share (`kvUsage`), a different scope for the same replica.
@Suite struct TEKVHeldReservedTests {
    static func engine(_ spec: String, until: Double = 10) throws -> ServingEngine {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(spec),
                                                                          seed: 1, syntheticRate: 4))
        engine.run(until: until)
        return engine
    }

    /// Summed over the TEs that decode, held + reserved is the strip's total at the same instant:
    /// the blocks its groups hold and reserve (each group's share times its size). Per TE, the
    /// share is its groups' mean in the strip, and the held count gives `kvUsage`.
    @Test(arguments: ["colocated:8:llama-3-70b:nvidia-h100:tp8", "superpod", "colocated-288"])
    func heldPlusReservedAddsUpToTheStrip(spec: String) throws {
        try Self.checkAgainstTheStrip(try Self.engine(spec))
    }

    /// With decode shrunk around a dead NPU (DP 320 to 318), the fenced groups are in neither
    /// the strip nor the TE's counts.
    @Test func fencedGroupsAreInNeither() throws {
        let e = try Self.engine("superpod")
        #expect(e.apply(.faultNPU(280)).accepted)
        e.run(until: 20)
        let decode = try #require(e.instances.firstIndex { $0.role == .decode })
        try #require(!e.fencedGroups(of: decode).isEmpty, "decode did not shrink")
        try Self.checkAgainstTheStrip(e)
    }

    static func checkAgainstTheStrip(_ e: ServingEngine) throws {
        let s = e.snapshot()
        var stripBlocks = 0.0, teBlocks = 0, next = 0
        for (i, te) in s.instances.enumerated() {
            let total = try #require(te.kvBlocksTotal), held = try #require(te.kvBlocksHeld)
            let reserved = try #require(te.kvBlocksReserved)
            let fenced = e.fencedGroups(of: i), running = e.instances[i].groupCount - fenced.count
            #expect(total == e.kvStore.withGroups(of: i) { g in g.indices.reduce(0) { fenced.contains($1) ? $0 : $0 + g[$1].totalBlocks } })
            #expect(abs(Double(held) / Double(total) - te.kvUsage) < 1e-12, "\(te.name)")
            guard e.instances[i].hasDecode else { continue }
            let groups = s.kv.decodeGroups[next..<(next + running)]
            next += running
            let perGroup = Double(total) / Double(groups.count)
            stripBlocks += groups.reduce(0) { $0 + $1 * perGroup }
            teBlocks += held + reserved
            let share = try #require(te.kvHeldPlusReservedShare)
            #expect(abs(share - groups.reduce(0, +) / Double(groups.count)) < 1e-12, "\(te.name)")
        }
        #expect(next == s.kv.decodeGroups.count)
        #expect(teBlocks > 0, "nothing held: the check says nothing")
        #expect(abs(stripBlocks - Double(teBlocks)) < 1e-6, "strip \(stripBlocks) TEs \(teBlocks)")
        // Held + reserved covers the tokens written (prompts plus tokens generated so far).
        let capacity = s.instances.filter { $0.kind != "prefill" }.reduce(0) { $0 + ($1.kvBlocksTotal ?? 0) }
        #expect(Double(teBlocks) / Double(capacity) >= s.kv.decodeUsage, "\(teBlocks)/\(capacity) vs \(s.kv.decodeUsage)")
        // Reading the snapshot moved no block.
        #expect(e.audit() == [])
    }

    /// The keys are in the JSON under their names; a snapshot without them (an older server's)
    /// still decodes, with no share.
    @Test func jsonKeysAndAnOlderServer() throws {
        let s = try Self.engine("colocated:8:llama-3-70b:nvidia-h100:tp8").snapshot()
        let json = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        for key in ["\"kvBlocksTotal\"", "\"kvBlocksHeld\"", "\"kvBlocksReserved\"", "\"kvUsage\""] {
            #expect(json.contains(key), "\(key)")
        }
        var old = s
        for i in old.instances.indices { (old.instances[i].kvBlocksTotal, old.instances[i].kvBlocksHeld, old.instances[i].kvBlocksReserved) = (nil, nil, nil) }
        let decoded = try JSONDecoder().decode(Snapshot.self, from: try JSONEncoder().encode(old))
        #expect(decoded.instances.allSatisfy { $0.kvHeldPlusReservedShare == nil })
    }
}
