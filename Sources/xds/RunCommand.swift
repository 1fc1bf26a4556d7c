import ArgumentParser
import Foundation
import PodModel
import ServingEngine

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Headless run; prints a report at the end (JSON with --json).")
    @OptionGroup var deployment: DeploymentOption
    @Flag(help: "Print the deployment as TOML (a starting point for --deployment FILE.toml) and exit.")
    var printConfig = false

    func run() throws {
        let d = try deployment.resolve()
        if printConfig {
            print(d.toml(), terminator: "")
            return
        }
        throw ConfigError("the serving engine is not wired into 'xds run' yet (issue 3); use --print-config, 'xds bench' or 'xds validate'")
    }
}
