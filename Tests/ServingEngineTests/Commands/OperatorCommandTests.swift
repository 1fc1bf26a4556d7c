import Testing

@testable import ServingEngine

private func parsed(_ line: String) -> OperatorCommand? { try? OperatorCommand.parse(line).get() }

private func failure(_ line: String) -> String? {
    if case .failure(let error) = OperatorCommand.parse(line) { return error.message }
    return nil
}

@Suite struct OperatorCommandTests {
    @Test(arguments: [
        ("drain node 5", OperatorCommand.drain(node: 5)),
        ("undrain node 0", .undrain(node: 0)),
        ("fault die 700", .faultDie(700)),
        ("fault npu 37", .faultNPU(37)),
        ("fault node 47", .faultNode(47)),
        ("fault link 3-7", .faultLink(from: 3, to: 7, degrade: nil)),
        ("fault link 3-7 degrade 4", .faultLink(from: 3, to: 7, degrade: 4)),
        ("fault straggler die 12", .faultStraggler(die: 12, slowdown: nil)),
        ("fault straggler die 12 slowdown 1.5", .faultStraggler(die: 12, slowdown: 1.5)),
        ("fault hbm die 9", .faultHBM(die: 9)),
        ("fault glitch", .faultGlitch),
        ("heal 3", .heal(faultID: 3)),
        ("heal all", .healAll),
        ("rebalance", .rebalance),
        ("rate 0", .rate(requestsPerSecond: 0)),
        ("rate 12.5", .rate(requestsPerSecond: 12.5)),
        ("speed 10", .speed(10)),
        ("speed 0.25", .speed(0.25)),
        ("speed max", .speedMax),
        ("pause", .pause),
        ("resume", .resume),
    ])
    func everyFormParsesAndRoundTrips(line: String, command: OperatorCommand) {
        #expect(parsed(line) == command)
        #expect(command.description == line)
        #expect(parsed(command.description) == command)
    }

    @Test func whitespaceAndCaseAreTolerated() {
        #expect(parsed("  DRAIN\tNode   5  ") == .drain(node: 5))
        #expect(parsed("Fault Straggler DIE 2 SlowDown 3") == .faultStraggler(die: 2, slowdown: 3))
        #expect(parsed("Speed MAX") == .speedMax)
        #expect(parsed("HEAL All") == .healAll)
    }

    @Test(arguments: [
        ("", "empty command; expected one of: drain, undrain, fault, heal, rebalance, rate, speed, pause, resume"),
        ("foo", "unknown command 'foo'; expected one of: drain, undrain, fault, heal, rebalance, rate, speed, pause, resume"),
        ("drain node x", "expected a node number after 'drain node', got 'x'"),
        ("drain node", "expected a node number after 'drain node'"),
        ("drain 5", "expected 'node' after 'drain', got '5'"),
        ("undrain node -1", "expected a node number after 'undrain node', got '-1'"),
        ("fault", "expected one of die, npu, node, link, straggler, hbm, glitch after 'fault'"),
        ("fault disk 3", "unknown fault 'disk'; expected one of: die, npu, node, link, straggler, hbm, glitch"),
        ("fault die", "expected a die number after 'fault die'"),
        ("fault npu 1.5", "expected an NPU number after 'fault npu', got '1.5'"),
        ("fault link 3", "expected 'A-B' (two NPU numbers) after 'fault link', got '3'"),
        ("fault link 3-3", "expected two different NPUs in 'fault link', got '3-3'"),
        ("fault link 3-7 degrade 0.5", "expected a degrade factor > 1 after 'degrade', got '0.5'"),
        ("fault link 3-7 slow 2", "expected 'degrade' after 'fault link 3-7', got 'slow'"),
        ("fault straggler 4", "expected 'die' after 'fault straggler', got '4'"),
        ("fault straggler die 4 slowdown 1", "expected a slowdown factor > 1 after 'slowdown', got '1'"),
        ("fault hbm die", "expected a die number after 'fault hbm die'"),
        ("heal", "expected a fault id or 'all' after 'heal'"),
        ("heal everything", "expected a fault id or 'all' after 'heal', got 'everything'"),
        ("rate -1", "expected a rate ≥ 0 (requests/s) after 'rate', got '-1'"),
        ("rate nan", "expected a rate ≥ 0 (requests/s) after 'rate', got 'nan'"),
        ("speed 0", "expected a speed > 0 or 'max' after 'speed', got '0'"),
        ("speed", "expected a speed > 0 or 'max' after 'speed'"),
        ("pause now", "unexpected 'now' after 'pause'; expected end of command"),
        ("fault glitch 2", "unexpected '2' after 'fault glitch'; expected end of command"),
    ])
    func malformedFormsSayWhatWasExpected(line: String, message: String) {
        #expect(failure(line) == message)
    }

    @Test func completionsExtendTheTypedPrefix() {
        #expect(OperatorCommand.completions(for: "dr") == ["drain node "])
        #expect(OperatorCommand.completions(for: "FAULT S") == ["fault straggler die "])
        #expect(OperatorCommand.completions(for: "fault ").count == 7)
        #expect(OperatorCommand.completions(for: "speed") == ["speed ", "speed max"])
        #expect(OperatorCommand.completions(for: "zzz").isEmpty)
        #expect(OperatorCommand.completions(for: "").count == 17)
        for phrase in OperatorCommand.completions(for: "") {
            #expect(OperatorCommand.keywords.contains(String(phrase.split(separator: " ")[0])))
        }
    }
}
