import PodModel
import Testing
@testable import ServingEngine

/// A scenario file's refusals name the line (`file:LINE: …`), as a deployment file's do: they
/// named the file and the step number only, leaving the author to count `[[step]]` tables.
@Suite struct ScenarioLineTests {
    func message(_ toml: String, topology: PodTopology? = nil) -> String? {
        do { _ = try Scenario(toml: toml, source: "s.toml", topology: topology); return nil } catch { return "\(error)" }
    }

    static let text = """
        # a scenario
        name = "x"

        [[step]]
        at = "10s"
        command = "rate 5"

        [[step]]
        at = "20s"
        command = "pause"
        """

    /// `text` with `old` replaced in the second step only.
    func second(_ old: String, _ new: String) -> String {
        let parts = Self.text.components(separatedBy: "at = \"20s\"")
        return parts[0] + ("at = \"20s\"" + parts[1]).replacingOccurrences(of: old, with: new)
    }

    @Test func aStepsKeyIsRefusedAtItsLine() {
        #expect(message(Self.text) == nil)
        #expect(message(second("at = \"20s\"", "at = \"soon\""))
                    == "s.toml:9: step 2: 'at': expected a time like 90s, 10m or 1h, got 'soon'")
        #expect(message(second("command = \"pause\"", "command = \"paws\""))?.hasPrefix("s.toml:10: step 2: ") == true)
        #expect(message(second("command = \"pause\"", "command = 5"))
                    == "s.toml:10: step 2: 'command' must be a string, such as \"drain node 5\"")
        #expect(message(second("command = \"pause\"", "command = \"pause\"\nwhen = 1"))
                    == "s.toml:11: step 2: unknown field 'when'; expected 'at' and 'command'")
        // A key that is missing: the line of its [[step]] table.
        #expect(message(second("command = \"pause\"", ""))?.hasPrefix("s.toml:8: step 2: missing 'command'") == true)
        // Checked against the pod: the step's command line.
        #expect(message(second("command = \"pause\"", "command = \"drain node 48\""), topology: .cloudMatrix384)
                    == "s.toml:10: step 2: node 48 does not exist; the pod has nodes 0…47")
        #expect(message(second("command = \"pause\"", "command = \"heal 1\""), topology: .cloudMatrix384)?
                    .hasPrefix("s.toml:10: step 2: heal 1: no earlier step injects a fault") == true)
    }

    @Test func topLevelKeysAreRefusedAtTheirLines() {
        #expect(message(Self.text.replacingOccurrences(of: "name = \"x\"", with: "name = 5"))
                    == "s.toml:2: 'name' must be a string")
        #expect(message(Self.text.replacingOccurrences(of: "name = \"x\"", with: "name = \"x\"\ndescription = 1"))
                    == "s.toml:3: 'description' must be a string")
        #expect(message(Self.text.replacingOccurrences(of: "name = \"x\"", with: "name = \"x\"\nsteps = 1"))
                    == "s.toml:3: unknown field 'steps'; expected name, description and [[step]] tables")
        #expect(message("name = \"x\"\n\n[step]\nat = \"1s\"\ncommand = \"pause\"\n")?.hasPrefix("s.toml:3: 'step' must be an array") == true)
        // One step too many: the line of the first step past the limit.
        let steps = String(repeating: "[[step]]\nat = 1\ncommand = \"pause\"\n", count: Scenario.maxSteps + 1)
        #expect(message("name = \"x\"\n" + steps)
                    == "s.toml:\(2 + 3 * Scenario.maxSteps): \(Scenario.maxSteps + 1) steps; a scenario holds at most \(Scenario.maxSteps)")
    }

    /// A misspelt table (`[[stepp]]`) or an unknown one is refused at its header's line, naming
    /// the header as written: it was "s.toml: unknown field 'stepp'", the one TOML refusal
    /// without a line.
    @Test func anUnknownTableIsRefusedAtItsHeader() {
        #expect(message(Self.text + "\n\n[[stepp]]\nat = \"30s\"\ncommand = \"resume\"\n")
                    == "s.toml:12: unknown table [[stepp]]; expected name, description and [[step]] tables")
        #expect(message(Self.text + "\n[meta]\nauthor = \"me\"\n")
                    == "s.toml:11: unknown table [meta]; expected name, description and [[step]] tables")
        // A sub-table of the second step: its own header, not the step's.
        #expect(message(Self.text + "\n[step.extra]\nx = 1\n")
                    == "s.toml:11: step 2: unknown table [step.extra]; expected 'at' and 'command'")
    }

    /// Steps written as inline tables (`step = [{at = "1s", command = "pause"}]`, which TOML
    /// allows for an array of tables) were refused naming the file alone: the line scan looked
    /// only for `[[step]]` headers and `key = …` lines. Each is refused at its key's line (the
    /// step's opening brace when the key is missing), brackets and braces inside strings and
    /// comments being text.
    @Test func anInlineTableStepIsRefusedAtItsLine() {
        #expect(message("name = \"x\"\nstep = [{at = \"1s\", command = \"pause\", bogus = 1}]\n")
                    == "s.toml:2: step 1: unknown field 'bogus'; expected 'at' and 'command'")
        #expect(message("name = \"x\"\nstep = [{at = \"1s\", command = \"pause\"}, {at = true, command = \"resume\"}]\n")
                    == "s.toml:2: step 2: 'at' must be a time like \"30s\", \"2m\" or \"1h\" (or a number of seconds)")
        let lines = """
            name = "x"
            step = [ # steps {at, command} in [brackets]
              {at = "1s", command = "pause"}, # {not = 1}, [x]
              {at = "2s", command = "paws"},

              {at = "3s"},
            ]
            """
        #expect(message(lines)?.hasPrefix("s.toml:4: step 2: unknown command 'paws'") == true, "\(message(lines) ?? "")")
        let missing = lines.replacingOccurrences(of: "\"paws\"", with: "\"resume\"")
        #expect(message(missing) == "s.toml:6: step 3: missing 'command' (a string)")
        #expect(message(missing.replacingOccurrences(of: "\"3s\"", with: "\"3s\", command = \"rate x\""))?
                    .hasPrefix("s.toml:6: step 3: ") == true)
        // Braces and quotes inside strings (basic, literal, multi-line) are text, and a
        // multi-line string's lines count.
        let tricky = "step = [{at = \"}\", command = '{'}, {at = \"\"\"\n}\"\"\", \"command\" = 1},\n  {at = 2}]"
        #expect(TOMLDocument.line(ofKey: "command", inInlineEntry: 2, ofArray: "step", text: tricky) == 2)
        #expect(TOMLDocument.line(ofKey: "command", inInlineEntry: 3, ofArray: "step", text: tricky) == 3)
        #expect(TOMLDocument.line(ofKey: nil, inInlineEntry: 4, ofArray: "step", text: tricky) == nil)
    }

    /// CRLF line ends (a file saved on Windows) kept no line: "\r\n" is one Character to Swift.
    @Test func aCRLFScenarioKeepsItsLines() {
        #expect(message(second("at = \"20s\"", "at = \"soon\"").replacingOccurrences(of: "\n", with: "\r\n"))
                    == "s.toml:9: step 2: 'at': expected a time like 90s, 10m or 1h, got 'soon'")
    }

    /// A long valid scenario loads in the time its parse takes: every step's `file:LINE` label
    /// was worked out before the pod check, one scan of the whole text per step, and a valid
    /// 1,000-step file took 100 s to load (`xds run --scenario`, 3,000 lines). Only a refused
    /// step's line is looked up, and it is still the step's own (the last, at a run-time order
    /// that is not the file's).
    @Test func aLongScenarioLoadsWithoutAScanPerStep() throws {
        let n = 1_000
        var text = "name = \"long\"\n"
        for i in 0..<n { text += "[[step]]\nat = \"\(n - i)s\"\ncommand = \"rate \(i % 50 + 1)\"\n" }
        let started = ContinuousClock.now
        let scenario = try Scenario(toml: text, source: "s.toml", topology: .cloudMatrix384)
        let took = ContinuousClock.now - started
        #expect(scenario.steps.count == n && scenario.steps.first?.at == 1)
        // Parsing 3,000 lines takes well under a second even in a debug build on a busy machine;
        // a scan per step took minutes.
        #expect(took < .seconds(30), "\(took)")
        // The refused step is named at its own line though it runs first.
        let refused = text + "[[step]]\nat = \"0s\"\ncommand = \"drain node 48\"\n"
        #expect(message(refused, topology: .cloudMatrix384)
                    == "s.toml:\(2 + 3 * n + 2): step \(n + 1): node 48 does not exist; the pod has nodes 0…47")
    }
}
