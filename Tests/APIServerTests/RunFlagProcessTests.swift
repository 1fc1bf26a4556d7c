import Foundation
import Testing
import XDSTestSupport

/// `xds run` flags as a user types them, through the built executable (the flags are read by the
/// `xds` target, which tests cannot import): a bad value is one line and exit 1 with nothing run;
/// policy and mode names are taken in any ASCII case, as the command language takes them.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("RunFlagProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct RunFlagProcessTests {
    /// Runs `xds` with `arguments` to its end: exit status, stdout, stderr.
    func xds(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) { try runBuiltXDS(arguments) }

    /// Without `--rate`, a run's load is the superpod's 10 req/s scaled to the deployment's decode
    /// capacity (two A100s got 10 req/s and a TTFT p99 of 28 s), and the summary and the report
    /// say what was offered; `--rate` is taken as given.
    @Test func theDefaultLoadIsScaledToTheDeploymentAndNamed() throws {
        let small = ["run", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--duration", "60s", "--speed", "max"]
        let summary = try xds(small)
        #expect(summary.status == 0, "\(summary.err)")
        let load = try #require(summary.out.split(separator: "\n").first { $0.hasPrefix("  load ") }, "\(summary.out)")
        let rate = try #require(Double(load.split(separator: " ")[2]), "\(load)")
        #expect(rate > 0.01 && rate < 0.2, "\(load)")
        #expect(load.hasSuffix("req/s (mixed traffic)"), "\(load)")
        let json = try xds(small + ["--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let workload = try #require(report["workload"] as? [String: Any], "\(json.out)")
        #expect(workload["source"] as? String == "synthetic")
        #expect(workload["rate_per_s"] as? Double == rate)
        #expect(workload["mix"] as? String == "mixed")
        let given = try xds(small + ["--rate", "3", "--json"])
        let givenReport = try #require(try JSONSerialization.jsonObject(with: Data(given.out.utf8)) as? [String: Any])
        #expect((givenReport["workload"] as? [String: Any])?["rate_per_s"] as? Double == 3)
        let superpod = try xds(["run", "--duration", "20s", "--speed", "max"])
        #expect(superpod.out.contains("\n  load      synthetic 10 req/s (mixed traffic)\n"), "\(superpod.out)")
    }

    /// The summary's load line names a surge that ended before the run did: a scenario going
    /// 10 → 200 → 40 req/s read "10 req/s at the start, 40 at the end".
    @Test func theLoadLineNamesTheHighestRateOfTheRun() throws {
        let dir = try TestScratch.makeDirectory("xds-surge")
        let scenario = dir.appendingPathComponent("surge.toml")
        try Data("name = \"s\"\n[[step]]\nat = \"10s\"\ncommand = \"rate 2\"\n[[step]]\nat = \"20s\"\ncommand = \"rate 0.5\"\n".utf8)
            .write(to: scenario)
        let run = try xds(["run", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--rate", "0.2", "--duration", "30s",
                           "--scenario", scenario.path])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("\n  load      synthetic 0.2 req/s at the start, 0.5 at the end, 2 at most (mixed traffic)\n"),
                "\(run.out)")
    }

    /// `--requests-out rows.csv` wrote JSON Lines into the .csv file (`pandas.read_csv` read one
    /// garbled column per key). A .csv name gets CSV: a header of the documented keys, then the
    /// same rows as the JSON Lines, an empty field for `null`.
    @Test func requestRowsToACSVFileAreCSV() throws {
        let dir = try TestScratch.makeDirectory("xds-rows-csv")
        let scenario = dir.appendingPathComponent("glitch.toml")
        try Data("name = \"g\"\n[[step]]\nat = \"20s\"\ncommand = \"fault glitch\"\n".utf8).write(to: scenario)
        let base = ["run", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--rate", "10", "--duration", "40s",
                    "--recovery-policy", "restart-world", "--scenario", scenario.path, "--quiet"]
        let jsonl = dir.appendingPathComponent("rows.jsonl"), csv = dir.appendingPathComponent("rows.CSV")
        #expect(try xds(base + ["--requests-out", jsonl.path]).status == 0)
        #expect(try xds(base + ["--requests-out", csv.path]).status == 0)
        let objects = try String(contentsOf: jsonl, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let columns = ["id", "arrival_s", "stage", "prompt_tokens", "output_tokens", "cached_tokens", "ttft_ms", "tpot_ms",
                       "e2e_ms", "prefill_instance", "decode_instance", "reason"]
        #expect(lines.first.map(String.init) == columns.joined(separator: ","))
        #expect(lines.last == "", "ends with a newline")
        let records = lines.dropFirst().dropLast()
        #expect(records.count == objects.count && objects.count > 100)
        #expect(objects.contains { $0["stage"] as? String == "failed" && $0["tpot_ms"] is NSNull }, "the glitch fails requests")
        for (line, object) in zip(records, objects) {
            let fields = Self.csvFields(String(line))
            #expect(fields.count == columns.count, "\(line)")
            for (column, field) in zip(columns, fields) {
                switch object[column] {
                case is NSNull: #expect(field == "", "\(column): \(line)")
                case let text as String: #expect(field == text, "\(column): \(line)")
                case let number as NSNumber:
                    // JSONSerialization on Linux reads a 17-digit number a unit or so off in the
                    // last place (Python reads both files to equal values); the field is the number.
                    let value = try #require(Double(field), "\(column): \(line)")
                    #expect(abs(value - number.doubleValue) <= 1e-12 * max(1, abs(value)), "\(column): \(line)")
                default: Issue.record("\(column) missing from \(object)")
                }
            }
        }
    }

    /// An RFC 4180 line's fields (quotes doubled inside a quoted field).
    static func csvFields(_ line: String) -> [String] {
        var fields: [String] = [], field = "", quoted = false, chars = Array(line), i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" { if i + 1 < chars.count, chars[i + 1] == "\"" { field.append("\""); i += 1 } else { quoted = false } }
                else { field.append(c) }
            } else if c == "\"" { quoted = true } else if c == "," { fields.append(field); field = "" } else { field.append(c) }
            i += 1
        }
        fields.append(field)
        return fields
    }

    /// `--prewarmed-spares 64` on superpod was taken and six TEs' worth pre-warmed (its 96 spare NPUs).
    @Test func moreTEsThanTheSparesHoldIsRefusedNamingTheMaximum() throws {
        for asked in ["7", "64"] {
            let r = try xds(["run", "--prewarmed-spares", asked, "--duration", "1s", "--json"])
            #expect(r.status == 1 && r.out.isEmpty, "\(r)")
            #expect(r.err == "xds: --prewarmed-spares must be between 0 and 6 on deployment 'superpod' "
                + "(96 spare NPUs, 16 per TE of its smallest shape), got \(asked)\n")
        }
        // The flag's own range comes first, as before.
        let r = try xds(["run", "--prewarmed-spares", "65", "--duration", "1s"])
        #expect(r.status == 1 && r.err == "xds: --prewarmed-spares must be a whole number between 0 and 64, got 65\n")
        // --print-config carries a flag it can hold into the file it prints, and refuses one it cannot.
        let printed = try xds(["run", "--prewarmed-spares", "6", "--print-config"])
        #expect(printed.status == 0 && printed.out.contains("[scaling]\nprewarmed_spare_tes = 6\n"), "\(printed)")
        #expect(try xds(["run", "--prewarmed-spares", "7", "--print-config"]).status == 1)
    }

    /// `xds rn` was told "Unexpected argument 'rn'" (by the console, the default subcommand),
    /// with no word of `run`. A word close to a subcommand's name gets that name, at any level.
    @Test func aMisspeltSubcommandGetsTheCloseName() throws {
        let r = try xds(["rn", "--rate", "5"])
        #expect(r.status == 64 && r.out.isEmpty, "\(r)")
        #expect(r.err == "xds: unknown subcommand 'rn' of 'xds'; did you mean 'run'? "
            + "(its subcommands: console, serve, run, bench, validate, demo-console)\n")
        for (typed, meant) in [("valdiate", "validate"), ("Serve", "serve"), ("demo", "demo-console"), ("hlep", "help")] {
            #expect(try xds([typed]).err.contains("did you mean '\(meant)'?"), "\(typed)")
        }
        let bench = try xds(["bench", "decod"])
        #expect(bench.status == 64 && bench.err.hasPrefix("xds: unknown subcommand 'decod' of 'xds bench'; did you mean 'decode'?"),
                "\(bench)")
        // `help` is a subcommand at the top only.
        #expect(try xds(["bench", "help"]).err == "xds: Unexpected argument 'help'\n")
        // Nothing close: ArgumentParser's own line, as before.
        let far = try xds(["zzzz"])
        #expect(far.status == 64 && far.err.hasPrefix("xds: ") && !far.err.contains("did you mean"), "\(far)")
    }

    /// `--help` said `--prewarmed-spares` takes 0…64, but superpod refuses 7: the deployment's
    /// spare NPUs set the bound. The help says so, and its superpod example is the bound enforced.
    @Test func prewarmedSparesHelpNamesTheDeploymentsBound() throws {
        let help = try xds(["run", "--help"])
        let text = help.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("between 0 and 64 and at most what the deployment's spare NPUs hold (its spare NPUs "
            + "over the NPUs of its smallest TE: 6 on superpod; a larger value is refused naming the bound)"), "\(help.out)")
        #expect(try xds(["run", "--prewarmed-spares", "7", "--duration", "1s"]).err.contains("between 0 and 6 on deployment 'superpod'"))
        #expect(try xds(["run", "--prewarmed-spares", "6", "--print-config"]).status == 0)
    }

    /// `--rate 1e-300` was taken: an arrival every 1e300 s, a run with no arrival at all. A
    /// nonzero rate has a floor now (one arrival per 10,000 s); 0 still means none, and the
    /// refusal is one line stating both, as `--help` does.
    @Test func aRateTooLowToArriveIsRefusedNamingTheRange() throws {
        let allowed = "0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s"
        // "1e-400" underflows to 0 and ran as `--rate 0`, no arrivals; it names no number xds can hold.
        for value in ["1e-300", "5e-324", "0.00009", "-4", "10001", "nan", "abc", "1e-400"] {
            let r = try xds(["run", "--rate", value, "--duration", "1s", "--json"])
            #expect(r.status == 1 && r.out.isEmpty, "\(value): \(r)")
            let shown = ["abc", "1e-400"].contains(value) ? "'\(value)'" : value
            #expect(r.err == "xds: --rate must be \(allowed), got \(shown)\n", "\(value): \(r.err)")
        }
        let tiny = "colocated:1:llama-2-7b:nvidia-a100:tp1"
        for value in ["0", "0.0e5", "0.0001", "10000"] {
            let r = try xds(["run", "--deployment", tiny, "--rate", value, "--duration", "1s", "--json"])
            #expect(r.status == 0, "\(value): \(r)")
        }
        let help = try xds(["run", "--help"])
        #expect(help.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            .contains("Synthetic arrival rate in requests/s: \(allowed)."), "\(help.out)")
    }

    /// `--autoscale SLO` and `--je-routing Round-Robin` were refused; `autoscale SLO` as a command was not.
    @Test func policyNamesAreTakenInAnyCaseAndPrintedAsRegistered() throws {
        let r = try xds(["run", "--autoscale", "SLO", "--je-routing", "Round-Robin", "--recovery-policy", "PD-Failover",
                         "--print-config"])
        #expect(r.status == 0, "\(r)")
        for line in ["autoscaler = \"slo\"", "je_routing = \"round-robin\"", "recovery = \"pd-failover\""] {
            #expect(r.out.contains(line + "\n"), "\(line) in \(r.out)")
        }
        let bad = try xds(["run", "--autoscale", "SLOW", "--print-config"])
        #expect(bad.status == 1 && bad.err == "xds: --autoscale: unknown autoscaler policy 'SLOW'; expected one of: off, slo\n")
    }

    /// `--eplb ON` and `--speed MAX` were refused while `speed MAX` as a command was taken.
    @Test func modeWordsAreTakenInAnyCase() throws {
        let r = try xds(["run", "--deployment", "superpod", "--rate", "1", "--eplb", "ON", "--speed", "MAX", "--duration", "1s",
                         "--json"])
        #expect(r.status == 0 && r.out.contains("\"deployment\" : \"superpod\""), "\(r)")
    }

    /// `serve --host 0.0.0.0` printed "warning: listening on 0.0.0.0, reachable from other
    /// machines" before checking the rest of its flags, so a refusal was two lines, the first
    /// false (nothing listened): the refusal is its one line. (No test binds 0.0.0.0.)
    @Test func aServeRefusalIsOneLineWhateverTheHost() throws {
        for (flag, value, message) in [("--rate", "-1", "--rate must be 0 (no synthetic arrivals) or between"),
                                        ("--speed", "0", "--speed must be")] {
            let r = try xds(["serve", "--host", "0.0.0.0", "--port", "19932", flag, value])
            #expect(r.status == 1 && r.out.isEmpty, "\(r)")
            #expect(r.err.hasPrefix("xds: \(message)") && r.err.split(separator: "\n").count == 1, "\(r.err)")
        }
    }

    /// `xds run --eplb perfect` on a dense model was taken (exit 0, the same run as without it)
    /// while `bench decode` refused it: every command taking the common options refuses it,
    /// and `--eplb-planner`, with bench's line; without them, or on a MoE model, they run.
    @Test func expertFlagsAreRefusedOnADenseModel() throws {
        let dense = [["--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1"], ["--deployment", "superpod", "--model", "llama-2-7b"]]
        for deployment in dense {
            let model = "llama-2-7b"
            for (command, extra) in [(["run"], ["--duration", "1s", "--quiet"]), (["run"], ["--print-config"]),
                                     (["bench", "snapshot"], ["--count", "1", "--at", "0"]),
                                     (["bench", "preview"], ["--for", "1s", "--at", "0"])] {
                let base = command + deployment + extra
                let r = try xds(base + ["--eplb", "perfect"])
                #expect(r.status == 1 && r.out.isEmpty, "\(base): \(r)")
                #expect(r.err.split(separator: "\n").last.map(String.init)
                    == "xds: --eplb: \(model) is a dense model with no experts to balance or route; leave --eplb out", "\(r.err)")
                let both = try xds(base + ["--eplb-planner", "deepseek", "--eplb", "off"])
                #expect(both.status == 1 && both.err.hasSuffix("leave --eplb, --eplb-planner out\n"), "\(base): \(both)")
            }
            let plain = try xds(["run"] + deployment + ["--duration", "1s", "--quiet"])
            #expect(plain.status == 0, "\(plain)")
            // serve refuses before it binds (a serve that took it would run on: bounded wait).
            let serve = try ChildProcess(try #require(BuiltBinary.xds),
                                         ["serve"] + deployment + ["--port", "19931", "--eplb", "on"])
            let exited = serve.waitForExit(within: 60)
            serve.kill()
            serve.waitForOutputEnd(within: 10)
            #expect(exited && serve.process.terminationStatus == 1 && serve.stderr.hasSuffix("leave --eplb out\n"),
                    "serve: \(serve.stderr)")
        }
        let moe = try xds(["run", "--deployment", "superpod", "--rate", "1", "--eplb", "perfect", "--eplb-planner", "deepseek",
                           "--duration", "1s", "--quiet"])
        #expect(moe.status == 0, "\(moe)")
    }

    /// `--mix Chat` and `--routing Balanced` were refused ("The value 'Chat' is invalid") while
    /// `--eplb ON` was taken; they run as the registered names, which the bench line prints.
    @Test func trafficMixAndRoutingAreTakenInAnyCase() throws {
        let tiny = "colocated:1:llama-2-7b:nvidia-a100:tp1"
        let run = try xds(["run", "--deployment", tiny, "--mix", "Chat", "--duration", "1s", "--json"])
        #expect(run.status == 0 && run.err.isEmpty, "\(run)")
        let bench = try xds(["bench", "decode", "--batch-per-die", "8", "--context", "512", "--routing", "BALANCED"])
        #expect(bench.status == 0 && bench.out.contains("routing balanced"), "\(bench)")
        let bad = try xds(["run", "--mix", "Chatty", "--duration", "1s"])
        #expect(bad.status != 0 && bad.out.isEmpty && bad.err.contains("'Chatty'"), "\(bad)")
    }

    /// `console --connect URL --token T --rate 5` (or --deployment, --scenario, --speed, --listen,
    /// …) was taken and did nothing: the console shows the server's engine. Refused with one line
    /// naming each such option once, before any connection or terminal; --theme and --yes (which
    /// the attached console reads) are not, and `xds --connect` (console, the default) is the same.
    @Test func engineOptionsAreRefusedWithConnect() throws {
        let attach = ["--connect", "http://127.0.0.1:9", "--token", "t"]
        let cases: [([String], String)] = [
            (["--rate", "5"], "--rate sets"),
            (["--rate=5", "--deployment", "superpod", "--listen", "127.0.0.1:0", "--rate", "-4"],
             "--rate, --deployment, --listen set"),
            (["--speed", "max", "--clip-to-context", "--theme", "mono", "--yes"], "--speed, --clip-to-context set"),
        ]
        for command in [["console"], []] as [[String]] {
            for (extra, named) in cases {
                let r = try xds(command + attach + extra)
                #expect(r.status == 1 && r.out.isEmpty, "\(extra): \(r)")
                let them = named.hasSuffix(" sets") ? "it" : "them"
                #expect(r.err == "xds: \(named) up the embedded engine; with --connect the console shows the server's "
                    + "(give \(them) to xds serve, or leave --connect out)\n", "\(extra): \(r.err)")
            }
            // What the attached console reads passes this check (and stops at the missing terminal).
            let fine = try xds(command + attach + ["--theme", "mono", "--yes"])
            #expect(fine.status == 1 && fine.err == "xds console: no terminal to draw on (is stdout a tty and TERM set?)\n",
                    "\(fine)")
        }
    }

    /// `console --theme nope` with no terminal said only "no terminal to draw on": the bad flag
    /// was never named (on a terminal it fell back to another theme). An unknown theme is refused
    /// with one line naming the themes there are, before the engine, the connection or the
    /// terminal; a known one still gets as far as the terminal.
    @Test func anUnknownThemeIsRefusedBeforeTheTerminal() throws {
        let said = "xds: --theme: no theme named 'nope'; themes: dark, light, high-contrast, mono\n"
        for command in [["console"], [], ["console", "--connect", "http://127.0.0.1:9", "--token", "t"], ["demo-console"]] {
            let r = try xds(command + ["--theme", "nope"])
            #expect(r.status == 1 && r.out.isEmpty && r.err == said, "\(command): \(r)")
        }
        let known = try xds(["console", "--theme", "light", "--rate", "1"])
        #expect(known.status == 1 && known.err == "xds console: no terminal to draw on (is stdout a tty and TERM set?)\n",
                "\(known)")
    }

    /// `console --listen 127.0.0.1:70000` was told "expected HOST:PORT like 127.0.0.1:8000 …",
    /// which did not say the port was the problem; it names the range as `serve --port` does, and
    /// the malformed form's message names it too.
    @Test func aListenPortOutOfRangeNamesTheRange() throws {
        for port in ["70000", "65536", "-1"] {
            let r = try xds(["console", "--listen", "127.0.0.1:\(port)"])
            #expect(r.status == 1 && r.out.isEmpty
                && r.err == "xds: --listen: the port must be a whole number between 0 and 65535, got \(port)\n", "\(r)")
        }
        let bad = try xds(["console", "--listen", "127.0.0.1:http"])
        #expect(bad.status == 1 && bad.err == "xds: --listen: expected HOST:PORT like 127.0.0.1:8000 or [::1]:8000 (port 0…65535), "
            + "got '127.0.0.1:http'\n", "\(bad)")
    }

    /// `run --print-config` prints a deployment file, which holds the layout and the policies:
    /// `--eplb off` printed a file that runs with EPLB on, and `--out cfg.toml --json --rate 5`
    /// were taken, exit 0, nothing written. Refused, one line naming each such flag; the flags it
    /// holds are taken (and printed) as before.
    @Test func printConfigRefusesWhatTheFileCannotHold() throws {
        let dir = try TestScratch.makeDirectory("xds-print-config")
        let out = dir.appendingPathComponent("cfg.toml").path
        let tail = "and give it to the run that reads the file\n"
        let one = try xds(["run", "--eplb", "off", "--print-config"])
        #expect(one.status == 1 && one.out.isEmpty, "\(one)")
        #expect(one.err == "xds: --print-config prints a deployment file, which cannot hold --eplb; leave it out \(tail)", "\(one.err)")
        let many = try xds(["run", "--print-config", "--out", out, "--json", "--rate=5", "--out", out, "--duration", "1s"])
        #expect(many.status == 1 && many.out.isEmpty && !FileManager.default.fileExists(atPath: out), "\(many)")
        #expect(many.err == "xds: --print-config prints a deployment file, which cannot hold --out, --json, --rate, --duration; "
            + "leave them out and give them to the run that reads the file\n", "\(many.err)")
        let held = try xds(["run", "--print-config", "--quiet", "--deployment", "superpod", "--je-routing", "round-robin",
                            "--autoscale", "slo", "--prewarmed-spares", "2"])
        #expect(held.status == 0 && held.err.isEmpty, "\(held)")
        for line in ["je_routing = \"round-robin\"", "autoscaler = \"slo\"", "prewarmed_spare_tes = 2"] {
            #expect(held.out.contains(line + "\n"), "\(line) in \(held.out)")
        }
    }

    /// `console --token T` without --connect or --listen was taken and ignored (no admin API is
    /// spoken to or served), and `--help` named only --connect: refused with one line naming both.
    @Test func aConsoleTokenWithoutConnectOrListenIsRefused() throws {
        for command in [["console"], []] as [[String]] {
            let r = try xds(command + ["--token", "t", "--rate", "5"])
            #expect(r.status == 1 && r.out.isEmpty, "\(r)")
            #expect(r.err == "xds: --token applies to --connect (the server's admin token) or --listen (the token of the API "
                + "it serves); leave --token out\n", "\(r.err)")
        }
        let help = try xds(["console", "--help"])
        #expect(help.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            .contains("Admin token for --connect, or of the API --listen serves"), "\(help.out)")
    }

    /// `run --deployment colocated:4:… --autoscale slo` never scaled and said nothing about why
    /// (the reason was only in the event log, which `run` does not print). It says so on stderr
    /// at the start, once; a deployment it can scale gets no such line.
    @Test func anAutoscalerThatScalesNothingSaysSoOnRun() throws {
        let colocated = try xds(["run", "--deployment", "colocated:4:llama-2-7b:nvidia-a100:tp1", "--autoscale", "slo",
                                 "--rate", "5", "--duration", "10s", "--quiet"])
        #expect(colocated.status == 0, "\(colocated)")
        let lines = colocated.err.split(separator: "\n").filter { $0.contains("has none it can scale") }
        #expect(lines == ["xds: autoscaler slo: it scales prefill and decode TEs, and deployment "
                          + "'colocated:4:llama-2-7b:nvidia-a100:tp1' has none it can scale "
                          + "(colocated TEs scale only by command: scale colocated N)"], "\(colocated.err)")
        let plain = try xds(["run", "--autoscale", "slo", "--rate", "5", "--duration", "10s", "--quiet"])
        #expect(plain.status == 0 && !plain.err.contains("none it can scale"), "\(plain)")
        let off = try xds(["run", "--deployment", "colocated:4:llama-2-7b:nvidia-a100:tp1", "--rate", "5", "--duration", "10s", "--quiet"])
        #expect(off.status == 0 && off.err.isEmpty, "\(off)")
    }

    /// The lines `run` prints about a scenario step gave its time rounded down to whole seconds:
    /// a step at 2.5 s read "scenario step at 0:00:02", a time the file never wrote, and two
    /// steps in the same second read alike. The time is printed as written (its fraction kept).
    @Test func aScenarioStepLineGivesTheStepTimeAsWritten() throws {
        let dir = try TestScratch.makeDirectory("xds-step-time")
        let scenario = dir.appendingPathComponent("steps.toml")
        try Data(("name = \"a\"\n[[step]]\nat = \"2.5s\"\ncommand = \"policy autoscaler slo\"\n"
                  + "[[step]]\nat = \"3250ms\"\ncommand = \"policy autoscaler slo\"\n"
                  + "[[step]]\nat = 4\ncommand = \"policy autoscaler slo\"\n"
                  + "[[step]]\nat = \"5.75s\"\ncommand = \"undrain node 0\"\n").utf8).write(to: scenario)
        let r = try xds(["run", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--scenario", scenario.path,
                         "--rate", "5", "--duration", "10s", "--quiet"])
        #expect(r.status == 0, "\(r)")
        let times = r.err.split(separator: "\n").map { $0.split(separator: " ").prefix(5).joined(separator: " ") }
        #expect(times == ["xds: scenario step at 0:00:02.5", "xds: scenario step at 0:00:03.25", "xds: scenario step at 0:00:04",
                          "xds: scenario step at 0:00:05.75"], "\(r.err)")
        // The refused step's line is the one a scenario author reads most.
        #expect(r.err.contains("xds: scenario step at 0:00:05.75 'undrain node 0' refused: node 0 is not drained\n"), "\(r.err)")
    }

    /// The notes `run` prints before it starts about steps it will not run or that change
    /// nothing here gave the times rounded down too: a step at 1.5 s after a 1.2 s run read
    /// "the run ends at 0:00:01 … (the first: 'rate 5' at 0:00:01)", a step at the very time the
    /// run ends. Both times are given as written.
    @Test func scenarioNotesGiveStepTimesAsWritten() throws {
        let dir = try TestScratch.makeDirectory("xds-note-time")
        let late = dir.appendingPathComponent("late.toml")
        try Data("name = \"a\"\n[[step]]\nat = \"1.5s\"\ncommand = \"rate 5\"\n".utf8).write(to: late)
        let r = try xds(["run", "--scenario", late.path, "--rate", "1", "--duration", "1.2s", "--quiet"])
        #expect(r.status == 0, "\(r)")
        #expect(r.err == "xds: \(late.path): 1 step comes after the run ends at 0:00:01.2 and will not run "
                + "(the first: 'rate 5' at 0:00:01.5); raise --duration to include them\n", "\(r.err)")
        let pacing = dir.appendingPathComponent("pacing.toml")
        try Data("name = \"a\"\n[[step]]\nat = \"0.25s\"\ncommand = \"pause\"\n".utf8).write(to: pacing)
        let p = try xds(["run", "--scenario", pacing.path, "--rate", "1", "--duration", "1s", "--quiet"])
        #expect(p.status == 0 && p.err.contains("(the first: 'pause' at 0:00:00.25)"), "\(p.err)")
    }

    /// A scenario step `autoscale slo` (or `policy autoscaler slo`) on colocated replicas was
    /// taken and then scaled nothing, and `run` (which prints refused steps only) said nothing
    /// either. It says so on stderr, naming the step.
    @Test func aScenarioStepTurningOnAnAutoscalerThatScalesNothingSaysSo() throws {
        let dir = try TestScratch.makeDirectory("xds-autoscale-step")
        let scenario = dir.appendingPathComponent("auto.toml")
        try Data("name = \"a\"\n[[step]]\nat = \"2s\"\ncommand = \"policy autoscaler SLO\"\n".utf8).write(to: scenario)
        let r = try xds(["run", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--scenario", scenario.path,
                         "--rate", "5", "--duration", "10s", "--quiet"])
        #expect(r.status == 0, "\(r)")
        #expect(r.err == "xds: scenario step at 0:00:02 'policy autoscaler slo': autoscaler slo: it scales prefill and decode TEs, "
                + "and deployment 'colocated:2:llama-2-7b:nvidia-a100:tp1' has none it can scale "
                + "(colocated TEs scale only by command: scale colocated N)\n", "\(r.err)")
        let superpod = try xds(["run", "--scenario", scenario.path, "--rate", "5", "--duration", "10s", "--quiet"])
        #expect(superpod.status == 0 && superpod.err.isEmpty, "\(superpod)")
    }

    /// `--print-config --autoscale off` over a file with `[scaling] autoscale = "slo"` printed
    /// both `[scaling] autoscale = "slo"` and `[policies] autoscaler = "off"`, a file every run
    /// then refused ("disagrees … name the autoscaler in one place"). The printed file names it
    /// once, the flag's name, and runs with it.
    @Test func printConfigOverAFileWithScalingAutoscaleNamesTheAutoscalerOnce() throws {
        let dir = try TestScratch.makeDirectory("xds-print-autoscale")
        let base = try xds(["run", "--print-config", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1"])
        let withScaling = dir.appendingPathComponent("slo.toml")
        try Data((base.out.replacingOccurrences(of: "autoscaler = \"off\"\n", with: "")
                  + "\n[scaling]\nautoscale = \"SLO\"\nprewarmed_spare_tes = 1\n").utf8).write(to: withScaling)
        for (flag, expected) in [(["--autoscale", "Off"], "off"), ([], "slo")] {
            let printed = try xds(["run", "--print-config", "--deployment", withScaling.path] + flag)
            #expect(printed.status == 0, "\(printed)")
            #expect(!printed.out.contains("autoscale = "), "named in [policies] only: \(printed.out)")
            #expect(printed.out.contains("autoscaler = \"\(expected)\"") && printed.out.contains("prewarmed_spare_tes = 1"), "\(printed.out)")
            let file = dir.appendingPathComponent("printed-\(expected).toml")
            try Data(printed.out.utf8).write(to: file)
            let run = try xds(["run", "--deployment", file.path, "--rate", "1", "--duration", "2s", "--json", "--quiet"])
            #expect(run.status == 0 && run.out.contains("\"autoscaler\" : \"\(expected)\""), "\(run.err)")
        }
    }

    /// `run --duration 1h1h` ran two hours (and `30m1h` 1h30m): a time names each unit at most once,
    /// largest first, and one that does otherwise is one line naming the form, exit 1, nothing run;
    /// `bench preview --for` reads times by the same rule.
    @Test func aDurationRepeatingOrReorderingAUnitIsRefusedNamingTheForm() throws {
        let form = "repeats a unit or puts a smaller one first; write each of h, m, s, ms at most once, largest first (like 1h30m or 2m30s)"
        for value in ["1h1h", "30m1h", "10s10s"] {
            let r = try xds(["run", "--duration", value, "--json"])
            #expect(r.status == 1 && r.out.isEmpty, "\(value): \(r)")
            #expect(r.err == "xds: --duration: '\(value)' \(form)\n", "\(value): \(r.err)")
        }
        let preview = try xds(["bench", "preview", "--rate", "0", "--at", "0", "--for", "1m1m"])
        #expect(preview.status == 1 && preview.out.isEmpty, "\(preview)")
        #expect(preview.err == "xds: --for: '1m1m' \(form)\n", "\(preview.err)")
        let ordered = try xds(["run", "--duration", "1m30s", "--rate", "0", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(ordered.out.utf8)) as? [String: Any], "\(ordered)")
        #expect(object["sim_seconds"] as? Double == 90, "\(ordered)")
    }

    /// `--workload SYNTHETIC` was looked up as a file ("no such workload file"), where every other
    /// named word (`--mix CHAT`, `--eplb ON`, `--speed MAX`) is taken in any ASCII case: the
    /// synthetic workload is named in any case too, and runs as `synthetic` does.
    @Test func theSyntheticWorkloadIsNamedInAnyCase() throws {
        let args = ["--rate", "5", "--duration", "3s", "--json", "--quiet"]
        let plain = try xds(["run", "--workload", "synthetic"] + args)
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(plain.out.utf8)) as? [String: Any], "\(plain)")
        for word in ["SYNTHETIC", "Synthetic"] {
            let r = try xds(["run", "--workload", word] + args)
            #expect(r.status == 0 && r.err.isEmpty, "\(word): \(r)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(word): \(r)")
            #expect(object["requests"] as? NSDictionary == reference["requests"] as? NSDictionary, "\(word)")
            #expect(object["events"] as? Int == reference["events"] as? Int, "\(word)")
        }
        // Still the synthetic workload to the checks that tell it from a trace.
        let speedup = try xds(["run", "--workload", "SYNTHETIC", "--trace-speedup", "2", "--duration", "2s"])
        #expect(speedup.status == 1
            && speedup.err == "xds: --trace-speedup applies to a trace, not to the synthetic workload (use --rate)\n", "\(speedup)")
    }

    /// `run --rate -0 --json` reported `"rate_per_s" : -0` (and `bench decode --context-cv -0`
    /// `"context_cv" : -0`): a negative zero typed on the command line went into the report as
    /// written. It is the number 0, and reported as 0.
    @Test func aNegativeZeroFlagIsReportedAsZero() throws {
        let run = try xds(["run", "--rate", "-0", "--duration", "1s", "--json", "--quiet"])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("\"rate_per_s\" : 0") && !run.out.contains(": -0"), "\(run.out)")
        let bench = try xds(["bench", "decode", "--context-cv", "-0", "--mtp-acceptance", "-0", "--json"])
        #expect(bench.status == 0, "\(bench.err)")
        #expect(bench.out.contains("\"context_cv\" : 0") && !bench.out.contains(": -0"), "\(bench.out)")
    }

    /// `xds run --rate -1 2>/dev/full` (stderr a full disk or a closed pipe) crashed with "Fatal
    /// error: 'try!' expression unexpectedly raised an error", exit 132 (SIGILL), where the refusal
    /// exits 1: the line that cannot be written is lost, the exit status is not.
    @Test func aRefusalWhoseStderrCannotTakeItStillExits1() throws {
        let binary: URL = try #require(BuiltBinary.xds)
        let child = try ChildProcess(binary, ["run", "--rate", "-1"], stdout: .file("/dev/null"), stderr: .file("/dev/full"))
        defer { child.kill() }
        #expect(child.waitForExit(within: 300))
        let process = child.process
        #expect(process.terminationReason == .exit && process.terminationStatus == 1,
                "\(process.terminationReason.rawValue) \(process.terminationStatus)")
    }

    /// A run that prints a note on stderr (`--model kimi-k2` names each change to the layout) with
    /// stderr a full disk or a closed pipe crashed at the note ("Fatal error: 'try!' expression
    /// unexpectedly raised an error", exit 132) and never ran: the note is lost, the run is not.
    @Test func aNoteStderrCannotTakeDoesNotStopTheRun() throws {
        let binary: URL = try #require(BuiltBinary.xds)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("xds-note-full-\(getpid()).json")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let child = try ChildProcess(binary, ["run", "--model", "kimi-k2", "--duration", "1s", "--quiet", "--json"],
                                     stdout: .file(out.path), stderr: .file("/dev/full"))
        defer { child.kill() }
        #expect(child.waitForExit(within: 300))
        let process = child.process
        #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                "\(process.terminationReason.rawValue) \(process.terminationStatus)")
        let report = try String(contentsOf: out, encoding: .utf8)
        #expect(report.contains("\"sim_seconds\" : 1"), "\(report.prefix(200))")
    }

    /// `xds run --json > report.json` on a full disk exited 0 with the report lost (an empty file),
    /// where `--out` on a full disk said so and exited 1: stdout that cannot take the report is the
    /// same failure, one line on stderr and exit 1.
    @Test func aReportStdoutCannotTakeFailsTheRun() throws {
        let binary: URL = try #require(BuiltBinary.xds)
        for extra in [["--json"], []] {
            let child = try ChildProcess(binary, ["run", "--rate", "1", "--duration", "2s"] + extra,
                                         stdout: .file("/dev/full"))
            defer { child.kill() }
            #expect(child.waitForExit(within: 300), "\(extra)")
            #expect(child.process.terminationStatus == 1, "\(extra)")
            #expect(child.stderr == "xds: stdout: writing the report failed (No space left on device)\n", "\(extra)")
        }
    }

    /// `run --duration 1e-320` was taken: shorter than any engine step, it ran no event and
    /// reported `"sim_seconds": 1e-320`, "0× real time". Under a millisecond is refused with the
    /// range `--help` states; 1ms itself is taken.
    @Test func aDurationUnderAMillisecondIsRefusedNamingTheRange() throws {
        // A negative time is below the range too (it was told only "expected a time like 90s").
        for value in ["1e-320", "0.0009", "0.5ms", "0s", "-5s", "-10m"] {
            let r = try xds(["run", "--duration", value, "--json"])
            #expect(r.status == 1 && r.out.isEmpty, "\(value): \(r)")
            #expect(r.err == "xds: --duration must be at least 1ms and at most 10 years (315360000 s), got '\(value)'\n",
                    "\(value): \(r.err)")
        }
        for value in ["1ms", "0.001"] {
            let r = try xds(["run", "--duration", value, "--rate", "0", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r)")
            #expect(r.status == 0 && object["sim_seconds"] as? Double == 0.001, "\(value): \(r)")
        }
        let help = try xds(["run", "--help"])
        #expect(help.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            .contains("(at least 1ms, at most 10 years)"), "\(help.out)")
    }

    /// A trace run without `--duration` ends with its last request, and a scenario step timed
    /// after that never ran without a word (a `--duration` run names such steps before it
    /// starts): only the report's `commands` (1 of 2) told. Now stderr names the steps not run.
    @Test func aStepATraceRunNeverReachedIsNamed() throws {
        let dir = try TestScratch.makeDirectory("xds-unreached-step")
        let trace = dir.appendingPathComponent("t.csv"), scenario = dir.appendingPathComponent("late.toml")
        try Data("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,100,5\n2023-11-16 18:17:04,100,5\n".utf8)
            .write(to: trace)
        try Data(("name = \"late\"\n[[step]]\nat = \"1s\"\ncommand = \"drain node 40\"\n[[step]]\nat = \"2h\"\n"
                  + "command = \"rebalance\"\n[[step]]\nat = \"3h\"\ncommand = \"undrain node 40\"\n").utf8).write(to: scenario)
        let r = try xds(["run", "--workload", trace.path, "--scenario", scenario.path, "--json", "--quiet"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r)")
        #expect(r.status == 0 && object["commands"] as? Int == 1, "\(r)")
        let end = try #require(object["sim_seconds"] as? Double)
        #expect(end > 1 && end < 60, "\(end)")
        #expect(r.err.hasPrefix("xds: \(scenario.path): 2 steps did not run: the trace's requests had all finished at 0:00:0"),
                "\(r.err)")
        #expect(r.err.hasSuffix("(the first: 'rebalance' at 2:00:00); give --duration to run on to them\n"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "\(r.err)")
        // With --duration the note before the run says it, once.
        let timed = try xds(["run", "--workload", trace.path, "--scenario", scenario.path, "--json", "--quiet",
                             "--duration", "1m"])
        #expect(timed.status == 0 && timed.err.split(separator: "\n").count == 1
                && timed.err.contains("2 steps come after the run ends at 0:01:00"), "\(timed.err)")
        // Every step ran: nothing said.
        let early = dir.appendingPathComponent("early.toml")
        try Data("name = \"e\"\n[[step]]\nat = \"1s\"\ncommand = \"drain node 40\"\n".utf8).write(to: early)
        let quiet = try xds(["run", "--workload", trace.path, "--scenario", early.path, "--json", "--quiet"])
        #expect(quiet.status == 0 && quiet.err.isEmpty, "\(quiet)")
    }

    /// A trace run without `--duration` ends with its last request; with a scenario step still to
    /// come it ran on to the end of the driver's 1 s slice: a 2-row trace done at 1.12 s reported
    /// `sim_seconds` 2 and 5 tok/s instead of 1.12 and 8.9, only because of a step at 2 h.
    @Test func aStepStillToComeDoesNotStretchATraceRun() throws {
        let dir = try TestScratch.makeDirectory("xds-step-stretch")
        let trace = dir.appendingPathComponent("t.csv"), scenario = dir.appendingPathComponent("late.toml")
        try Data("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,100,5\n2023-11-16 18:17:04,100,5\n".utf8)
            .write(to: trace)
        try Data("name = \"late\"\n[[step]]\nat = \"2h\"\ncommand = \"rebalance\"\n".utf8).write(to: scenario)
        func report(_ extra: [String]) throws -> [String: Any] {
            let r = try xds(["run", "--workload", trace.path, "--json", "--quiet"] + extra)
            #expect(r.status == 0, "\(r)")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r)")
        }
        let plain = try report([]), withStep = try report(["--scenario", scenario.path])
        let end = try #require(plain["sim_seconds"] as? Double)
        #expect(end > 1 && end < 2, "\(end)")
        #expect(withStep["sim_seconds"] as? Double == end, "\(withStep["sim_seconds"] ?? "none") vs \(end)")
        #expect((withStep["throughput"] as? [String: Any])?["output_tokens_per_s"] as? Double
                == (plain["throughput"] as? [String: Any])?["output_tokens_per_s"] as? Double)
    }

    /// The text summary on layouts the usual wording does not fit. On an A100 the throughput read
    /// "3.0 per die (3.0 per chip)", two parts a one-die GPU does not have: it says "per GPU".
    /// On colocated-288 (one expert per routed die, no redundant slot) EPLB on moves nothing, and
    /// "rebalances 0" beside an imbalance of 3.84 read as a planner that failed: it says why.
    @Test func theSummarySaysPerGPUAndWhenEPLBHasNothingToMove() throws {
        let gpu = try xds(["run", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--duration", "20s", "--speed", "max"])
        let throughput = gpu.out.split(separator: "\n").first { $0.contains("throughput") } ?? ""
        #expect(gpu.status == 0 && throughput.contains(" per GPU, ") && throughput.contains("prefill tok/s per GPU")
                && !throughput.contains("per die") && !throughput.contains("per chip"), "\(gpu)")
        let fixed = try xds(["run", "--deployment", "colocated-288", "--duration", "10s", "--speed", "max"])
        #expect(fixed.status == 0 && fixed.out.contains("(EPLB on, nothing to move: one expert per routed die, no redundant slot)"),
                "\(fixed)")
        let off = try xds(["run", "--deployment", "colocated-288", "--duration", "10s", "--speed", "max", "--eplb", "off"])
        #expect(off.status == 0 && !off.out.contains("nothing to move"), "\(off)")
        let superpod = try xds(["run", "--duration", "10s", "--speed", "max"])
        #expect(superpod.status == 0 && !superpod.out.contains("nothing to move") && superpod.out.contains("per decode die ("),
                "\(superpod)")
    }

    /// The summary's SLO line rounded the targets to whole milliseconds: `--slo-tpot-ms 35.5` read
    /// "TPOT 36 ms" while attainment was measured against 35.5, and `--slo-tpot-ms 0.4` read
    /// "TPOT 0 ms", a target the flag itself refuses. The line gives each target as it was given.
    @Test func theSummarySaysTheSLOTargetsAsGiven() throws {
        let base = ["run", "--duration", "1s", "--rate", "0", "--quiet"]
        let fractional = try xds(base + ["--slo-ttft-ms", "2500.25", "--slo-tpot-ms", "35.5"])
        #expect(fractional.status == 0 && fractional.out.contains("\n  SLO       TTFT 2500.25 ms, TPOT 35.5 ms: "), "\(fractional)")
        let small = try xds(base + ["--slo-ttft-ms", "0.25", "--slo-tpot-ms", "0.4"])
        #expect(small.status == 0 && small.out.contains("\n  SLO       TTFT 0.25 ms, TPOT 0.4 ms: "), "\(small)")
        let whole = try xds(base)
        #expect(whole.status == 0 && whole.out.contains("\n  SLO       TTFT 2000 ms, TPOT 35 ms: "), "\(whole)")
    }

    /// A replay slowed down (`--trace-speedup` under 1) was said to be "0.001× faster than
    /// recorded": it says how many times slower.
    @Test func aSlowedReplayIsSaidToBeSlower() throws {
        let dir = try TestScratch.makeDirectory("xds-run-slowed-trace")
        let trace = dir.appendingPathComponent("tiny.csv")
        try Data("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,400,10\n2023-11-16 18:17:04,300,8\n".utf8)
            .write(to: trace)
        for (speedup, said) in [("0.001", "(arrivals 1000× slower than recorded (--trace-speedup 0.001))"),
                                ("0.5", "(arrivals 2× slower than recorded (--trace-speedup 0.5))"),
                                ("2", "(arrivals 2× faster than recorded)"), ("1", "(arrivals as recorded)")] {
            let r = try xds(["run", "--workload", trace.path, "--trace-speedup", speedup, "--duration", "2s"])
            #expect(r.status == 0 && r.out.contains("\n  load      trace \(trace.path) \(said)\n"), "\(speedup): \(r.out)")
        }
    }

    /// With MoE and attention on separate dies the decode batch at the end is counted per
    /// attention die (as `bench decode` takes it), while the throughput beside it is per die of
    /// the layout: both said "per die", two scopes under one name.
    @Test func aMoEAttentionBatchIsSaidToBePerAttentionDie() throws {
        let ma = try xds(["run", "--deployment", "xdeepserve-ma", "--rate", "40", "--duration", "60s"])
        #expect(ma.status == 0 && ma.out.contains("\n  decode    at the end: ") && ma.out.contains(" requests per attention die, "),
                "\(ma.out)")
        #expect(ma.out.contains(" per decode die ("), "\(ma.out)")
        let colocated = try xds(["run", "--duration", "20s"])
        #expect(colocated.status == 0 && colocated.out.contains(" requests per die, ") && !colocated.out.contains("attention die"),
                "\(colocated.out)")
    }
}
