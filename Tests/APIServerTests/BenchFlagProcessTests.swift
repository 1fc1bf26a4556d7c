import Foundation
import Testing
import XDSTestSupport

/// `xds bench …` as a user types it, through the built executable: what a bench cannot honour is
/// refused with one line and exit 1, not taken and ignored.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("BenchFlagProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct BenchFlagProcessTests {
    /// Runs `xds` with `arguments` to its end: exit status, stdout, stderr.
    func xds(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) { try runBuiltXDS(arguments) }

    /// `bench snapshot` and `bench preview` take the common options, `--scenario` among them, but
    /// apply no scenario step: a scenario (even a file that does not exist) was taken, exit 0, and
    /// the figures were those of the workload alone.
    @Test func scenarioIsRefusedWhereNoStepIsApplied() throws {
        let missing = "/nonexistent-\(getpid())/npu-loss.toml"
        for (bench, extra) in [("snapshot", ["--count", "1"]), ("preview", ["--for", "1s"])] {
            let r = try xds(["bench", bench, "--rate", "1", "--at", "0", "--scenario", missing] + extra)
            #expect(r.status == 1 && r.out.isEmpty, "\(bench): \(r)")
            #expect(r.err == "xds: --scenario applies to run, serve and console; bench \(bench) applies no scenario "
                + "step (leave --scenario out)\n", "\(bench)")
            // Without it the bench runs.
            let plain = try xds(["bench", bench, "--rate", "1", "--at", "0", "--json"] + extra)
            #expect(plain.status == 0, "\(bench): \(plain)")
        }
    }

    /// `bench snapshot --rate 0` timed an idle engine (nothing in flight) and printed it as the
    /// loaded engine's snapshot cost: the output says so, and `--json` carries `idle`.
    @Test func anIdleSnapshotBenchSaysItWasIdle() throws {
        let idle = try xds(["bench", "snapshot", "--rate", "0", "--at", "1", "--count", "2"])
        #expect(idle.status == 0, "\(idle)")
        #expect(idle.out.contains("\nidle engine: no request was in flight at any snapshot"), "\(idle.out)")
        #expect(idle.out.hasSuffix("(raise --rate)\n"), "\(idle.out)")
        let idleJSON = try xds(["bench", "snapshot", "--rate", "0", "--at", "1", "--count", "2", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(idleJSON.out.utf8)) as? [String: Any])
        #expect(object["idle"] as? Bool == true && object["in_flight"] as? Int == 0, "\(object)")
        let loaded = try xds(["bench", "snapshot", "--rate", "50", "--at", "5", "--count", "2", "--json"])
        let busy = try #require(try JSONSerialization.jsonObject(with: Data(loaded.out.utf8)) as? [String: Any])
        #expect(busy["idle"] as? Bool == false && (busy["in_flight"] as? Int ?? 0) > 0, "\(busy)")
        let text = try xds(["bench", "snapshot", "--rate", "50", "--at", "5", "--count", "2"])
        #expect(text.status == 0 && !text.out.contains("idle"), "\(text)")
    }

    /// A preview window where nothing completed printed "TTFT p99 0 ms, TPOT p99 0 ms", the best
    /// figure there is: it says there were no samples, as the run summary does.
    @Test func aPreviewWithoutSamplesSaysSoInsteadOfZero() throws {
        let r = try xds(["bench", "preview", "--rate", "0", "--at", "0", "--for", "1s"])
        #expect(r.status == 0, "\(r)")
        let lines = r.out.split(separator: "\n").map(String.init)
        // The two equal sides, then the engine's reply saying why (nothing on node 20 to drain).
        #expect(lines.count == 5 && lines.last?.hasPrefix("note: no change; the engine replied: node 20 draining") == true,
                "\(r.out)")
        for line in lines.dropFirst(2).prefix(2) {
            #expect(line.hasSuffix("completed 0, lost 0, TTFT p99 — (no samples), TPOT p99 — (no samples)"), "\(line)")
        }
        let loaded = try xds(["bench", "preview", "--rate", "20", "--at", "20", "--for", "10s"])
        #expect(loaded.status == 0 && !loaded.out.contains("no samples") && loaded.out.contains(" ms, TPOT p99 "), "\(loaded)")
    }

    /// `bench preview --rate 2000 --for 1h` computed for minutes with no end, where the console's
    /// and the admin API's previews stop at their 30 s wall-clock budget: the bench has the same
    /// budget (`--wall-budget`, range-checked), stops on its own and says where and why.
    @Test func aPreviewStopsAtItsWallBudgetAndSaysSo() throws {
        let started = Date()
        let r = try xds(["bench", "preview", "--rate", "500", "--at", "0", "--for", "1h", "--wall-budget", "1"])
        #expect(r.status == 0, "\(r)")
        // A bound on the whole process, its start and the engine's build included: 120 s failed
        // on a machine running three builds besides the suite (136 s), with the note below as it
        // should be. The note is what shows the budget stopped it, and early in the window.
        #expect(Date().timeIntervalSince(started) < 600, "stopped within a slice of its budget")
        let note = r.out.split(separator: "\n").first { $0.hasPrefix("note: stopped at ") }
        #expect(note?.hasSuffix(" of the 1h window: it used up its 1 s wall-clock budget (--wall-budget)") == true, "\(r.out)")
        #expect(note?.hasPrefix("note: stopped at 1h ") == false, "\(r.out)")
        for value in ["0", "-1", "nan", "1e400", "3601", "abc", ""] {
            let bad = try xds(["bench", "preview", "--rate", "0", "--at", "0", "--for", "1s", "--wall-budget", value])
            #expect(bad.status == 1 && bad.out.isEmpty, "\(value): \(bad)")
            #expect(bad.err.hasPrefix("xds: --wall-budget must be ") && bad.err.contains("0.1 and 3600 s")
                && bad.err.filter { $0 == "\n" }.count == 1, "\(value): \(bad.err)")
        }
    }

    /// `bench preview --rate 2000 --at 3600` ran its warm-up (an hour of a saturated superpod) with
    /// no bound at all, printing nothing, before the preview's wall-clock budget even started: the
    /// warm-up has the same budget and stops with one line saying where it got to (exit 1).
    @Test func aWarmUpStopsAtTheWallBudgetAndSaysSo() throws {
        let arguments = ["bench", "preview", "--rate", "2000", "--at", "3600", "--for", "1s", "--wall-budget", "1"]
        // Not `runBuiltXDS` (300 s): a warm-up that does not stop fails here within a minute.
        let child = try ChildProcess(try #require(BuiltBinary.xds), arguments)
        let ended = child.waitForExit(within: 60)
        child.kill()
        child.waitForOutputEnd(within: 10)
        #expect(ended, "the warm-up ran past its 1 s budget for a minute")
        guard ended else { return }
        let (status, out, err) = (child.process.terminationStatus, child.stdout, child.stderr)
        #expect(status == 1 && out.isEmpty, "\(status) \(out) \(err)")
        #expect(err.hasPrefix("xds: the warm-up to --at 1h stopped at "), "\(err)")
        #expect(err.hasSuffix(" of simulated time: it used up its 1 s wall-clock budget (--wall-budget); nothing was "
            + "previewed (lower --at or --rate, or raise --wall-budget)\n"), "\(err)")
        #expect(err.filter { $0 == "\n" }.count == 1, "one line: \(err)")
    }

    /// `bench preview --at 1e-320` ran (a warm-up shorter than any step, so none) and printed
    /// "at 1e-320s": a nonzero `--at` under a millisecond is refused by both benches with one line
    /// naming the range `--help` states; 0, a millisecond and an hour are taken.
    @Test func aWarmUpUnderAMillisecondIsRefusedNamingTheRange() throws {
        let allowed = "0 (no warm-up) or between 0.001 and 3600 s"
        for (bench, extra) in [("preview", ["--for", "1s"]), ("snapshot", ["--count", "1"])] {
            for value in ["1e-320", "5e-324", "0.0009", "-1", "3600.5", "nan", "abc", "1e-400"] {
                let r = try xds(["bench", bench, "--rate", "0", "--at", value] + extra)
                #expect(r.status == 1 && r.out.isEmpty, "\(bench) \(value): \(r)")
                let shown = ["abc", "1e-400"].contains(value) ? "'\(value)'" : value
                #expect(r.err == "xds: --at must be \(allowed), got \(shown)\n", "\(bench) \(value): \(r.err)")
            }
            let help = try xds(["bench", bench, "--help"])
            #expect(help.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
                .contains("untimed): \(allowed)."), "\(help.out)")
        }
        for value in ["0", "-0", "0.001", "3600"] {
            let r = try xds(["bench", "preview", "--rate", "0", "--at", value, "--for", "1s"])
            #expect(r.status == 0, "\(value): \(r)")
            let at = ["0": "0s", "-0": "0s", "0.001": "0.001s", "3600": "1h"][value] ?? ""
            #expect(r.out.hasPrefix("preview drain node 20 for 1s at \(at) on superpod"), "\(value): \(r.out)")
        }
    }

    /// `validate --sweep --deployment FILE` took a file with a misspelt `[policies]` name (exit 0,
    /// a table) that run and bench decode refuse: it is refused with their line.
    @Test func validateSweepChecksTheFilesPolicyNames() throws {
        let dir = try TestScratch.makeDirectory("xds-sweep-policies")
        let printed = try xds(["run", "--print-config", "--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1"])
        #expect(printed.status == 0 && printed.out.contains("je_routing = \"prefix-aware\""), "\(printed)")
        let good = dir.appendingPathComponent("good.toml"), bad = dir.appendingPathComponent("bad.toml")
        try Data(printed.out.utf8).write(to: good)
        try Data(printed.out.replacingOccurrences(of: "je_routing = \"prefix-aware\"", with: "je_routing = \"bogus\"").utf8)
            .write(to: bad)
        #expect(try xds(["validate", "--sweep", "--deployment", good.path]).status == 0)
        let r = try xds(["validate", "--sweep", "--deployment", bad.path])
        let decode = try xds(["bench", "decode", "--deployment", bad.path, "--batch-per-die", "8", "--context", "512"])
        #expect(r.status == 1 && r.out.isEmpty, "\(r)")
        // At the name's line, as the file's reader gives its own refusals.
        let line = try #require(printed.out.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("je_routing =") }) + 1
        #expect(r.err == "xds: \(bad.path):\(line): [policies] je_routing: unknown JE routing policy 'bogus'; "
            + "expected one of: prefix-aware, least-loaded, round-robin\n", "\(r.err)")
        #expect(decode.status == 1 && decode.err == r.err, "\(decode)")
    }

    /// On a trace, the summary said "at 400.0 req/s (mixed)": the synthetic default, which the
    /// bench never ran.
    @Test func aTraceBenchSaysItReplaysTheTrace() throws {
        let dir = try TestScratch.makeDirectory("xds-bench-trace-test")
        let trace = dir.appendingPathComponent("tiny.csv")
        try Data("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,400,10\n2023-11-16 18:17:04,300,8\n".utf8)
            .write(to: trace)
        let snapshot = try xds(["bench", "snapshot", "--workload", trace.path, "--trace-speedup", "2", "--at", "1",
                                "--count", "1"])
        #expect(snapshot.status == 0, "\(snapshot)")
        #expect(snapshot.out.hasPrefix("1 snapshot of superpod replaying tiny.csv ×2, "), "\(snapshot.out)")
        let preview = try xds(["bench", "preview", "--workload", trace.path, "--at", "1", "--for", "1s"])
        #expect(preview.status == 0, "\(preview)")
        #expect(preview.out.split(separator: "\n").first?.hasSuffix(" on superpod replaying tiny.csv") == true, "\(preview.out)")
        #expect(!snapshot.out.contains("req/s") && !preview.out.contains("req/s"))
    }

    /// `bench decode --mtp-acceptance A` on a model without an MTP module was taken and ignored
    /// (one token a step, exit 0): it is refused, and the bench runs without it or with 0.
    @Test func mtpAcceptanceIsRefusedOnAModelWithoutMTP() throws {
        for (deployment, model) in [("colocated:1:llama-2-7b:nvidia-a100:tp1", []), ("superpod", ["--model", "kimi-k2"])] {
            let base = ["bench", "decode", "--deployment", deployment, "--batch-per-die", "8", "--context", "1024"] + model
            let r = try xds(base + ["--mtp-acceptance", "0.9"])
            #expect(r.status == 1 && r.out.isEmpty, "\(deployment): \(r)")
            #expect(r.err.hasSuffix("has no MTP module, so no draft token is accepted; leave --mtp-acceptance out (or give 0)\n"),
                    "\(r.err)")
            #expect(r.err.split(separator: "\n").last?.hasPrefix("xds: --mtp-acceptance: ") == true, "\(r.err)")
            #expect(try xds(base + ["--json"]).status == 0)
            #expect(try xds(base + ["--mtp-acceptance", "0", "--json"]).status == 0)
        }
        // A model with MTP takes it as before.
        let r1 = try xds(["bench", "decode", "--batch-per-die", "8", "--context", "1024", "--mtp-acceptance", "0.9"])
        #expect(r1.status == 0, "\(r1)")
    }

    /// A replay case whose `xds run` fails is a failed run, not a usage error: it exited 64
    /// (ArgumentParser's `ValidationError`, EX_USAGE) where every other refusal exits 1.
    @Test func aReplayCaseThatFailsExitsOneNamingTheChildsReason() throws {
        let (dir, trace) = try Self.tracesWithABrokenAzureCase("xds-bench-replay-test")
        let r = try xds(["bench", "replay", "--case", "azure-1", "--repeat", "1", "--traces", dir.path])
        #expect(r.status == 1, "\(r)")
        #expect(r.err.hasPrefix("xds: case azure-1: xds run --workload \(trace.path) "), "\(r.err)")
        #expect(r.err.hasSuffix("exited 1: xds: \(trace.path):2: ContextTokens is not an integer: 'abc'; expected a whole number "
            + "of tokens up to the model's context window (at most 10000000)\n"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "\(r.err)")
        // The table's header waited for a row that never came: stdout held a header over nothing.
        #expect(r.out.isEmpty, "\(r.out)")
        // The command shown is the one to rerun, not the bench's own report file (deleted by then).
        #expect(!r.err.contains("--out"), "\(r.err)")
    }

    /// `--case Mooncake` was refused as an unknown case while `--deployment SUPERPOD`, `--model`,
    /// `--eplb ON` and every other named value take any case: the case is found in any case too.
    @Test func aReplayCaseIsNamedInAnyCase() throws {
        // A trace that fails at once: the case was found and run, and no long run is needed.
        let (dir, trace) = try Self.tracesWithABrokenAzureCase("xds-bench-replay-case")
        let r = try xds(["bench", "replay", "--case", "Azure-1", "--repeat", "1", "--traces", dir.path])
        #expect(r.status == 1, "\(r)")
        #expect(r.err.hasPrefix("xds: case azure-1: xds run --workload \(trace.path) "), "\(r.err)")
        // A name that is no case in any case is still refused, naming the cases.
        let unknown = try xds(["bench", "replay", "--case", "Azure-9", "--repeat", "1", "--traces", dir.path])
        #expect(unknown.status == 1 && unknown.out.isEmpty, "\(unknown)")
        #expect(unknown.err.hasPrefix("xds: --case: unknown case 'Azure-9'; expected one of: mooncake, "), "\(unknown.err)")
    }

    /// A traces directory whose Azure code trace fails on its first row (`abc` tokens), so that a
    /// replay case reading it fails at once, naming the row.
    static func tracesWithABrokenAzureCase(_ name: String) throws -> (dir: URL, trace: URL) {
        let dir = try TestScratch.makeDirectory(name)
        let trace = dir.appendingPathComponent("azure_llm_2023_code.csv")
        try Data("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,abc,10\n".utf8).write(to: trace)
        return (dir, trace)
    }

    /// A case that fails after others have run: stdout's table said nothing of it, so it read as
    /// a complete run of the cases above; now its row says it failed and which cases did not run,
    /// and the error line names them too.
    @Test func aReplayCaseThatFailsAfterRowsSaysSoInTheTable() throws {
        let dir = try TestScratch.makeDirectory("xds-bench-replay-rows")
        let trace = dir.appendingPathComponent("azure_llm_2023_code.csv")
        try Data("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,abc,10\n".utf8).write(to: trace)
        let r = try xds(["bench", "replay", "--case", "idle", "--case", "azure-1", "--case", "azure-2", "--repeat", "1",
                         "--traces", dir.path])
        #expect(r.status == 1, "\(r)")
        let rows = r.out.split(separator: "\n").map(String.init)
        #expect(rows.count == 3, "\(r.out)")
        #expect(rows.first?.hasPrefix("case ") == true, "\(r.out)")
        #expect(rows.dropFirst().first?.hasPrefix("idle ") == true, "\(r.out)")
        #expect(rows.last == "azure-1         failed (xds run exited 1; reason on stderr); not run: azure-2", "\(r.out)")
        #expect(r.err.hasSuffix("exited 1: xds: \(trace.path):2: ContextTokens is not an integer: 'abc'; expected a whole number "
            + "of tokens up to the model's context window (at most 10000000) "
            + "(cases not run: azure-2)\n"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "\(r.err)")
    }

    /// `bench decode --context 0` priced a decode step over no KV at all (exit 0), which no
    /// request can be in: a decode request holds at least its prompt's tokens. 1 is the least;
    /// the window is still the most.
    @Test func decodeContextMustHoldAtLeastOneToken() throws {
        for value in ["0", "-0", "0.0"] {
            let r = try xds(["bench", "decode", "--batch-per-die", "1", "--context", value])
            #expect(r.status == 1 && r.out.isEmpty, "\(value): \(r)")
            #expect(r.err == "xds: --context must be a whole number, positive and at most 131072 tokens (deepseek-r1's "
                + "context window), got \(value)\n", "\(r.err)")
        }
        for value in ["1", "4096", "131072"] {
            let r = try xds(["bench", "decode", "--batch-per-die", "1", "--context", value, "--json"])
            #expect(r.status == 0, "\(value): \(r)")
        }
        let help = try xds(["bench", "decode", "--help"])
        #expect(help.out.contains("at least 1"), "\(help.out)")
    }

    /// With 2 snapshots the median was the upper one (`sorted[count / 2]`), so it equalled the
    /// max; it is the mean of the middle two. And one snapshot is "1 snapshot", not "1 snapshots".
    @Test func snapshotMedianOfAnEvenCountIsTheMeanOfTheMiddleTwo() throws {
        struct Out: Decodable { var snapshots: Int; var mean_ms: Double; var median_ms: Double; var max_ms: Double }
        let r = try xds(["bench", "snapshot", "--rate", "5", "--at", "1", "--count", "2", "--json"])
        #expect(r.status == 0, "\(r)")
        let out = try JSONDecoder().decode(Out.self, from: Data(r.out.utf8))
        // Of two samples the median is their mean (computed the same way, so exactly equal).
        #expect(out.snapshots == 2 && out.median_ms == out.mean_ms, "\(r.out)")
        #expect(out.median_ms <= out.max_ms)
        let one = try xds(["bench", "snapshot", "--rate", "5", "--at", "1", "--count", "1"])
        #expect(one.status == 0 && one.out.hasPrefix("1 snapshot of superpod at "), "\(one.out)")
        let two = try xds(["bench", "snapshot", "--rate", "5", "--at", "1", "--count", "2"])
        #expect(two.status == 0 && two.out.hasPrefix("2 snapshots of superpod at "), "\(two.out)")
    }

    /// A dense model has no experts, yet `bench decode|prefill --json` said `"eplb": "on"` and
    /// `"routing": "skewed"`: the keys stay (interfaces.md: extend, never drop) with null, as the
    /// text line says "dense model, no experts"; a MoE model keeps its settings.
    @Test func aDenseModelsJSONClaimsNoExpertSettings() throws {
        let dense = "colocated:1:llama-2-7b:nvidia-a100:tp1"
        for args in [["decode", "--deployment", dense, "--batch-per-die", "8", "--context", "1024"],
                     ["prefill", "--deployment", dense, "--prompt-len", "1024", "--tokens-per-npu", "4096"]] {
            let r = try xds(["bench"] + args + ["--json"])
            #expect(r.status == 0, "\(r)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            #expect(object["eplb"] is NSNull && object["routing"] is NSNull, "\(args[0]): \(r.out)")
            // The breakdown is all `other`, as the text line explains (a dense layer is not split).
            let breakdown = try #require(object["breakdown_ms"] as? [String: Double])
            #expect(Set(breakdown.keys) == ["attention", "moe", "dispatch", "combine", "other"])
            #expect(breakdown["other"]! > 0 && breakdown["attention"] == 0)
        }
        let moe = try xds(["bench", "decode", "--batch-per-die", "8", "--context", "1024", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(moe.out.utf8)) as? [String: Any])
        #expect(object["eplb"] as? String == "on" && object["routing"] as? String == "skewed", "\(moe.out)")
    }

    /// `validate` has no `--model` (the published points are the papers' own models), and its
    /// `--help` did not say how to look at another one: it names the sweep of a deployment that
    /// serves the model, and the example it gives runs, on that model.
    @Test func validateHelpSaysHowToLookAtAnotherModel() throws {
        let help = try xds(["validate", "--help"])
        #expect(help.status == 0, "\(help)")
        let text = help.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        let example = "colocated:1:llama-2-7b:ascend-910c:tp1"
        #expect(text.contains("To look at another model, sweep a deployment that serves it: xds validate --sweep "
            + "--deployment colocated:N:MODEL:PROFILE:tpK (e.g. \(example)), or a .toml file naming the model."), "\(help.out)")
        let r = try xds(["validate", "--sweep", "--deployment", example])
        #expect(r.status == 0 && r.out.contains(" · \(example) · llama-2-7b;"), "\(r)")
    }

    /// The sweep's cells are `bench decode` at its defaults, the barrier's spread of KV lengths
    /// included, and its header said the routing and EPLB but not the spread: a reader took a cell
    /// for a batch of equal contexts. It says it, for an MoE model (a dense model has no barrier).
    @Test func aSweepSaysTheSpreadOfContextsItsCellsArePricedAt() throws {
        let moe = try xds(["validate", "--sweep", "--deployment", "xdeepserve-ma"])
        #expect(moe.status == 0 && moe.out.contains("EPLB on, skewed routing, KV lengths spread with cv 0.29 around the context;"),
                "\(moe)")
        let dense = try xds(["validate", "--sweep", "--deployment", "colocated:1:llama-2-7b:ascend-910c:tp1"])
        #expect(dense.status == 0 && !dense.out.contains("spread"), "\(dense)")
    }

    /// `validate` cut point names at 52 characters ("decode throughput per die (system.md's per
    /// NPU; same"). Every name `--json` gives is printed whole, and the columns after it line up.
    @Test func validateShowsEveryPointsWholeName() throws {
        let json = try xds(["validate", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any], "\(json)")
        let names = try #require(object["points"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        let text = try xds(["validate"])
        let lines = text.out.split(separator: "\n").map(String.init)
        #expect(names.count > 10 && names.contains { $0.count > 52 }, "a name longer than the old column")
        for name in names { #expect(lines.contains { $0.hasPrefix(name + " ") }, "\(name)") }
        // Each row's figures end where the header's column titles do (a range such as
        // "116.000–152.000 µs" pushed the rest of its row out of line).
        let header = try #require(lines.first)
        for title in ["published", "simulated", "error"] {
            let end = try #require(header.range(of: title)).upperBound.utf16Offset(in: header)
            for name in names {
                let row = try #require(lines.first { $0.hasPrefix(name + " ") })
                let index = row.index(row.startIndex, offsetBy: end)
                #expect(row[row.index(before: index)] != " " && row[index] == " ", "\(title): \(row)")
            }
        }
    }

    /// `bench preview` and `bench snapshot` list the common options, `--scenario` among them, but
    /// refuse it: their help says so beside the option instead of offering it.
    @Test func benchHelpSaysItRefusesAScenario() throws {
        for command in ["preview", "snapshot"] {
            let help = try xds(["bench", command, "--help"])
            let text = help.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            #expect(help.status == 0 && text.contains("(run, serve and console; bench preview and snapshot refuse it)"),
                    "\(command): \(help.out)")
            let refused = try xds(["bench", command, "--scenario", "/nonexistent.toml"])
            #expect(refused.status != 0 && refused.err.contains("--scenario applies to run, serve and console"), "\(refused)")
        }
    }

    /// The CLI's exit codes: a command line ArgumentParser cannot read (a stray argument, an
    /// unknown flag, a value not among a flag's choices) is a usage error, 64 (EX_USAGE), on
    /// every subcommand alike, `validate --sweep extra` included; a value read but refused
    /// (out of range, not fitting the deployment) exits 1. Both print one line.
    @Test func usageErrorsExit64AndRefusedValuesExit1() throws {
        for args in [["validate", "--sweep", "extra"], ["run", "extra"], ["bench", "decode", "extra"],
                     ["bench", "decode", "--eplb", "sideways"], ["validate", "--bogus"]] {
            let r = try xds(args)
            #expect(r.status == 64 && r.out.isEmpty, "\(args): \(r)")
            #expect(r.err.hasPrefix("xds: ") && r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
        }
        for args in [["validate", "--deployment", "superpod"], ["bench", "decode", "--context", "-5"]] {
            let r = try xds(args)
            #expect(r.status == 1 && r.out.isEmpty, "\(args): \(r)")
            #expect(r.err.hasPrefix("xds: ") && r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
        }
    }

    /// `--eplb`, `--routing` and `--seed` on a dense model (no experts) were taken and ignored:
    /// `--eplb perfect --routing balanced` printed the same figures, exit 0. Refused, one line;
    /// a MoE model takes them as before, and a dense one runs without them.
    @Test func expertSettingsAreRefusedOnADenseModel() throws {
        let dense = "colocated:1:llama-2-7b:nvidia-a100:tp1"
        for base in [["decode", "--deployment", dense, "--batch-per-die", "8", "--context", "1024"],
                     ["prefill", "--deployment", dense, "--prompt-len", "1024", "--tokens-per-npu", "4096"]] {
            for (flag, value) in [("--eplb", "perfect"), ("--routing", "balanced"), ("--seed", "7")] {
                let r = try xds(["bench"] + base + [flag, value])
                #expect(r.status == 1 && r.out.isEmpty, "\(base[0]) \(flag): \(r)")
                #expect(r.err == "xds: \(flag): llama-2-7b is a dense model with no experts to balance or route; "
                    + "leave \(flag) out\n", "\(r.err)")
            }
            #expect(try xds(["bench"] + base + ["--json"]).status == 0)
        }
        let moe = try xds(["bench", "decode", "--batch-per-die", "8", "--context", "1024", "--eplb", "perfect",
                           "--routing", "balanced", "--seed", "7", "--json"])
        #expect(moe.status == 0, "\(moe)")
        #expect(moe.out.contains("\"eplb\" : \"perfect\"") && moe.out.contains("\"routing\" : \"balanced\""), "\(moe.out)")
    }
    /// `bench decode --json > report.json` on a full disk (and every other command that prints a
    /// report) exited 0 with the report lost, where `xds run` said so and exited 1: the same one
    /// line and exit 1 for each.
    @Test func aReportStdoutCannotTakeFailsEveryCommand() throws {
        let commands: [[String]] = [
            ["bench", "decode", "--json"], ["bench", "decode"], ["bench", "prefill", "--json"], ["bench", "prefill"],
            ["validate", "--json"], ["validate"],
            ["bench", "snapshot", "--rate", "1", "--at", "1", "--count", "1", "--json"],
            ["bench", "preview", "--rate", "0", "--at", "0", "--for", "1s"],
        ]
        for arguments in commands {
            let r = try runBuiltXDS(arguments, stdoutTo: "/dev/full")
            #expect(r.reason == .exit && r.status == 1, "\(arguments): \(r)")
            #expect(r.err == "xds: stdout: writing the report failed (No space left on device)\n", "\(arguments)")
        }
    }

    /// `bench replay --traces ''` said "case mooncake needs mooncake_conversation.jsonl, which is
    /// missing (give the traces directory with --traces)": it was given. What is wrong with the
    /// value is said instead (empty, not there, not a directory, the file not in it).
    @Test func aBadTracesDirectoryIsNamedAsSuch() throws {
        let missing = "/nonexistent-\(getpid())"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("xds-traces-file-\(getpid())").path
        FileManager.default.createFile(atPath: file, contents: Data())
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("xds-traces-empty-\(getpid())").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: file)
            try? FileManager.default.removeItem(atPath: empty)
        }
        for (value, said) in [
            ("", "xds: --traces: empty; give the directory of the shared traces (e.g. --traces /work/shared/traces)\n"),
            (missing, "xds: --traces: no directory '\(missing)'\n"),
            (file, "xds: --traces: '\(file)' is not a directory\n"),
            (empty, "xds: --traces: case mooncake needs mooncake_conversation.jsonl, which is not in '\(empty)'\n"),
        ] {
            let r = try xds(["bench", "replay", "--case", "mooncake", "--repeat", "1", "--traces", value])
            #expect(r.status == 1 && r.out.isEmpty, "\(value): \(r)")
            #expect(r.err == said, "\(value)")
        }
        // An empty value is refused even for a case that reads no trace: it was given, and is wrong.
        let synthetic = try xds(["bench", "replay", "--case", "idle", "--repeat", "1", "--traces", ""])
        #expect(synthetic.status == 1 && synthetic.err.hasPrefix("xds: --traces: empty;"), "\(synthetic)")
    }

    /// `bench preview --command ''` said "--command/--for: expected a command to preview, e.g.
    /// 'preview drain node 20 for 10m'" (the console's syntax, and either flag); every refusal of
    /// the two named both. Each names its own flag, an empty command in the flag's own form.
    @Test func aPreviewRefusalNamesTheFlagAtFault() throws {
        for (extra, said) in [
            (["--command", ""], "xds: --command: empty; give the command to preview, e.g. --command 'drain node 20'\n"),
            (["--command", "  "], "xds: --command: empty; give the command to preview, e.g. --command 'drain node 20'\n"),
            (["--for", "nan"], "xds: --for: expected a duration from 1s to 1h, such as 90s, 10m or 1h, got 'nan'\n"),
            (["--for", "0s"], "xds: --for: a preview runs from 1s to 1h of simulated time (a duration from 1s to 1h, "
                + "such as 90s, 10m or 1h); got '0s'\n"),
            (["--command", "speed 2"], "xds: --command: 'speed 2' changes only the pace of the live run, not what happens "
                + "in it; nothing to preview\n"),
            // A negative duration was taken for the next flag: exit 64, "Missing value for '--for
            // <for>'", where the value was there (every other number and time flag takes `-1`).
            (["--for", "-1s"], "xds: --for: a preview runs from 1s to 1h of simulated time (a duration from 1s to 1h, "
                + "such as 90s, 10m or 1h); got '-1s'\n"),
        ] {
            let r = try xds(["bench", "preview", "--rate", "0", "--at", "0"] + extra)
            #expect(r.status == 1 && r.out.isEmpty, "\(extra): \(r)")
            #expect(r.err == said, "\(extra)")
        }
    }
}
