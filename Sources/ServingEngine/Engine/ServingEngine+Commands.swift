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
            else if drainedNodes.contains(node) {
                // Still finishing work is "draining", as the header and the Pod view say.
                let left = requestsLeft(onDrained: node)
                reply = reject(command, left > 0
                    ? "node \(node) is already draining (\(Self.counted(left, "request")) left)"
                    : "node \(node) is already drained")
            }
            else {
                let drain = drainNode(node)
                reply = accept(command, drain.message, kind: .drain, capacityLost: drain.capacityLost)
            }
        case .undrain(let node):
            if let problem = checkNode(node) { reply = reject(command, problem) }
            else if !drainedNodes.contains(node) { reply = reject(command, "node \(node) is not drained") }
            else {
                cluster.undrain(node: node)
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
            guard CommandLimits.isAllowedRate(rate) else {
                reply = reject(command, "rate must be \(CommandLimits.allowedRates), got \(rate)")
                break
            }
            let oldRate = synthetic.ratePerSecond
            synthetic.setRate(rate, at: now)
            workload = synthetic
            reply = accept(command, "synthetic arrival rate set to \(OperatorCommand.format(rate)) requests/s", kind: .command)
            retimeSyntheticArrival(from: oldRate, to: synthetic.ratePerSecond)
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
        case .policy(let slot, let name):
            let outcome = setPolicy(slot: slot, name: name)
            reply = outcome.accepted ? accept(command, outcome.message, kind: .command) : reject(command, outcome.message)
        case .faultDie, .faultNPU, .faultNode, .faultLink, .faultStraggler, .faultHBM, .faultGlitch, .heal, .healAll:
            // Fault commands log their own events and count themselves when accepted.
            reply = applyFaultCommand(command)
            if reply.accepted { scalingNoteFaults() }
        case .scale(let role, let change, let path):
            let outcome = applyScale(role: role, change: change, path: path, origin: "")
            reply = outcome.accepted ? accept(command, outcome.message, kind: .scaling) : outcome
        case .autoscale(let name):
            let outcome = applyAutoscale(name)
            reply = outcome.accepted ? accept(command, outcome.message, kind: .scaling) : outcome
        }
        // A refusal is logged too: a scenario step the engine refuses at its time (a node already
        // drained, a fault already healed) has nobody to answer it, and must not vanish silently.
        if !reply.accepted {
            telemetry.log(EngineEvent(time: now, kind: .commandRejected, severity: .warning,
                                      message: "\(command) refused: \(reply.message)"))
        }
        return reply
    }

    /// The synthetic arrival rate, or nil for a trace.
    public var arrivalRate: Double? { (workload as? SyntheticWorkload)?.ratePerSecond }

    private func checkNode(_ node: Int) -> String? {
        node >= 0 && node < topology.nodes ? nil
            : PodTopology.missing("node", node, count: topology.nodes)
    }

    /// An accepted command's reply and event: a warning when it leaves no capacity.
    private func accept(_ command: OperatorCommand, _ message: String, kind: EngineEvent.Kind,
                        capacityLost: Bool = false) -> CommandReply {
        commandsApplied += 1
        telemetry.log(EngineEvent(time: now, kind: kind, severity: capacityLost ? .warning : .info,
                                  message: "\(command): \(message)"))
        return CommandReply(accepted: true, message: message, capacityLost: capacityLost)
    }

    private func reject(_ command: OperatorCommand, _ message: String) -> CommandReply {
        CommandReply(accepted: false, message: message)
    }

    // MARK: Telemetry interval

    /// Closes a telemetry interval: per-instance utilisation (busy share), one sparkline point,
    /// and the KV peak.
    func telemetryTick() {
        let interval = configuration.snapshotInterval
        // A quiet interval closes exactly as an idle skip closes it (ServingEngine+IdleSkip), so
        // ticking through a quiet stretch and skipping it give the same engine.
        if periodicWorkIsSteady() {
            closeQuietIntervals(count: 1, first: now)
            scheduleTelemetryTick(at: now.nextOnGrid(every: interval))
            return
        }
        for index in instances.indices {
            instances[index].utilization = min(1, instances[index].busySeconds / interval)
            instances[index].busySeconds = max(0, instances[index].busySeconds - interval)
        }
        let usage = decodeKVUsage()
        telemetry.peakDecodeUsage = max(telemetry.peakDecodeUsage, usage)
        expertsTick()
        let imbalance = experts.takeIntervalImbalance() ?? experts.decodeExpectedImbalance
        let counts = requestCounts()
        telemetry.appendPoint(imbalance: configuration.eplb == .perfect ? 1 : imbalance, kvUsage: usage, running: Double(counts.running), waiting: Double(counts.waiting),
                              interval: interval)
        // On the interval's grid, as an idle skip places it (``skipQuietStretch(before:)``): the
        // last tick plus the interval drifts (0.1 s summed 3,000 times is off 300 by ~1e-12), so
        // at an interval like 0.1 s a run ticked through a quiet stretch in slices and one that
        // skipped it in one call put later ticks at different times (an event at 222.3 vs
        // 222.3000000000027, one event more or less by the end): the result depended on slicing.
        scheduleTelemetryTick(at: now.nextOnGrid(every: interval))
    }

    /// KV occupancy of the decode side (decode and colocated DP groups): prompt blocks held plus
    /// the tokens generated so far, over capacity.
    ///
    /// Every telemetry tick sums all decode groups (~320 in the Mooncake hour, 2.6% of it), so:
    /// - a group holding no blocks and generating nothing adds exactly +0.0, which leaves the
    ///   sum's bits as they are: it is skipped, and the groups that do add are added in the same
    ///   order as before (floating-point sums depend on order; `tokensPerStep` is fractional
    ///   with MTP);
    /// - capacity is a sum of whole token counts far below 2^53, exact in a Double in any order,
    ///   so it is summed as an integer and converted once (the same value).
    func decodeKVUsage() -> Double {
        var used = 0.0, capacityBlocks = 0
        let blockTokens = Double(configuration.kvBlockTokens)
        let tokensPerStep = self.tokensPerStep
        // A TE scaled in and retired (no NPUs) holds no KV capacity any more.
        for i in instances.indices {
            guard instances[i].hasDecode, cluster.hasNPUs(i) || instances[i].external,
                  let decode = instances[i].decode else { continue }
            let step = instances[i].stepIndex
            kvStore.withGroups(of: i) { groups in  // borrowed: a manager copied by value costs its buffers' retains
                decode.batches.withFigures { running, joinStepSum in
                    precondition(running.count >= groups.count && joinStepSum.count >= groups.count)
                    for g in groups.indices {
                        capacityBlocks &+= groups[g].totalBlocks
                        let usedBlocks = groups[g].usedBlocks
                        let generatedSteps = running[g] &* step &- joinStepSum[g]
                        if usedBlocks == 0 && generatedSteps == 0 { continue }
                        used += Double(usedBlocks) * blockTokens + Double(generatedSteps) * tokensPerStep
                    }
                }
            }
        }
        let capacity = Double(capacityBlocks) * blockTokens
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

extension ServingEngine {
    /// After a rate change, the arrival already drawn at the old rate comes when the new rate
    /// says: its remaining wait, counted in mean gaps, is rescaled (exact for Poisson arrivals,
    /// which are memoryless). Without this, `rate 0.000001` then `rate 50` would wait out the
    /// old gap (days) before the new rate showed. At rate 0 the arrival is parked until the
    /// rate rises again.
    func retimeSyntheticArrival(from oldRate: Double, to newRate: Double) {
        guard var synthetic = workload as? SyntheticWorkload else { return }
        var pending: (spec: RequestSpec, remainingGaps: Double)?
        if let parked = parkedArrival {
            pending = parked
        } else if let scheduled = scheduledArrival, arrivalPending, oldRate > 0,
                  let spec = queue.cancelArrival(scheduled.event) {
            pending = (spec, max(0, scheduled.at - now) * oldRate)
        }
        guard let (parkedSpec, remainingGaps) = pending else { return }
        var spec = parkedSpec
        scheduledArrival = nil
        guard newRate > 0 else {
            parkedArrival = (spec, remainingGaps)
            arrivalPending = false
            return
        }
        parkedArrival = nil
        let at = now + min(remainingGaps / newRate, Self.longestDelay)
        spec.arrival = at
        synthetic.retimeLastArrival(to: at)
        workload = synthetic
        arrivalPending = true
        scheduledArrival = (queue.schedule(at: at, .arrival(spec)), at)
    }
}
