import ArgumentParser
import Console
import Foundation
import XDSTestSupport

/// `xds bench console`: how many frames of every view the console renders per CPU second
/// at 200×60 from the fixed superpod snapshot (architecture.md budget: 10 fps in < 10% of a core).
struct BenchConsole: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "Frames per CPU second rendering every view at 200×60")

    @Option(parsing: .unconditional, help: "Frames to render (cycling through the six views), \(FlagLimits.frames.allowed).")
    var frames: CLINumber = 600

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        // `0..<frames` traps on a negative count: checked first.
        let frames = try FlagLimits.frames.int(frames)
        let snapshot = SnapshotFixtures.superpod
        let theme = Theme.builtinDark
        var state = ConsoleState(width: 200, height: 60)
        state = ConsoleUpdate.update(state, .tick(snapshot)).0
        var previous: CellBuffer?
        var changedCells = 0
        let start = clock()
        for i in 0..<frames {
            state.view = ConsoleView.allCases[i % ConsoleView.allCases.count]
            let frame = ConsoleScreen.render(state, snapshot, theme: theme, width: 200, height: 60)
            // The backend diffs every frame against the last, so the bench pays for it too.
            changedCells += frame.diff(from: previous).reduce(0) { $0 + $1.cells.count }
            previous = frame
        }
        let cpuSeconds = max(Double(clock() - start) / Double(CLOCKS_PER_SEC), 1e-9)
        let fps = Double(frames) / cpuSeconds
        let msPerFrame = cpuSeconds * 1000 / Double(max(frames, 1))
        if json {
            try printJSON(["frames": Double(frames), "frames_per_cpu_second": rounded(fps), "ms_per_frame": rounded(msPerFrame)])
        } else {
            print(
                "\(frames) frames at 200×60: \(rounded(fps)) frames per CPU second, \(rounded(msPerFrame)) ms per frame (\(changedCells) cells changed)"
            )
        }
    }

    private func rounded(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
