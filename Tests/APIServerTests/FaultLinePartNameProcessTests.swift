import Foundation
import Testing

/// The run summary's fault lines repeat the command as typed (`fault npu 3`, `fault die 9`: the
/// command language keeps those words on every hardware), while on a GPU cluster the rest of
/// the summary, and the fault's own reasons, name the part a GPU. The line names it too.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("FaultLinePartNameProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct FaultLinePartNameProcessTests {
    @Test func aFaultLineOnAGPUClusterNamesTheGPU() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xds-fault-line-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let scenario = dir.appendingPathComponent("gpu.toml")
        try """
        name = "GPU faults"
        [[step]]
        at = "20s"
        command = "fault npu 3"
        [[step]]
        at = "30s"
        command = "fault straggler die 9 slowdown 2"
        [[step]]
        at = "35s"
        command = "fault link 12-13"
        """.write(to: scenario, atomically: true, encoding: .utf8)
        let gpu = try runBuiltXDS(["run", "--deployment", "colocated:8:llama-3-70b:nvidia-h100:tp8", "--rate", "5",
                                   "--duration", "60s", "--scenario", scenario.path, "--quiet"])
        #expect(gpu.status == 0, "\(gpu)")
        #expect(gpu.out.contains("\n    #1 fault npu 3 (GPU 3) at 0:00:20: "), "\(gpu.out)")
        #expect(gpu.out.contains("\n    #2 fault straggler die 9 slowdown 2 (GPU 9) at 0:00:30: "), "\(gpu.out)")
        #expect(gpu.out.contains("\n    #3 fault link 12-13 (GPU 12 ↔ GPU 13) at 0:00:35: "), "\(gpu.out)")
        // Ascend's words are the command's own: the line is as typed.
        let ascend = try runBuiltXDS(["run", "--duration", "60s", "--rate", "5", "--scenario", scenario.path, "--quiet"])
        #expect(ascend.status == 0 && ascend.out.contains("\n    #1 fault npu 3 at 0:00:20: "), "\(ascend)")
        #expect(ascend.out.contains("\n    #2 fault straggler die 9 slowdown 2 at 0:00:30: "), "\(ascend.out)")
    }
}
