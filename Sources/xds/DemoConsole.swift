import ArgumentParser
import Console
import Foundation
import Synchronization
import XDSTestSupport

/// `xds demo-console` (hidden): the console on a ``FakeEngineLink`` whose snapshot ticks,
/// for trying the TUI and for `.ci/console-smoke.sh` before the engine is wired in.
struct DemoConsole: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-console", abstract: "The console on a fake engine (for smoke tests)",
        shouldDisplay: false)

    @Option(help: "Theme name from themes/.")
    var theme: String?

    @Flag(help: "Drop the fault and rebalance capabilities (to see them greyed out).")
    var noFaults = false

    func run() throws {
        try ConsoleCommand.checkTheme(theme)
        let link = FakeEngineLink()
        if noFaults { link.capabilities = [.drain, .speed] }
        let ticker = Ticker(link: link)
        ticker.start()
        let status = ConsoleApp.run(link: link, options: ConsoleOptions(themeName: theme))
        ticker.stop()
        if status != 0 { throw ExitCode(status) }
    }
}

/// Advances the fake engine's clock five times a second, like the engine's snapshot mailbox.
private final class Ticker: Sendable {
    let link: FakeEngineLink
    let stopped = Atomic<Bool>(false)
    init(link: FakeEngineLink) { self.link = link }

    func start() {
        Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                Thread.sleep(forTimeInterval: 0.2)
                link.advance(seconds: 0.2)
            }
        }.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
