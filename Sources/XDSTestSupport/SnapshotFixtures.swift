import PodModel
import ServingEngine
import SimKit

/// Fixed, realistic snapshots for console tests, benchmarks and demos. Built from a tiny
/// deterministic generator, so every run (and every machine) sees the same numbers.
///
/// ```swift
/// let s = SnapshotFixtures.superpod
/// s.npus.count        // 384
/// s.kv.decodeGroups   // 320 decode DP groups
/// ```
public enum SnapshotFixtures {
    /// The `superpod` deployment under load at 0:10:42: nodes 0–15 prefill (8 TEs × 16 NPUs),
    /// nodes 16–35 one decode TE (160 NPUs, DP320, one expert per die), nodes 36–47 spare.
    /// Node 5 is drained, node 20 is draining, NPU 140 has a detected fault.
    public static let superpod: Snapshot = makeSuperpod()

    /// A live engine on `deployment`: seed 1, `rate` synthetic requests/s, run to `time` s. For
    /// console tests that need a real deployment's figures (a GPU cluster, xdeepserve-ma) and
    /// then act on the engine (a fault, a drain) before taking its snapshot.
    public static func liveEngine(_ deployment: Deployment, rate: Double, until time: SimTime) throws -> ServingEngine {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: deployment, seed: 1, syntheticRate: rate))
        engine.run(until: time)
        return engine
    }

    /// ``liveEngine(_:rate:until:)`` on a preset name or an inline `colocated:…` spec.
    public static func liveEngine(_ spec: String, rate: Double, until time: SimTime) throws -> ServingEngine {
        try liveEngine(try Deployment.resolve(spec), rate: rate, until: time)
    }

    /// The snapshot of ``liveEngine(_:rate:until:)``.
    public static func live(_ deployment: Deployment, rate: Double, until time: SimTime) throws -> Snapshot {
        try liveEngine(deployment, rate: rate, until: time).snapshot()
    }

    /// The snapshot of ``liveEngine(_:rate:until:)`` on a preset name or an inline spec.
    public static func live(_ spec: String, rate: Double, until time: SimTime) throws -> Snapshot {
        try liveEngine(spec, rate: rate, until: time).snapshot()
    }

    /// SplitMix64: a fixed stream, independent of any global random state.
    struct Stream {
        var state: UInt64
        mutating func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53)
        }
        /// Rounded to 3 decimals so rendered numbers are stable and readable.
        mutating func next(_ low: Double, _ high: Double) -> Double {
            ((low + (high - low) * next()) * 1000).rounded() / 1000
        }
    }

    static let hotExperts: [(layer: Int, expert: Int, load: Double)] = [
        (3, 17, 6.2), (12, 45, 4.8), (30, 200, 3.9), (57, 128, 3.1), (21, 3, 2.7), (44, 250, 2.4),
    ]

    static func makeSuperpod() -> Snapshot {
        var r = Stream(state: 42)
        var s = Snapshot()
        s.simTime = 642.5
        s.speed = 1
        s.deploymentName = "superpod"
        s.modelName = "deepseek-r1"
        s.hardwareName = "ascend-910c"
        s.arrivalRate = 150
        s.outputTokensPerSecond = 182_400
        s.prefillTokensPerSecond = 1_210_000
        s.requests = {
            var c = RequestCounts()
            c.arrived = 121_500; c.completed = 96_280; c.failed = 12; c.rejected = 86
            c.inFlight = 25_122; c.waiting = 812; c.running = 24_310
            return c
        }()
        s.latency = {
            var l = LatencySummary()
            l.ttftP50Ms = 640; l.ttftP90Ms = 1310; l.ttftP99Ms = 1820; l.ttftMeanMs = 720
            l.tpotP50Ms = 27.5; l.tpotP90Ms = 32.1; l.tpotP99Ms = 36.4; l.tpotMeanMs = 28.2
            l.e2eP50Ms = 29_800; l.e2eP90Ms = 51_200; l.e2eP99Ms = 88_400; l.e2eMeanMs = 33_100
            l.sloAttainment = 0.962
            return l
        }()
        s.drainedNodes = [5]
        s.drainingNodes = [20]
        for id in 0..<384 {
            let node = id / 8
            // Ascend 910C: 2 dies × 64 GB of HBM.
            var npu = NPUStatus(id: id, node: node, role: .spare, hbmCapacityBytes: 128e9)
            if node < 16 {
                npu.role = .prefill
                npu.instance = "prefill-\(node / 2)"
                npu.dpGroups = [(id % 16) / 2]  // TP4 over dies: two NPUs per DP group
                npu.utilization = node == 5 ? 0 : r.next(0.45, 0.92)
                npu.kvUsage = node == 5 ? 0 : r.next(0.2, 0.7)
                npu.requestsInFlight = node == 5 ? 0 : Int(r.next(4, 20))
                npu.drained = node == 5
            } else if node < 36 {
                let k = id - 128
                npu.role = .decode
                npu.instance = "decode-0"
                npu.dpGroups = [2 * k, 2 * k + 1]
                npu.experts = [(2 * k) % 256, (2 * k + 1) % 256]
                npu.utilization = r.next(0.6, 0.95)
                npu.kvUsage = r.next(0.35, 0.9)
                npu.expertLoad = r.next(0.85, 1.15)
                npu.requestsInFlight = Int(r.next(130, 170))
                npu.draining = node == 20
                npu.faulted = id == 140
            }
            if npu.role != .spare {
                npu.hbmUsedBytes = (npu.hbmCapacityBytes * (0.55 + 0.35 * npu.kvUsage)).rounded()
            }
            s.npus.append(npu)
        }
        s.npus[140].utilization = 0
        s.instances = (0..<8).map { i in
            let drained = i == 2  // node 5 belongs to prefill-2
            let kv: Double = drained ? 0.12 : 0.3 + Double(i) * 0.05
            let step: Double = 410 + Double(i) * 6
            return InstanceStatus(
                name: "prefill-\(i)", kind: "prefill", npus: 16, queued: drained ? 0 : 90 + i * 7,
                running: drained ? 0 : 48, kvUsage: kv, stepMs: step)
        }
        s.instances.append(
            InstanceStatus(
                name: "decode-0", kind: "decode", npus: 160, queued: 310, running: 24_310,
                kvUsage: 0.68, stepMs: 88.5))
        s.kv = {
            var kv = KVSummary()
            kv.decodeGroups = (0..<320).map { g in g == 281 || g == 17 ? 0.97 : r.next(0.35, 0.9) }
            kv.decodeUsage = kv.decodeGroups.reduce(0, +) / 320
            kv.peakUsage = 0.91
            kv.prefixHitRate = 0.42
            kv.poolUsedBytes = 9.6e12
            kv.poolCapacityBytes = 24e12
            kv.transferQueue = 37
            kv.transfersInProgress = 212
            kv.prefillInstances = (0..<8).map { i in i == 2 ? 0.12 : 0.3 + Double(i) * 0.05 }
            return kv
        }()
        s.experts = {
            var e = ExpertSummary()
            e.heat = (0..<58).map { _ in (0..<256).map { _ in r.next(0.55, 1.45) } }
            for hot in hotExperts { e.heat[hot.layer][hot.expert] = hot.load }
            e.hottest = hotExperts.map { HotExpert(layer: $0.layer, expert: $0.expert, load: $0.load) }
            e.dieLoad = (0..<320).map { d in d == 17 ? 1.42 : r.next(0.8, 1.2) }
            let mean = e.dieLoad.reduce(0, +) / 320
            e.imbalance = ((e.dieLoad.max()! / mean) * 100).rounded() / 100
            e.rebalances = 3
            e.rebalanceInProgress = true
            e.loadingDies = [17, 94, 203]
            return e
        }()
        s.activeFaults = [
            FaultStatus(id: 1, description: "NPU 140 lost (node 17)", injectedAt: 598.0, detectedAt: 598.3)
        ]
        s.series = {
            var series = Series()
            series.intervalSeconds = 5
            for i in 0..<120 {
                let t = Double(i)
                series.outputTokensPerSecond.append(
                    150_000 + 30_000 * (1 - 1 / (1 + t / 20)) + r.next(-4000, 4000))
                series.ttftP99Ms.append(1400 + r.next(0, 500) + (i > 110 ? 300 : 0))
                series.tpotP99Ms.append(31 + r.next(0, 5))
                series.e2eP99Ms.append(80_000 + r.next(0, 12_000))
                series.kvUsage.append(0.4 + 0.25 * t / 120 + r.next(0, 0.05))
                series.imbalance.append(1.6 - 0.2 * t / 120 + r.next(0, 0.1))
                series.running.append(20_000 + 35 * t + r.next(0, 800))
                series.waiting.append(400 + r.next(0, 600))
            }
            return series
        }()
        s.inFlight = (0..<40).map { i in
            let stages: [RequestStage] = [.decode, .decode, .decode, .prefill, .queued, .transfer]
            let stage = stages[i % stages.count]
            let prompt = 500 + Int(r.next(0, 6000))
            let out = 200 + Int(r.next(0, 1800))
            return RequestStatus(
                id: 96_000 + i * 37, arrivedAt: 642.5 - 60 + Double(i) * 1.5, stage: stage,
                promptTokens: prompt,
                outputTokens: out, generatedTokens: stage == .decode ? out / 3 : 0,
                location: stage == .decode
                    ? "decode-0/dp\(i * 7 % 320)"
                    : stage == .queued ? "prefill-\(i % 8)" : "prefill-\(i % 8)/dp\(i % 8)",
                ttftMs: stage == .decode ? 500 + Double(i) * 20 : nil)
        }
        s.recent = (0..<20).map { i in
            let stage: RequestStage = i == 4 ? .failed : i == 9 ? .rejected : .completed
            let reason = i == 4 ? "NPU 140 lost during decode" : i == 9 ? "prefill queue full (429)" : nil
            return RequestStatus(
                id: 95_900 + i, arrivedAt: 600 + Double(i), stage: stage, promptTokens: 1200 + i * 10,
                outputTokens: 400, generatedTokens: stage == .completed ? 400 : i == 4 ? 123 : 0,
                location: "decode-0/dp\(i * 13 % 320)", ttftMs: 700, finishedAt: 630 + Double(i) * 0.5,
                reason: reason)
        }
        s.events = [
            EngineEvent(time: 0, kind: .info, message: "superpod ready: 8 prefill TEs, decode-0 DP320 EP320"),
            EngineEvent(
                time: 120.4, kind: .rebalance, message: "expert rebalance 1 done: imbalance 1.81 → 1.22"),
            EngineEvent(
                time: 300.2, kind: .rebalance, message: "expert rebalance 2 done: imbalance 1.64 → 1.19"),
            EngineEvent(time: 410.0, kind: .command, message: "drain node 5"),
            EngineEvent(time: 412.7, kind: .drain, message: "node 5 drained: prefill-2 running on 8 NPUs"),
            EngineEvent(time: 598.0, kind: .fault, severity: .error, message: "fault injected: npu 140"),
            EngineEvent(
                time: 598.3, kind: .faultDetected, severity: .error,
                message: "NPU 140 heartbeat missed (node 17)"),
            EngineEvent(
                time: 598.9, kind: .recovery, severity: .warning,
                message: "decode-0: DP groups 24, 25 migrated to spare"),
            EngineEvent(
                time: 602.0, kind: .requestFailed, severity: .warning,
                message: "request 95904 failed: NPU 140 lost during decode", requestId: 95_904),
            EngineEvent(
                time: 609.0, kind: .requestRejected, severity: .warning,
                message: "request 95909 rejected: prefill queue full (429)", requestId: 95_909),
            EngineEvent(time: 630.0, kind: .command, message: "drain node 20"),
            EngineEvent(
                time: 631.5, kind: .queueThreshold, severity: .warning,
                message: "decode-0 waiting queue above 800"),
            EngineEvent(
                time: 640.1, kind: .rebalance, message: "expert rebalance 3 started: loading dies 17, 94, 203"
            ),
        ]
        s.histograms = {
            var h = LatencyHistograms()
            func bins(_ bounds: [Double], peak: Int, spread: Double) -> HistogramBins {
                let counts = bounds.indices.map { i -> Int in
                    let d = (Double(i) - Double(peak)) / spread
                    return Int((5000 * 1 / (1 + d * d)).rounded())
                }
                return HistogramBins(upperBoundsMs: bounds, counts: counts)
            }
            h.ttft = bins((1...40).map { Double($0) * 100 }, peak: 6, spread: 3)
            h.tpot = bins((1...40).map { 10 + Double($0) * 1.0 }, peak: 17, spread: 4)
            h.e2e = bins((1...40).map { Double($0) * 3000 }, peak: 10, spread: 5)
            return h
        }()
        return s
    }
}
