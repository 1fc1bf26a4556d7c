import Foundation
import Testing
import XDSTestSupport

/// What only the engine finds wrong with a deployment file (weights that leave no HBM for KV, no
/// prefill or no decode capacity) named the file but not the line, while every other refusal of
/// the file says `file:LINE:`: the line of the group's `[[…]]` header now, as the range checks
/// across a group's keys say it. Through the built executable, as a user types `xds run`.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("DeploymentFileEngineLineTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct DeploymentFileEngineLineTests {
    func run(_ toml: String, _ extra: [String] = []) throws -> (status: Int32, err: String, path: String) {
        let dir = try TestScratch.makeDirectory("xds-engine-line")
        let file = dir.appendingPathComponent("x.toml")
        try Data(toml.utf8).write(to: file)
        let r = try runBuiltXDS(["run", "--deployment", file.path, "--duration", "1s"] + extra)
        return (r.status, r.err, file.path)
    }

    @Test func weightsThatLeaveNoKVNameTheGroupsLine() throws {
        let r = try run("model = \"llama-3-70b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n[[colocated]]\nnpus = 1\ntp = 1\n")
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("xds: \(r.path):5: llama-3-70b weights leave no HBM for KV cache on the colocated group:"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "\(r.err)")
    }

    /// Of two groups, the one that does not fit: the decode group's header, not the prefill's.
    @Test func theGroupThatDoesNotFitIsNamed() throws {
        let r = try run("model = \"llama-3-70b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n[[prefill]]\nnpus = 4\ntp = 4\n\n"
            + "[[decode]]\nfirst_npu = 4\nnpus = 1\ntp = 1\n", ["--rate", "1"])
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("xds: \(r.path):9: llama-3-70b weights leave no HBM for KV cache on the decode group:"), "\(r.err)")
    }

    @Test func missingCapacityNamesTheLineOfTheGroupThere() throws {
        let r = try run("model = \"llama-2-7b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n[[decode]]\nnpus = 1\n", ["--rate", "1"])
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("xds: \(r.path):5: deployment 'x.toml' needs prefill and decode capacity"), "\(r.err)")
        #expect(r.err.contains("no prefill or colocated group"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "\(r.err)")
    }
}
