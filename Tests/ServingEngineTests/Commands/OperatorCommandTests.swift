import PodModel
import Testing

@testable import ServingEngine

private func parsed(_ line: String) -> OperatorCommand? { try? OperatorCommand.parse(line).get() }

private func failure(_ line: String) -> String? {
    if case .failure(let error) = OperatorCommand.parse(line) { return error.message }
    return nil
}

private func failureOn(_ pod: PodTopology, _ line: String) -> String? {
    if case .failure(let error) = OperatorCommand.parse(line, on: pod) { return error.message }
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
        ("rate 0.0001", .rate(requestsPerSecond: 0.0001)),
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
        ("", "empty command; expected one of: drain, undrain, fault, heal, rebalance, rate, speed, pause, resume, scale, autoscale, policy"),
        ("foo", "unknown command 'foo'; expected one of: drain, undrain, fault, heal, rebalance, rate, speed, pause, resume, scale, autoscale, policy"),
        ("drain node x", "expected a node number between 0 and 999999 after 'drain node', got 'x'"),
        ("drain node", "expected a node number between 0 and 999999 after 'drain node'"),
        ("drain 5", "expected 'node' after 'drain', got '5'"),
        ("undrain node -1", "expected a node number between 0 and 999999 after 'undrain node', got '-1'"),
        ("fault", "expected one of die, npu, node, link, straggler, hbm, glitch after 'fault'"),
        ("fault disk 3", "unknown fault 'disk'; expected one of: die, npu, node, link, straggler, hbm, glitch"),
        ("fault die", "expected a die number between 0 and 999999 after 'fault die'"),
        ("fault npu 1.5", "expected an NPU number between 0 and 999999 after 'fault npu', got '1.5'"),
        ("fault link 3", "expected 'A-B' (two NPU numbers between 0 and 999999) after 'fault link', got '3'"),
        ("fault link 3-3", "expected two different NPUs in 'fault link', got '3-3'"),
        ("fault link 3-7 degrade 0.5", "expected a degrade factor greater than 1 and at most 1000 after 'degrade', got '0.5'"),
        ("fault link 3-7 slow 2", "expected 'degrade' after 'fault link 3-7', got 'slow'"),
        ("fault straggler 4", "expected 'die' after 'fault straggler', got '4'"),
        ("fault straggler die 4 slowdown 1", "expected a slowdown factor greater than 1 and at most 1000 after 'slowdown', got '1'"),
        ("fault hbm die", "expected a die number between 0 and 999999 after 'fault hbm die'"),
        ("heal", "expected a fault id between 1 and 999999 or 'all' after 'heal'"),
        ("heal everything", "expected a fault id between 1 and 999999 or 'all' after 'heal', got 'everything'"),
        ("rate -1", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '-1'"),
        ("rate nan", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got 'nan'"),
        ("speed 0", "expected a speed between 0.01 and 100000 or 'max' after 'speed', got '0'"),
        ("speed", "expected a speed between 0.01 and 100000 or 'max' after 'speed'"),
        ("pause now", "unexpected 'now' after 'pause'; expected end of command"),
        ("fault glitch 2", "unexpected '2' after 'fault glitch'; expected end of command"),
        // Bounds: every number is checked against a stated range, named in the message.
        ("rate 1e308", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '1e308'"),
        ("rate 10000.5", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '10000.5'"),
        ("rate 0x10", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '0x10'"),
        ("rate inf", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got 'inf'"),
        // A rate so low no arrival would ever come is refused, as `--rate` refuses it.
        ("rate 1e-300", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '1e-300'"),
        ("rate 0.00009", "expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '0.00009'"),
        ("speed 0.001", "expected a speed between 0.01 and 100000 or 'max' after 'speed', got '0.001'"),
        ("speed 1e6", "expected a speed between 0.01 and 100000 or 'max' after 'speed', got '1e6'"),
        ("fault straggler die 1 slowdown 1e308",
         "expected a slowdown factor greater than 1 and at most 1000 after 'slowdown', got '1e308'"),
        ("fault link 1-2 degrade 1001",
         "expected a degrade factor greater than 1 and at most 1000 after 'degrade', got '1001'"),
        ("drain node 99999999999999999999",
         "expected a node number between 0 and 999999 after 'drain node', got '99999999999999999999'"),
        ("fault die 1000000", "expected a die number between 0 and 999999 after 'fault die', got '1000000'"),
        ("fault npu +5", "expected an NPU number between 0 and 999999 after 'fault npu', got '+5'"),
        ("fault link 99999999999999999999-1",
         "expected 'A-B' (two NPU numbers between 0 and 999999) after 'fault link', got '99999999999999999999-1'"),
        ("heal 0", "expected a fault id between 1 and 999999 or 'all' after 'heal', got '0'"),
        // Input echoed in a message is one line, control characters spelled out, long words cut.
        ("pause\nresume", "unexpected 'resume' after 'pause'; expected end of command"),
        ("\u{1B}[2J", "unknown command '\\u{1B}[2J'; expected one of: drain, undrain, fault, heal, rebalance, rate, speed, pause, resume, scale, autoscale, policy"),
    ])
    func malformedFormsSayWhatWasExpected(line: String, message: String) {
        #expect(failure(line) == message)
    }

    /// Parsed for a known pod (the host of the console and `POST /admin/commands`, a scenario
    /// loaded for a run), a node, NPU or die word that is not a number in range names that pod's
    /// range, as the engine's "node 60 does not exist; the pod has nodes 0…47" does, instead of
    /// the grammar's 0…999999 (`drain node -1` on a 48-node pod said "between 0 and 999999").
    @Test(arguments: [
        ("drain node -1", "expected a node number after 'drain node', got '-1'; the pod has nodes 0…47"),
        ("undrain node x", "expected a node number after 'undrain node', got 'x'; the pod has nodes 0…47"),
        ("drain node", "expected a node number after 'drain node'; the pod has nodes 0…47"),
        ("fault node 1.5", "expected a node number after 'fault node', got '1.5'; the pod has nodes 0…47"),
        ("fault npu -1", "expected an NPU number after 'fault npu', got '-1'; the pod has NPUs 0…383"),
        ("fault npu 99999999999999999999",
         "expected an NPU number after 'fault npu', got '99999999999999999999'; the pod has NPUs 0…383"),
        ("fault link 3", "expected 'A-B' (two NPU numbers) after 'fault link', got '3'; the pod has NPUs 0…383"),
        ("fault link", "expected 'A-B' (two NPU numbers) after 'fault link'; the pod has NPUs 0…383"),
        ("fault die x", "expected a die number after 'fault die', got 'x'; the pod has dies 0…767"),
        ("fault hbm die -3", "expected a die number after 'fault hbm die', got '-3'; the pod has dies 0…767"),
        ("fault straggler die +2", "expected a die number after 'fault straggler die', got '+2'; the pod has dies 0…767"),
        ("heal -1", "expected a fault id or 'all' after 'heal', got '-1'; faults are numbered 1, 2, 3… as they are injected"),
        ("heal 0", "expected a fault id or 'all' after 'heal', got '0'; faults are numbered 1, 2, 3… as they are injected"),
        ("heal", "expected a fault id or 'all' after 'heal'; faults are numbered 1, 2, 3… as they are injected"),
    ])
    func badIndexWordsNameTheKnownPodsRange(line: String, message: String) throws {
        let pod = try Deployment.superpod.topology()
        guard case .failure(let error) = OperatorCommand.parse(line, on: pod) else {
            Issue.record("\(line) parsed")
            return
        }
        #expect(error.message == message)
        // Without a pod the grammar's range is all there is to name.
        #expect(failure(line)?.contains("999999") == true, "\(line): \(failure(line) ?? "parsed")")
    }

    /// What parses does not depend on the pod: a number the pod lacks is the engine's (or the
    /// scenario check's) to refuse, in its own words.
    @Test func aKnownPodChangesOnlyMessages() throws {
        let pod = try Deployment.superpod.topology()
        for line in ["drain node 60", "fault npu 5000", "fault die 0", "heal 7", "heal all", "fault link 1-2 degrade 2", "pause"] {
            #expect(try OperatorCommand.parse(line, on: pod).get() == parsed(line), "\(line)")
        }
        let tiny = PodTopology(nodes: 1, npusPerNode: 1, diesPerNPU: 1)
        #expect(failureOn(tiny, "drain node x") == "expected a node number after 'drain node', got 'x'; the pod has only node 0")
    }

    @Test func boundaryValuesAreAccepted() {
        #expect(parsed("rate 10000") == .rate(requestsPerSecond: 10_000))
        #expect(parsed("speed 0.01") == .speed(0.01))
        #expect(parsed("speed 100000") == .speed(100_000))
        #expect(parsed("fault straggler die 0 slowdown 1000") == .faultStraggler(die: 0, slowdown: 1_000))
        #expect(parsed("fault link 0-999999 degrade 1.001") == .faultLink(from: 0, to: 999_999, degrade: 1.001))
        #expect(parsed("drain node 0000012") == .drain(node: 12))
        #expect(parsed("heal 999999") == .heal(faultID: 999_999))
        #expect(parsed("rate 1e3\r\n") == .rate(requestsPerSecond: 1_000), "a trailing CRLF is whitespace")
    }

    /// A nonzero numeral that underflows to 0 is not the rate 0: `rate 1e-400` was taken as
    /// `rate 0` and stopped every arrival. Zero written any way is still zero.
    @Test func aRateThatUnderflowsIsRefusedNotTakenAsZero() {
        for line in ["rate 1e-400", "rate 4.9e-330", "rate 0.5e-999"] {
            #expect(failure(line)?.contains("expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000") == true,
                    "\(line): \(failure(line) ?? "parsed")")
        }
        for line in ["rate 0", "rate 0.000", "rate 0e5", "rate -0", "rate 0e-400"] {
            #expect(parsed(line) == .rate(requestsPerSecond: 0), "\(line)")
        }
    }

    @Test func longInputIsCutInTheMessage() throws {
        let message = try #require(failure(String(repeating: "9", count: 5_000)))
        #expect(message.count < 200)
        #expect(message.contains("…"))
    }

    @Test func completionsExtendTheTypedPrefix() {
        #expect(OperatorCommand.completions(for: "dr") == ["drain node "])
        #expect(OperatorCommand.completions(for: "FAULT S") == ["fault straggler die "])
        #expect(OperatorCommand.completions(for: "fault ").count == 7)
        #expect(OperatorCommand.completions(for: "speed") == ["speed ", "speed max"])
        #expect(OperatorCommand.completions(for: "zzz").isEmpty)
        #expect(OperatorCommand.completions(for: "").count == 17 + 5 + 17, "17 phrases, scale ROLE (3) and autoscale NAME (2), policy SLOT (5) and policy SLOT NAME (12)")
        for phrase in OperatorCommand.completions(for: "") {
            #expect(OperatorCommand.keywords.contains(String(phrase.split(separator: " ")[0])))
        }
    }

    /// A preview's duration is decimal like every number of the language: `Double(String)` alone
    /// read `for 0x3Cs` as a minute (and `0x1p6s` as 64 s).
    @Test func previewDurationsAreDecimal() throws {
        for text in ["0x3Cs", "0x1p6s", "0x10", "+0x10m"] {
            guard case .failure(let error) = PreviewRequest.parseDuration(text) else {
                Issue.record("\(text) was accepted")
                continue
            }
            #expect(error.message.contains("expected a duration from 1s to 1h"), "\(error.message)")
        }
        #expect(try PreviewRequest.parseDuration("1.5e1s").get() == 15)
        #expect(try PreviewRequest.parseDuration("60").get() == 60)
        #expect(try PreviewRequest.parse("preview drain node 1 for 2.5m").get().duration == 150)
    }
}
