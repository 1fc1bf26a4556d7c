import ArgumentParser
import Foundation
import APIServer
import PodModel
import ServingEngine

/// `xds`: argument parsing and wiring only (architecture.md); the work lives in the libraries.
///
/// Every command names itself (`commandName:`): without it ArgumentParser derives the name with
/// `String(describing:)` on the type, whose dynamic casts scan every protocol conformance in the
/// process; run, serve and validate cost ~8 M instructions that way on every start.
struct XDS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xds",
        abstract: "xDeepServe digital twin: an operations console over a simulated CloudMatrix384 SuperPod.",
        version: APIServer.version,
        subcommands: [ConsoleCommand.self, Serve.self, Run.self, BenchGroup.self, Validate.self, DemoConsole.self],
        defaultSubcommand: ConsoleCommand.self)
}

/// Entry point: every error becomes one line on stderr and a non-zero exit, never a stack trace.
@main
enum Main {
    static func main() {
        do {
            var command: any ParsableCommand = try fastRun() ?? XDS.parseAsRoot()
            try command.run()
            // Every command's report (bench, validate, …), as `run` checks its own.
            try ReportOutput.flush()
        } catch {
            guard isArgumentParserError(error) else { fail(ErrorLine.describe(error)) }
            let code = XDS.exitCode(for: error)
            if code == .success {
                print(XDS.fullMessage(for: error))
                let what = CommandLine.arguments.dropFirst().contains("--version") ? "the version" : "the help"
                do { try ReportOutput.flush(what: what) } catch { fail(ErrorLine.describe(error)) }
                exit(0)
            }
            if error is ExitCode {
                // A failing `validate` printed its table before its exit status: lost, it is said too.
                do { try ReportOutput.flush() } catch { fail(ErrorLine.describe(error), code: code.rawValue) }
                exit(code.rawValue)
            }
            if let suggestion = CommandLineChecks.subcommandSuggestion(for: Array(CommandLine.arguments.dropFirst())) {
                fail(suggestion, code: code.rawValue)
            }
            // ArgumentParser adds usage lines; the first line says what was wrong. It may echo
            // what the user typed, so it is made terminal-safe like every other message.
            let first = XDS.message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            fail(first.isEmpty ? ErrorLine.describe(error) : first.terminalSafe, code: code.rawValue)
        }
    }

    /// `xds run …` from ``RunFastPath`` when it reads the line (nil: ArgumentParser parses it,
    /// help and errors included). Debug builds check the result against ArgumentParser's.
    static func fastRun() -> Run? {
        let arguments = CommandLine.arguments
        guard arguments.count > 1, arguments[1] == "run", let run = RunFastPath.parse(arguments.dropFirst(2))
        else { return nil }
        #if DEBUG
        let parsed = try? XDS.parseAsRoot(Array(arguments.dropFirst()))
        assert(parsed.map { String(reflecting: $0) } == String(reflecting: run),
               "RunFastPath disagrees with ArgumentParser: \(String(reflecting: run))")
        #endif
        return run
    }

    /// Help, usage errors and exit codes: ArgumentParser formats those itself.
    static func isArgumentParserError(_ error: any Error) -> Bool {
        String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }

    /// One line on stderr and a non-zero exit. `message` is already one terminal-safe line.
    static func fail(_ message: String, code: Int32 = 1) -> Never {
        StandardError.write(Data("xds: \(message)\n".utf8))
        exit(code == 0 ? 1 : code)
    }
}

/// stderr, for notes and refusals. `FileHandle.write(_:)` traps when stderr cannot take the bytes
/// (a full disk, a closed pipe): "Fatal error", a stack trace and exit 132, where a refusal exits 1
/// and a run with a note runs. What cannot be written is lost; the command goes on.
enum StandardError {
    static func write(_ data: Data) { try? FileHandle.standardError.write(contentsOf: data) }
}

/// The long options a command line names, for a check of which were given at all (an option
/// with a default cannot tell "given as the default" from "not given" after parsing).
enum GivenOptions {
    /// Each long option's name (without `--`) once, in the order typed. `arguments` has been
    /// parsed already, so the word after an option in `valued` (not written `--name=value`) is
    /// its value, not an option, even when it starts with `--`.
    static func names(in arguments: [String], valued: Set<String>) -> [String] {
        var given: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            i += 1
            guard word.hasPrefix("--"), word.count > 2 else { continue }
            let name = String(word.dropFirst(2).prefix { $0 != "=" })
            if !word.contains("="), valued.contains(name) { i += 1 }
            if !given.contains(name) { given.append(name) }
        }
        return given
    }
}

/// Options that pick a deployment: a preset, an inline colocated spec, or a TOML file.
struct DeploymentOption: ParsableArguments {
    @Option(name: .long, help: "Preset (superpod, cloudmatrix-infer, xdeepserve-ma, colocated-288), colocated:N:MODEL:PROFILE:tpK, or FILE.toml.")
    var deployment: String = RunDefaults.deployment

    @Option(name: .long, help: "Catalogue model to serve instead of the deployment's (deepseek-r1, deepseek-v3, kimi-k2, qwen3-235b-a22b, llama-3-70b, llama-2-7b); the expert layout is fitted to it and each change printed on stderr.")
    var model: String?

    /// The deployment, checked. Called once per command: with `--model` it prints its changes
    /// (those of a layout the engine refuses only with `changesOfARefusedFit`: `--print-config`
    /// writes such a layout for the user to edit, and says what the fit changed).
    func resolve(changesOfARefusedFit: Bool = false) throws -> Deployment {
        // A file's text is kept for the line of a `[policies]` name the engine refuses below.
        let text = deployment.hasSuffix(".toml") ? try TOMLDocument.read(path: deployment, what: "deployment file") : nil
        var d = try text.map { try Deployment(toml: $0, source: deployment) } ?? Deployment.resolve(deployment)
        var fitChanges: [String] = []
        if let model {
            let spec = try ModelSpec.named(model)
            // Another model than the deployment's own: its expert layout is fitted to the model
            // and each change said once, before the run (a file the user wrote for its own model
            // is not touched, so its numbers keep their validation and errors).
            if spec.name != d.model.lowercased() {
                let fit = try d.fitted(to: spec)
                let origin = "\(spec.name) on \(d.name)".terminalSafe
                fitChanges = fit.changes.map { "xds: \(origin): \($0)\n" }
                d = fit.deployment
            }
        }
        // Always: an inline colocated:… spec is only shaped by resolve(), and the engine
        // trusts the layout it is given (its sizes feed allocations and index arithmetic).
        try d.validate()
        // Every command that reads a deployment (run, serve, console, bench decode and prefill)
        // checks its `[policies]` names, even one that does not use them: a misspelt name is a
        // mistake in the file the user should hear about from whichever command reads it first.
        // `file:LINE:` as the file's own reader says it, when the key's line is found.
        if let (key, message) = Policies.problemKey(in: d.policies) {
            let line = text.flatMap { TOMLDocument.line(ofKey: key, inTable: "policies", text: $0) }.map { ":\($0)" } ?? ""
            throw ConfigError("\(deployment)\(line): [policies] \(message)")
        }
        // `je_routing = "Round-Robin"` runs, prints (--print-config) and reports as registered.
        d.policies = Policies.canonical(d.policies)
        // The fit's changes are said once the layout is known to run: a fit the layout is refused
        // after anyway (validation, or weights that leave no KV room on a group the fitter could
        // not grow: an external group at its device bound) gave its change lines and then the
        // refusal, two steps for one outcome. The refusal alone is the answer then, and says what
        // to change (one more engine is built to find out: milliseconds, and only with --model).
        if !fitChanges.isEmpty, changesOfARefusedFit || ServingEngine.noKVRoomRefusal(for: d) == nil {
            for line in fitChanges { StandardError.write(Data(line.utf8)) }
        }
        return d
    }
}

/// What a command printed on stdout, pushed out and checked: `xds bench decode --json >
/// report.json` (and every other command that prints a report) on a full disk exited 0 with the
/// report lost, where `--out` on a full disk said so and exited 1.
enum ReportOutput {
    /// Flushes every C stream (`stdout` itself cannot be named under strict concurrency; it is the
    /// only one with bytes in it) and throws the one line when stdout did not take `what`.
    static func flush(what: String = "the report") throws {
        if fflush(nil) != 0 {
            throw ConfigError("stdout: writing \(what) failed (\(String(cString: strerror(errno))))")
        }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONOutput.encoder(pretty: true)
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// `--eplb ON` as `--eplb on`: mode names are matched in any ASCII case, as policy names are.
extension EPLBMode: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: PolicyNames.folded(argument)) }
}
/// `--routing Balanced` and `--mix Chat` as the lower-case names, like `--eplb` and the policy
/// flags: they were refused while `--eplb ON` and `--autoscale SLO` were taken.
extension RoutingSkew: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: PolicyNames.folded(argument)) }
}
extension EngineConfiguration.TrafficMix: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: PolicyNames.folded(argument)) }
}
