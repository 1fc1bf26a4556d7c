import Foundation
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
        for bad in ["", "-5", "ten", "5x", "m", "5m3", "inf"] { #expect(SimTime.parseDuration(bad) == nil, "\(bad)") }
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

    @Test func badScenariosGetOneLineNamingFileAndStep() {
        let cases: [(String, String)] = [
            ("name = \"x\"\n[[step]]\nat = \"30s\"\ncommand = \"drain nod 3\"\n", "t.toml: step 1: "),
            ("name = \"x\"\n[[step]]\nat = \"soon\"\ncommand = \"pause\"\n", "'at' must be a time"),
            ("name = \"x\"\n[[step]]\nat = \"1s\"\n", "missing 'command'"),
            ("name = \"x\"\n", "no steps"),
            ("[[step]]\nat = \"1s\"\ncommand = \"pause\"\n", "missing 'name'"),
            ("name = \"x\"\nsteps = 3\n", "unknown field 'steps'"),
            ("name = = \"x\"\n", "t.toml:1: malformed TOML"),
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
}
