@testable import ServingEngine

/// A ``RecoveryActuator`` that carries nothing out: each mechanism asked for becomes one line of
/// `steps`, in order, naming its arguments. The recovery playbook's and the heartbeat round's
/// tests share these lines (one format, so an expectation reads the same in both).
protocol RecordsRecoverySteps: RecoveryActuator {
    var steps: [String] { get set }
}

extension RecordsRecoverySteps {
    mutating func note(_ faults: [Int], _ step: String) { steps.append("note \(faults): \(step)") }
    mutating func finish(_ faults: [Int], _ message: String) { steps.append("finish \(faults): \(message)") }
    mutating func markDetected(_ fault: Int, how: String) { steps.append("detected \(fault): \(how)") }
    mutating func shrink(_ te: Int, dropping groups: Set<Int>, live: Int, faults: [Int]) {
        steps.append("shrink \(te) dropping \(groups.sorted()) live \(live) \(faults)")
    }
    mutating func fork(_ te: Int, replacing dead: [Int], with donors: [Int], how: String, dropping groups: Set<Int>,
                       faults: [Int]) {
        steps.append("fork \(te) \(dead) → \(donors) (\(how)) dropping \(groups.sorted())")
    }
    mutating func killPrefill(_ te: Int, giving npus: [Int], faults: [Int]) { steps.append("kill \(te) giving \(npus)") }
    mutating func restart(_ te: Int, faults: [Int], why: String) { steps.append("restart \(te): \(why)") }
    mutating func restartTogether(_ tes: [Int], faults: [Int], why: String) { steps.append("restart together \(tes): \(why)") }
    mutating func restartWorld(faults: [Int]) { steps.append("restart world \(faults)") }
    mutating func awaitRepair(_ te: Int, faults: [Int]) { steps.append("await repair \(te)") }
    mutating func joinRestart(_ te: Int, faults: [Int]) { steps.append("join restart \(te) \(faults)") }
    mutating func maskAndFail(fault: Int, te: Int, group: Int, die: Int) { steps.append("mask \(te)/\(group) die \(die)") }
    mutating func redoIteration(on tes: [Int], fault: Int) { steps.append("redo \(tes)") }
    mutating func rerouteOverRoCE(fault: Int, paths: [Int]) { steps.append("reroute \(fault) \(paths)") }
}
