import PodModel
import SimKit

extension ServingEngine {
    /// Applies one operator command between events, at the current simulated time. A rejected
    /// command changes nothing; accepted ones are logged as events.
    @discardableResult
    public func apply(_ command: OperatorCommand) -> CommandReply {
        let reply: CommandReply
        switch command {
        case .drain(let node):
            if let problem = checkNode(node) { reply = reject(command, problem) }
            else if drainedNodes.contains(node) { reply = reject(command, "node \(node) is already drained") }
            else { reply = accept(command, drainNode(node), kind: .drain) }
        case .undrain(let node):
            if let problem = checkNode(node) { reply = reject(command, problem) }
            else if !drainedNodes.contains(node) { reply = reject(command, "node \(node) is not drained") }
            else {
                drainedNodes.remove(node)
                faults.announcedDrained.remove(node)
                refreshDrainedGroups()
                reply = accept(command, "node \(node) accepts work again", kind: .undrain)
                // Work held back by the drain may now find room.
                for index in instances.indices {
                    if instances[index].role == .decode { pullTransfers(index) }
                    startStepIfIdle(index)
                }
            }
        case .rate(let rate):
            guard var synthetic = workload as? SyntheticWorkload else {
                reply = reject(command, "the workload is a trace; rate applies to the synthetic workload only")
                break
            }
            // The engine's own bound, beside the parser's (a rate no pod can take).
            guard rate.isFinite, rate >= 0, rate <= Self.maxSyntheticRate else {
                reply = reject(command, "rate must be within 0…\(OperatorCommand.format(Self.maxSyntheticRate)) requests/s, got \(rate)")
                break
            }
            synthetic.setRate(rate, at: now)
            workload = synthetic
            reply = accept(command, "synthetic arrival rate set to \(OperatorCommand.format(rate)) requests/s", kind: .command)
            scheduleNextArrival()
        case .speed(let value):
            speed = value
            reply = accept(command, "speed \(OperatorCommand.format(value))×", kind: .command)
        case .speedMax:
            speed = nil
            reply = accept(command, "speed max (unpaced)", kind: .command)
        case .pause:
            paused = true
            reply = accept(command, "paused", kind: .command)
        case .resume:
            paused = false
            reply = accept(command, "resumed", kind: .command)
        case .rebalance:
            reply = rebalanceNow()
        case .faultDie, .faultNPU, .faultNode, .faultLink, .faultStraggler, .faultHBM, .faultGlitch, .heal, .healAll:
            // Fault commands log their own events and count themselves when accepted.
            reply = applyFaultCommand(command)
        }
        return reply
    }

    /// The synthetic arrival rate, or nil for a trace.
    public var arrivalRate: Double? { (workload as? SyntheticWorkload)?.ratePerSecond }

    private func checkNode(_ node: Int) -> String? {
        node >= 0 && node < topology.nodes ? nil
            : "node \(node) does not exist; the pod has nodes 0…\(topology.nodes - 1)"
    }

    private func accept(_ command: OperatorCommand, _ message: String, kind: EngineEvent.Kind) -> CommandReply {
        commandsApplied += 1
        telemetry.log(EngineEvent(time: now, kind: kind, message: "\(command): \(message)"))
        return CommandReply(accepted: true, message: message)
    }

    private func reject(_ command: OperatorCommand, _ message: String) -> CommandReply {
        CommandReply(accepted: false, message: message)
    }

    // MARK: Telemetry interval

    /// Closes a telemetry interval: per-instance utilisation (busy share), one sparkline point,
    /// and the KV peak.
    func telemetryTick() {
        let interval = configuration.snapshotInterval
        for index in instances.indices {
            instances[index].utilization = min(1, instances[index].busySeconds / interval)
            instances[index].busySeconds = max(0, instances[index].busySeconds - interval)
        }
        let usage = decodeKVUsage()
        telemetry.peakDecodeUsage = max(telemetry.peakDecodeUsage, usage)
        expertsTick()
        let imbalance = expertStats.intervalSteps > 0 ? expertStats.intervalSum / Double(expertStats.intervalSteps)
            : (instances.first(where: \.hasDecode)?.experts?.expectedImbalance ?? 1)
        expertStats.intervalSum = 0
        expertStats.intervalSteps = 0
        let counts = requestCounts()
        telemetry.appendPoint(imbalance: configuration.eplb == .perfect ? 1 : imbalance, kvUsage: usage, running: Double(counts.running), waiting: Double(counts.waiting),
                              interval: interval)
        scheduleTelemetryTick(at: now.after(interval))
    }

    /// KV occupancy of the decode side (decode and colocated DP groups): prompt blocks held plus
    /// the tokens generated so far, over capacity.
    func decodeKVUsage() -> Double {
        var used = 0.0, capacity = 0.0
        let blockTokens = Double(configuration.kvBlockTokens)
        for instance in instances where instance.hasDecode {
            for group in instance.dp {
                used += Double(group.kv.usedBlocks) * blockTokens
                    + Double(group.running * instance.stepIndex - group.joinStepSum) * tokensPerStep
                capacity += Double(group.kv.totalBlocks) * blockTokens
            }
        }
        return capacity > 0 ? min(1, used / capacity) : 0
    }

    func requestCounts() -> RequestCounts {
        var counts = RequestCounts()
        counts.arrived = telemetry.arrived
        counts.completed = telemetry.completed
        counts.failed = telemetry.failed
        counts.rejected = telemetry.rejected
        counts.inFlight = telemetry.inFlight
        var running = 0
        for instance in instances where instance.hasDecode { running += instance.runningRequests }
        counts.running = running
        counts.waiting = counts.inFlight - running
        return counts
    }
}
