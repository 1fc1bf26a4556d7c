import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// On single-die hardware (a GPU: one die per device) the fault menu offered "fail die N" and
/// "fail GPU N", two items that fail the same device. There it offers the device once; the
/// superpod (2 dies per chip: a die is half a chip) keeps both.
@Suite struct SingleDieFaultMenuTests {
    /// The device an item's command fails outright ("fault die D" and "fault npu N").
    static func failedDevice(_ command: String, dies: Int) -> Int? {
        let words = command.split(separator: " ")
        guard words.count == 3, words[0] == "fault", let n = Int(words[2]) else { return nil }
        return words[1] == "die" ? n / dies : words[1] == "npu" ? n : nil
    }

    @Test(arguments: [0, 3, 7])
    func noTwoItemsFailTheSameGPU(gpu: Int) {
        let menu = FaultMenu(npu: gpu, diesPerNPU: 1, deviceWord: "GPU")
        let devices = menu.items.compactMap { Self.failedDevice($0.command, dies: 1) }
        #expect(devices == [gpu], "\(menu.items.map(\.label))")
        #expect(menu.items.map(\.label).first == "fail GPU \(gpu)")
        #expect(!menu.items.contains { $0.label.hasPrefix("fail die") })
    }

    @Test func theSuperpodMenuIsUnchanged() {
        let menu = FaultMenu(npu: 37)
        #expect(menu.items.map(\.label) == [
            "fail die 74", "fail NPU 37", "fail node 4", "straggler die 74 (slowdown 2×)", "HBM error on die 74",
            "network glitch",
        ])
        #expect(menu.items.map(\.command) == [
            "fault die 74", "fault npu 37", "fault node 4", "fault straggler die 74 slowdown 2", "fault hbm die 74",
            "fault glitch",
        ])
    }

    /// What the operator sees on a GPU deployment at 80×24: the GPU once, numbered from 1, and
    /// the footer's number range matching the items.
    @Test func gpuMenuOnScreen() throws {
        let s = OtherDeploymentRenderTests.snapshot
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(s)).0
        state = ConsoleUpdate.update(state, .key(.char("f"))).0
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 80, height: 24).lines
        let text = lines.joined(separator: "\n")
        #expect(lines.contains { $0.contains(" 1  fail GPU 0") }, "\(text)")
        #expect(!text.contains("fail die"), "\(text)")
        let count = try #require(state.faultMenu?.items.count)
        #expect(lines.contains { $0.contains("1-\(count) or Enter") }, "\(text)")
        // Its number key picks it.
        state = ConsoleUpdate.update(state, .key(.char("1"))).0
        #expect(state.confirmation?.command == "fault npu 0")
    }
}
