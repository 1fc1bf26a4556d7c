import Foundation
import Testing
@testable import PodModel

/// Every integer field of every preset, set to each edge value in turn: the TOML reader and
/// validate() must either accept the layout (and then it fits the pod) or refuse it with one
/// ConfigError line — never trap on overflow, never loop over a hostile count.
@Suite(.timeLimit(.minutes(10))) struct DeploymentEdgeValueTests {
    static let edges = [Int.min, -(1 << 40), -1, 0, 1, 2, 3, 7, 31, 32, 95, 96, 127, 128, 160, 288, 320, 383, 384,
                        385, 768, 769, 4_096, 16_384, 16_385, 1 << 31, 1 << 40, 1 << 62, Int.max]

    /// (line index, line) of every `key = integer` line of a TOML text.
    static func integerLines(_ text: String) -> [(Int, String)] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { i, line in
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, Int(parts[1]) != nil else { return nil }
            return (i, parts[0])
        }
    }

    @Test(arguments: Deployment.presetNames)
    func everyIntegerFieldAtEveryEdge(preset: String) throws {
        let text = try #require(Deployment.preset(preset)).toml()
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var accepted = 0, refused = 0
        for (index, key) in Self.integerLines(text) {
            let original = lines[index]
            for value in Self.edges {
                lines[index] = "\(key) = \(value)"
                do {
                    let d = try Deployment(toml: lines.joined(separator: "\n"), source: "fuzz.toml")
                    let topology = try d.topology()
                    let used = d.usedNPUs()
                    #expect(used.allSatisfy { (0..<topology.npuCount).contains($0) }, "\(key) = \(value)")
                    #expect(Set(used).count == used.count, "\(key) = \(value): an NPU used twice")
                    accepted += 1
                } catch let error as ConfigError {
                    #expect(!error.description.contains("\n"), "\(key) = \(value): \(error)")
                    #expect(error.description.hasPrefix("fuzz.toml"), "\(key) = \(value): \(error)")
                    refused += 1
                }
            }
            lines[index] = original
        }
        #expect(accepted > 0 && refused > 0)
    }

    @Test func inlineSpecsAtEveryEdge() throws {
        for profile in HardwareProfile.names {
            for n in Self.edges.map(String.init) + ["", "x", "1e3", "٣"] {
                for k in Self.edges.map(String.init) + ["", "-"] {
                    let spec = "colocated:\(n):llama-2-7b:\(profile):tp\(k)"
                    do {
                        let d = try Deployment.resolve(spec)
                        try d.validate()
                        #expect(d.usedNPUs().count <= (try d.topology()).npuCount, "\(spec)")
                    } catch let error as ConfigError {
                        #expect(!error.description.contains("\n"), "\(spec): \(error)")
                    }
                }
            }
        }
    }
}

/// A group that runs past the pod names the instance, the NPUs it would take and the pod's range
/// (it said "instance 0 needs NPU 168, but the pod has 168 NPUs").
@Suite struct DeploymentRangeMessageTests {
    @Test func aGroupPastThePodNamesTheNPUsItWouldTake() throws {
        let text = try #require(Deployment.preset("superpod")).toml()
            .replacingOccurrences(of: "nodes = 48", with: "nodes = 21")
        #expect(throws: ConfigError.self) { try Deployment(toml: text, source: "t.toml") }
        do {
            _ = try Deployment(toml: text, source: "t.toml")
        } catch let error as ConfigError {
            #expect(error.description == "t.toml:18: deployment 'superpod', decode group: instance 0 would take NPUs "
                    + "128…287, but the pod has NPUs 0…167 (168 NPUs, 336 dies); lower count or first_npu, or raise nodes")
        }
        // The second of two decode instances is the one that does not fit in 48 nodes.
        let two = try #require(Deployment.preset("superpod")).toml()
            .replacingOccurrences(of: "count = 1\nnpus = 160", with: "count = 2\nnpus = 160")
        do {
            _ = try Deployment(toml: two, source: "t.toml")
            Issue.record("two decode instances of 160 NPUs from NPU 128 fit in 384 NPUs")
        } catch let error as ConfigError {
            #expect(error.description.contains("instance 1 would take NPUs 288…447, but the pod has NPUs 0…383"), "\(error)")
        }
    }
}
