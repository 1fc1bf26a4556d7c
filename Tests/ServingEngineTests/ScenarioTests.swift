import Foundation
import PodModel
import SimKit
import Testing
@testable import ServingEngine

@Suite struct ScenarioTests {
    @Test func durationsAsOperatorsWriteThem() {
        #expect(SimTime.parseDuration("90") == 90)
        #expect(SimTime.parseDuration("90s") == 90)
        #expect(SimTime.parseDuration("500ms") == 0.5)
        #expect(SimTime.parseDuration("10m") == 600)
        #expect(SimTime.parseDuration("1h30m") == 5400)
        #expect(SimTime.parseDuration("1.5h") == 5400)
        for bad in ["", "-5", "ten", "5x", "m", "5m3", "inf", "nan", "0x10", "1e400", "1.2.3s", "٣s"] {
            #expect(SimTime.parseDuration(bad) == nil, "\(bad)")
        }
    }

    @Test func durationsAreBoundedAndSayWhy() throws {
        #expect(SimTime.parseDuration("1e3") == 1_000)
        #expect(SimTime.parseDuration("1e10") == 1e10, "the ceiling itself is allowed")
        #expect(SimTime.parseDuration("1e12ms") == 1e9, "a 10^12 ms gap is a valid time")
        #expect(SimTime.parseDuration("1e10s1ms") == nil)
        let far = try #require(throws: SimTime.DurationError.self) { try SimTime.checkedDuration("99999999999h") }
        #expect(far.message == "time '99999999999h' is out of range; expected 0 to 10000000000 s (about 317 years)")
        let bad = try #require(throws: SimTime.DurationError.self) { try SimTime.checkedDuration("soon\u{1B}[2J") }
        #expect(bad.message == "expected a time like 90s, 10m or 1h, got 'soon?[2j'")
    }

    /// `1h1h` was summed to two hours, `30m1h` to 1h30m and `10s10s` to 20 s: each unit is named
    /// at most once and largest first, and a time that does otherwise is refused with one line
    /// naming the form, by the one reader of times (`--duration`, scenario `at =`, a preview's
    /// `for`, the admin API's preview `duration`).
    @Test func aRepeatedOrReorderedUnitIsRefusedNamingTheForm() throws {
        for text in ["1h1h", "30m1h", "10s10s", "1m1m30s", "500ms1s", "1s1m", "1min1m", "2m1h"] {
            let e = try #require(throws: SimTime.DurationError.self, "\(text)") { try SimTime.checkedDuration(text) }
            #expect(e.message == "time '\(text)' repeats a unit or puts a smaller one first; write each of h, m, s, ms "
                + "at most once, largest first (like 1h30m or 2m30s)", "\(text)")
            guard case .failure(let p) = PreviewRequest.parseDuration(text) else {
                Issue.record("preview for \(text) was accepted")
                continue
            }
            #expect(p.message == "'\(text)' repeats a unit or puts a smaller one first; write each of h, m, s, ms "
                + "at most once, largest first (like 1h30m or 2m30s)", "\(text)")
        }
        #expect(SimTime.parseDuration("1h30m15s500ms") == 5415.5)
        #expect(SimTime.parseDuration("2m30s") == 150)
        #expect(SimTime.parseDuration("10min") == 600, "the preview's spelling of a minute reads the same everywhere")
        // A preview reads times as everything else does: compound forms too (it refused `1m30s`).
        #expect(try PreviewRequest.parseDuration("1m30s").get() == 90)
        #expect(try PreviewRequest.parseDuration("10min").get() == 600)
        let toml = "name = \"n\"\n[[step]]\nat = \"1h1h\"\ncommand = \"drain node 3\"\n"
        let refused = try #require(throws: ConfigError.self) {
            try Scenario(toml: toml, source: "s.toml", topology: .cloudMatrix384)
        }
        #expect(refused.description == "s.toml:3: step 1: 'at': time '1h1h' repeats a unit or puts a smaller one first; "
            + "write each of h, m, s, ms at most once, largest first (like 1h30m or 2m30s)")
    }

    /// `-0` is zero, which is in range: a scenario's `at = -0.0` (TOML's negative zero, as a
    /// generator writes it) was refused as "time '-0.0' is out of range; expected 0 to …", naming
    /// a range the value is in. It is the run's start, as `at = 0` is.
    @Test func negativeZeroIsTimeZero() throws {
        for text in ["-0", "-0s", "-0.0", "-0ms", "-0h0m"] {
            #expect(SimTime.parseDuration(text) == 0, "\(text)")
        }
        let toml = "name = \"n\"\n[[step]]\nat = -0.0\ncommand = \"rate 5\"\n"
        let scenario = try Scenario(toml: toml, source: "s.toml", topology: .cloudMatrix384)
        #expect(scenario.steps.map(\.at) == [0])
    }

    /// `at = "1e-400s"` (or `--duration`'s and a preview's time text) was read as 0 s: a nonzero
    /// numeral that underflows to 0 is refused, as the command language and the flags refuse
    /// `1e-400`; zero written any way and tiny times that are not 0 are still times.
    @Test func aTimeThatUnderflowsToZeroIsRefused() throws {
        for text in ["1e-400", "1e-400s", "5e-400ms", "1h1e-400s", "0.1e-330m"] {
            let e = try #require(throws: SimTime.DurationError.self, "\(text)") { try SimTime.checkedDuration(text) }
            #expect(e.message == "time '\(text)' underflows to 0; write 0 if 0 is meant" && e.reason == .outOfRange, "\(text)")
        }
        for text in ["0", "0e5", "0.0s", "0e-400ms", "-0e-400", "1e-300s", "0h0m"] {
            #expect(SimTime.parseDuration(text) != nil, "\(text)")
        }
        let toml = "name = \"n\"\n[[step]]\nat = \"1e-400s\"\ncommand = \"rate 5\"\n"
        let refused = try #require(throws: ConfigError.self) {
            try Scenario(toml: toml, source: "s.toml", topology: .cloudMatrix384)
        }
        #expect(refused.description == "s.toml:3: step 1: 'at': time '1e-400s' underflows to 0; write 0 if 0 is meant")
    }

    /// A scenario step at a negative time (`at = "-5s"`, `at = -5`) was told "expected a time like
    /// 90s, 10m or 1h", as if the text were garbled; it is a time below the range, and the
    /// message names the range, as for a time above it. Garbled text keeps its message.
    @Test func aNegativeTimeIsOutOfRangeNamingTheRange() throws {
        for text in ["-5s", "-5", "-1h30m", "-0.5"] {
            let e = try #require(throws: SimTime.DurationError.self) { try SimTime.checkedDuration(text) }
            #expect(e.message == "time '\(text)' is out of range; expected 0 to 10000000000 s (about 317 years)", "\(text)")
        }
        for text in ["-soon", "--5s", "-"] {
            let e = try #require(throws: SimTime.DurationError.self) { try SimTime.checkedDuration(text) }
            #expect(e.message == "expected a time like 90s, 10m or 1h, got '\(text)'", "\(text)")
        }
        let toml = "name = \"n\"\n[[step]]\nat = -5\ncommand = \"drain node 3\"\n"
        let refused = try #require(throws: ConfigError.self) {
            try Scenario(toml: toml, source: "s.toml", topology: .cloudMatrix384)
        }
        #expect(refused.description == "s.toml:3: step 1: 'at': time '-5' is out of range; expected 0 to 10000000000 s (about 317 years)")
    }

    /// A scenario's `at = 1e-400` was read as 0 (the TOML library rounds it so) and the step ran
    /// at the start, where `--rate 1e-400` and `rate 1e-400` are refused: a nonzero numeral that
    /// underflows to 0 is no number anyone meant. Every TOML number goes through the same check
    /// (scenarios, deployments, themes), one line naming the file and the line; zero written any
    /// way, tiny numbers that are not 0, keys, strings, comments and dates are left alone.
    @Test func aTOMLNumberThatUnderflowsToZeroIsRefused() throws {
        let toml = "name = \"n\"\n[[step]]\nat = 1e-400\ncommand = \"rate 5\"\n"
        let refused = try #require(throws: ConfigError.self) {
            try Scenario(toml: toml, source: "s.toml", topology: .cloudMatrix384)
        }
        #expect(refused.description == "s.toml:3: the number 1e-400 underflows to 0; write 0 if 0 is meant")
        for text in ["a = -1e-400\n", "a = +1.5E-999\n", "a = 1_0e-4_00\n", "a = [1, 1e-400]\n", "a = [\n  2, # c\n  0.1e-330 ]\n",
                     "t = { b = 1, a = 0.000001e-320 }\n", "a=1e-400#c\n"] {
            #expect(TOMLPreflight.problem(in: text)?.message.hasSuffix("underflows to 0; write 0 if 0 is meant") == true, "\(text)")
        }
        #expect(TOMLPreflight.problem(in: "a = [\n  2, # c\n  0.1e-330 ]\n")?.line == 3)
        for text in ["a = 0.0\n", "a = 0e5\n", "a = -0.0\n", "a = +0.0e-400\n", "a = 1e-300\n", "a = 5e-324\n",
                     "a = 1979-05-27\n", "a = 1979-05-27T07:32:00.5Z\n", "a = 07:32:00\n", "a = 0x10\n", "a = inf\n",
                     "a = nan\n", "a = '1e-400'\n", "a = \"1e-400\"\n", "# a = 1e-400\n", "1e-400 = 2\n",
                     "t = { a = 1, 1e-400 = 2 }\n", "a = [1, 2]\nb = 1e-3\n", "a.1e-400 = 1\n"] {
            #expect(TOMLPreflight.problem(in: text) == nil, "\(text)")
        }
        let deployment = try #require(throws: ConfigError.self) {
            try Deployment(toml: "name = \"d\"\nmodel = \"deepseek-r1\"\nnodes = 1e-400\n", source: "d.toml")
        }
        #expect(deployment.description == "d.toml:3: the number 1e-400 underflows to 0; write 0 if 0 is meant")
    }

    @Test func shippedScenariosParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".toml") }.sorted()
        #expect(files.count >= 3)
        for f in files {
            let s = try Scenario.load(path: dir.appendingPathComponent(f).path)
            #expect(!s.steps.isEmpty)
            #expect(zip(s.steps, s.steps.dropFirst()).allSatisfy { $0.at <= $1.at })
        }
    }

    @Test func stepsAreSortedStablyAndCommandsChecked() throws {
        let s = try Scenario(toml: """
            name = "t"
            [[step]]
            at = "2m"
            command = "rate 5"
            [[step]]
            at = "30s"
            command = "drain node 3"
            [[step]]
            at = 30
            command = "undrain node 3"
            """, source: "t.toml")
        #expect(s.steps.map(\.command) == [.drain(node: 3), .undrain(node: 3), .rate(requestsPerSecond: 5)])
        #expect(s.steps.map(\.at) == [30, 30, 120])
    }

    /// `step = []` was taken as a scenario with no steps, where a scenario without `step` is
    /// refused: both are "no steps", at the line of the empty list.
    @Test func anEmptyStepListIsRefusedAsAMissingOneIs() {
        for text in ["name = \"x\"\nstep = []\n", "name = \"x\"\n"] {
            do {
                _ = try Scenario(toml: text, source: "t.toml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)" == (text.contains("[]") ? "t.toml:2: " : "t.toml: ")
                            + "no steps; add [[step]] tables with 'at' and 'command'")
            }
        }
    }

    @Test func badScenariosGetOneLineNamingFileAndStep() {
        let cases: [(String, String)] = [
            ("name = \"x\"\n[[step]]\nat = \"30s\"\ncommand = \"drain nod 3\"\n", "t.toml:4: step 1: "),
            ("name = \"x\"\n[[step]]\nat = \"soon\"\ncommand = \"pause\"\n", "step 1: 'at': expected a time like 90s, 10m or 1h, got 'soon'"),
            ("name = \"x\"\n[[step]]\nat = \"1s\"\n", "missing 'command'"),
            ("name = \"x\"\n", "no steps"),
            // One [step] table (single brackets) is not "no steps": the fix is named.
            ("name = \"x\"\n[step]\nat = \"1s\"\ncommand = \"pause\"\n", "t.toml:2: 'step' must be an array of tables: write each step as [[step]]"),
            ("name = \"x\"\nstep = 3\n", "write each step as [[step]]"),
            ("[[step]]\nat = \"1s\"\ncommand = \"pause\"\n", "missing 'name'"),
            // Present but not a string is not "missing"; blank names show as nothing in the console.
            ("name = 5\n[[step]]\nat = \"1s\"\ncommand = \"pause\"\n", "t.toml:1: 'name' must be a string"),
            ("name = \"  \"\n[[step]]\nat = \"1s\"\ncommand = \"pause\"\n", "t.toml:1: 'name' must not be empty"),
            // The same for a step's keys: `at = true` and `command = 5` were "missing".
            ("name = \"x\"\n[[step]]\nat = true\ncommand = \"pause\"\n",
             "t.toml:3: step 1: 'at' must be a time like \"30s\", \"2m\" or \"1h\" (or a number of seconds)"),
            ("name = \"x\"\n[[step]]\nat = [1]\ncommand = \"pause\"\n", "t.toml:3: step 1: 'at' must be a time like"),
            ("name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = 5\n", "t.toml:4: step 1: 'command' must be a string"),
            ("name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = [\"pause\"]\n", "t.toml:4: step 1: 'command' must be a string"),
            ("name = \"x\"\nsteps = 3\n", "unknown field 'steps'"),
            ("name = = \"x\"\n", "t.toml:1: malformed TOML"),
            ("name = \"x\"\n[[step]]\nat = 1e300\ncommand = \"pause\"\n",
             "t.toml:3: step 1: 'at': time '1e+300' is out of range; expected 0 to 10000000000 s (about 317 years)"),
            ("name = \"x\"\n[[step]]\nat = -5\ncommand = \"pause\"\n",
             "t.toml:3: step 1: 'at': time '-5' is out of range; expected 0 to 10000000000 s (about 317 years)"),
            ("name = \"x\"\n[[step]]\nat = nan\ncommand = \"pause\"\n", "t.toml:3: step 1: 'at': expected a time like"),
            ("name = \"a\\u001B[2J\"\n[[step]]\nat = 1\ncommand = \"pause\"\n",
             "t.toml:1: 'name' must not contain control characters, got 'a\\u{1B}[2J'"),
            ("name = \"x\"\n[[step]]\nat = 1\ncommand = \"rate 1e308\"\n",
             "t.toml:4: step 1: expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '1e308'"),
        ]
        for (text, expected) in cases {
            do {
                _ = try Scenario(toml: text, source: "t.toml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
                #expect(!"\(error)".contains("\n"))
            }
        }
    }

    /// Steps are checked against the pod when the scenario is loaded, like console commands.
    @Test func stepsNamingMissingHardwareOrFaultsAreRefusedAtLoad() {
        let pod = PodTopology.cloudMatrix384  // 48 nodes, 384 NPUs, 768 dies
        func load(_ steps: [(String, String)]) -> String? {
            let text = "name = \"x\"\n" + steps.map { "[[step]]\nat = \"\($0.0)\"\ncommand = \"\($0.1)\"\n" }.joined()
            do {
                _ = try Scenario(toml: text, source: "s.toml", topology: pod)
                return nil
            } catch { return "\(error)" }
        }
        #expect(load([("1s", "drain node 48")]) == "s.toml:4: step 1: node 48 does not exist; the pod has nodes 0…47")
        #expect(load([("1s", "pause"), ("2s", "fault npu 384")])
            == "s.toml:7: step 2: NPU 384 does not exist; the pod has NPUs 0…383")
        #expect(load([("1s", "fault link 3-400")]) == "s.toml:4: step 1: NPU 400 does not exist; the pod has NPUs 0…383")
        #expect(load([("1s", "fault hbm die 768")]) == "s.toml:4: step 1: die 768 does not exist; the pod has dies 0…767")
        #expect(load([("1s", "fault straggler die 900 slowdown 2")])
            == "s.toml:4: step 1: die 900 does not exist; the pod has dies 0…767")
        #expect(load([("1s", "undrain node 100")]) == "s.toml:4: step 1: node 100 does not exist; the pod has nodes 0…47")
        #expect(load([("1s", "fault node 48")]) == "s.toml:4: step 1: node 48 does not exist; the pod has nodes 0…47")
        // A one-node GPU cluster says "only node 0", not "nodes 0…0".
        let gpus = try! Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1").topology()
        do {
            _ = try Scenario(toml: "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"drain node 2\"\n", source: "s.toml",
                             topology: gpus)
            Issue.record("a missing node was accepted")
        } catch {
            #expect("\(error)" == "s.toml:4: step 1: node 2 does not exist; the pod has only node 0")
        }
        #expect(PodTopology.missing("node", 2, count: 1) == "node 2 does not exist; the pod has only node 0")
        #expect(PodTopology.missing("NPU", 9, count: 8) == "NPU 9 does not exist; the pod has NPUs 0…7")
        // Fault ids are 1, 2, 3… in injection (time) order; heal N needs N earlier fault steps.
        #expect(load([("1s", "heal 1")])
            == "s.toml:4: step 1: heal 1: no earlier step injects a fault (fault ids are 1, 2, 3… in injection order)")
        #expect(load([("1s", "fault die 3"), ("2s", "fault glitch"), ("3s", "heal 3")])
            == "s.toml:10: step 3: heal 3: earlier steps inject at most 2 faults (ids 1…2, in injection order)")
        // File order is not run order: the heal at 10s comes before the fault at 20s.
        #expect(load([("20s", "fault die 3"), ("10s", "heal 1")])
            == "s.toml:7: step 2: heal 1: no earlier step injects a fault (fault ids are 1, 2, 3… in injection order)")
        #expect(load([("1s", "fault die 3"), ("2s", "heal 1"), ("3s", "heal 1")])
            == "s.toml:10: step 3: heal 1: an earlier step already heals fault 1")
        #expect(load([("1s", "heal all")]) == "s.toml:4: step 1: heal all: no earlier step injects a fault")
        #expect(load([("1s", "fault die 3"), ("2s", "heal all"), ("3s", "heal all")])
            == "s.toml:10: step 3: heal all: no fault step since the previous 'heal all'")
        // Valid neighbours still load.
        #expect(load([("1s", "drain node 47"), ("1s", "fault npu 383"), ("1s", "fault die 700"),
                      ("2s", "fault link 0-383 degrade 2"), ("3s", "heal 2"), ("4s", "heal all"), ("5s", "fault glitch"),
                      ("6s", "heal 4"), ("7s", "undrain node 47")]) == nil)
        // Same time: file order decides, so a heal right after its fault at the same instant is fine.
        #expect(load([("5s", "fault die 1"), ("5s", "heal 1")]) == nil)
        // A word that is no number in range names the pod's range too, not the grammar's 0…999999.
        #expect(load([("1s", "drain node -1")])
            == "s.toml:4: step 1: expected a node number after 'drain node', got '-1'; the pod has nodes 0…47")
        #expect(load([("1s", "fault die x")])
            == "s.toml:4: step 1: expected a die number after 'fault die', got 'x'; the pod has dies 0…767")
    }

    @Test func shippedScenariosFitTheirPresets() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".toml") }
        for f in files {
            _ = try Scenario.load(path: dir.appendingPathComponent(f).path, topology: .cloudMatrix384)
        }
    }

    @Test func validateAgainstAnotherPodNamesTheStep() throws {
        let s = try Scenario(toml: "name = \"x\"\n[[step]]\nat = \"90s\"\ncommand = \"fault npu 37\"\n", source: "s.toml")
        let small = PodTopology(nodes: 2, npusPerNode: 8, diesPerNPU: 2)
        let error = try #require(throws: ConfigError.self) { try s.validate(against: small, source: "s.toml") }
        #expect(error.description == "s.toml: step at 90 s 'fault npu 37': NPU 37 does not exist; the pod has NPUs 0…15")
        try s.validate(against: .cloudMatrix384, source: "s.toml")
    }

    /// TOML the TOML library would abort on is refused first, with the line.
    @Test func tomlThatAbortsTheTOMLLibraryIsRefusedFirst() {
        #expect(TOMLPreflight.problem(in: "name = \"x\"\n[[\u{5}step]]\n")?.line == 2)
        #expect(TOMLPreflight.problem(in: "[[\u{FFFD}tep]]\n")?.message
            == "malformed table header; expected [name] or [[name]] with a plain or quoted name")
        #expect(TOMLPreflight.problem(in: "a = 1\n[[\rstep]]\n")?.message
            == "a carriage return must be followed by a newline in TOML")
        #expect(TOMLPreflight.problem(in: "[ =]\n") != nil)
        #expect(TOMLPreflight.problem(in: "a = [1,\n# c\n}]\n")?.message == "unexpected '}' after ','; expected a value")
        #expect(TOMLPreflight.problem(in: "a = \"[}\"\nb = '[,}'\n") == nil, "inside strings '}' is text")
        #expect(TOMLPreflight.problem(in: "a = [\n\u{2028}]\n")?.line == 2)
        #expect(TOMLPreflight.problem(in: "name = \"é ✓\" # ünïcode comment\n") == nil)
        // Valid TOML passes: CRLF, quoted header names, multi-line strings with '[' lines.
        #expect(TOMLPreflight.problem(in: "name = \"x\"\r\n[[step]]\r\nat = 1\r\n") == nil)
        #expect(TOMLPreflight.problem(in: "[ \"quoted key\" ]\n[[ step ]]\n") == nil)
        #expect(TOMLPreflight.problem(in: "description = \"\"\"\n[ = not a header\n\"\"\"\n[[step]]\n") == nil)
        #expect(TOMLPreflight.problem(in: "d = '''\n[#\n'''\n") == nil)
        do {
            _ = try Scenario(toml: "name = \"x\"\n[[\u{5}step]]\n", source: "t.toml")
            Issue.record("accepted")
        } catch {
            #expect("\(error)" == "t.toml:2: control character \\u{5} is not allowed in TOML; write it as an escape inside a quoted string")
        }
    }

    /// TOMLKit reads toml++'s strings as C strings, so a `\u0000` escape silently cut a value
    /// short: `drain node 3\u0000 and more` ran `drain node 3`, `1s\u0000junk` was 1 s.
    /// Such a string is refused, naming the line; literal strings hold the six characters as text.
    @Test func aNulEscapeInAStringIsRefusedNotCutShort() {
        let expected = "a NUL character (\\u0000) in a string is not allowed: it would cut the string short"
        for text in [
            "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"drain node 3\\u0000 and more\"\n",
            "name = \"x\"\n[[step]]\nat = \"1s\\u0000junk\"\ncommand = \"rate 5\"\n",
            "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"\"\"rate 5\\U00000000\"\"\"\n",
        ] {
            #expect(TOMLPreflight.problem(in: text)?.message == expected, "\(text)")
            #expect(throws: ConfigError.self) { _ = try Scenario(toml: text, source: "t.toml") }
        }
        #expect(TOMLPreflight.problem(in: "name = \"x\"\nat = \"1s\"\ncommand = \"drain node 3\\u0000\"\n")?.line == 3)
        do {
            _ = try Scenario(toml: "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"drain node 3\\u0000 and more\"\n", source: "t.toml")
            Issue.record("accepted")
        } catch {
            #expect("\(error)" == "t.toml:4: " + expected)
        }
        // Not a NUL: other escapes, an escaped backslash before u0000, and literal strings.
        #expect(TOMLPreflight.problem(in: "a = \"\\u0041 \\u00001\"\n")?.message == expected, "\\u0000 then a digit is still NUL")
        #expect(TOMLPreflight.problem(in: "a = \"\\u0041\\t\\U0001F600\"\n") == nil)
        #expect(TOMLPreflight.problem(in: "a = \"\\\\u0000\"\n") == nil, "an escaped backslash, then text")
        #expect(TOMLPreflight.problem(in: "a = '\\u0000'\nb = '''\\U00000000'''\n") == nil)
        #expect(TOMLPreflight.problem(in: "# \\u0000 in a comment\na = 1\n") == nil)
    }
}
