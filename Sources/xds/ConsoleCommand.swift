import ArgumentParser
import Console
import EngineRuntime
import Foundation
import PodModel
import ServingEngine

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The operations console over an embedded engine (the default command).")

    @OptionGroup var common: CommonOptions
    @Option(help: "Theme name from themes/ (dark, light, high-contrast, mono).") var theme: String?
    @Option(help: "Simulated seconds per wall second (0.1…1000), or max.") var speed: String = "1"

    func run() throws {
        let pace = try parseSpeed(speed)
        // A moderate built-in load (interfaces.md): about half of superpod's decode capacity.
        let config = try common.engineConfiguration(defaultRate: 40)
        let scenario = try common.loadScenario()
        let engine = try ServingEngine(configuration: config)
        let host = EngineHost(core: engine, speed: pace, scenario: scenario, capabilities: [.drain, .speed, .rebalance])
        host.start()
        let status = ConsoleApp.run(link: host, options: ConsoleOptions(themeName: theme))
        host.stop()
        if status != 0 { throw ExitCode(status) }
    }
}
