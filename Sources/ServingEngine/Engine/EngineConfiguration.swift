import PodModel
import SimKit

/// Everything that fixes a run of the serving engine besides the workload and the command log.
///
/// ```swift
/// var config = EngineConfiguration(deployment: .superpod, seed: 1)
/// config.syntheticRate = 40
/// let engine = try ServingEngine(configuration: config)
/// engine.run(until: 60)
/// ```
public struct EngineConfiguration: Sendable, Equatable {
    /// Where requests come from when the engine builds its own workload.
    public enum WorkloadChoice: Sendable, Equatable {
        /// ``SyntheticWorkload`` (chat + reasoning mix) at ``EngineConfiguration/syntheticRate``.
        case synthetic
        /// An Azure CSV or Mooncake JSONL trace (``TraceWorkload``).
        case trace(path: String)
    }

    public var deployment: Deployment
    public var seed: UInt64
    public var workload: WorkloadChoice
    /// A trace's prompts longer than the model's context window are cut to it (prompt + output
    /// ≤ window, as Vidur replays them) instead of refusing the trace (`--clip-to-context`).
    public var clipTracePromptsToContext = false
    /// Trace arrivals this many times faster (`--trace-speedup`); 1 replays them as recorded.
    public var traceSpeedup = 1.0
    /// The trace of `workload` as its check parsed it (``TraceWorkload/checkKeepingRequests``):
    /// the engine replays these requests instead of reading the file again. Ignored unless it
    /// is the same file with the same options.
    public var checkedTrace: CheckedTrace?
    /// Requests per second of the synthetic workload (interfaces.md: `--rate`).
    public var syntheticRate: Double
    /// Traffic classes of the synthetic workload.
    public enum TrafficMix: String, Sendable, Equatable, CaseIterable {
        /// 70% chat, 30% reasoning, with shared system prompts and multi-turn sessions.
        case mixed
        case chat
        /// Reasoning only, no shared system prompts.
        case reasoning
    }
    public var trafficMix: TrafficMix = .mixed
    /// Coefficient of variation of synthetic inter-arrival gaps: 1 is Poisson, above 1 bursty.
    public var arrivalCV: Double = 1
    /// SLO targets (interfaces.md defaults: TTFT 2 s, TPOT 35 ms).
    public var sloTTFTMs: Double
    public var sloTPOTMs: Double
    /// MTP draft acceptance (system.md §4: 70–90%; 70% is the CloudMatrix-Infer calibration
    /// point). Ignored for models without an MTP module.
    public var mtpAcceptance: Double
    /// Tokens per KV block (system.md §4: blocks of 128–512 tokens).
    public var kvBlockTokens: Int
    /// Share of a die's HBM that holds weights and KV cache (activations and workspace take the
    /// rest; vLLM's `gpu_memory_utilization` default is 0.9, our choice as well).
    public var kvMemoryFraction: Double
    /// ``kvMemoryFraction``'s default; `bench` checks fits against it too.
    /// ``KVRoom``'s, which `--model` sizes a fitted layout against.
    public static let defaultKVMemoryFraction = KVRoom.memoryFraction
    /// New prompt tokens per NPU in one prefill batch (system.md §4: 16K tokens per NPU).
    public var prefillTokensPerNPU: Int
    /// Prompt tokens per DP group mixed into one colocated step (chunked prefill, Sarathi-style;
    /// the papers give no figure for colocated instances: our choice).
    public var colocatedChunkTokens: Int
    /// Prompts longer than this are "long" and kept on their own prefill TEs (system.md §4:
    /// long prompts straggle a whole barrier). 8K is our choice.
    public var longPromptTokens: Int
    /// Admission control: most requests waiting (not yet started) per prefill TE before new
    /// arrivals are rejected.
    public var maxWaitingPerPrefillInstance: Int
    /// Host DRAM per node given to the pooled context cache (EMS, system.md §4: a pooled DRAM
    /// cache reachable from every NPU over UB). The papers give no size; 512 GB per node is our
    /// default. 0 turns the pool off.
    public var poolBytesPerNode: Double
    /// Expert load balancing (interfaces.md `--eplb`), the planner, and its cadence
    /// (system.md §4: counts aggregated "e.g. every minute").
    public var eplb: EPLBMode = .on
    public var eplbIntervalSeconds: Double = 60
    /// Expert popularity skewed as system.md §4 measured on DeepSeek-R1 (false: uniform routing).
    public var expertSkew = true
    /// Simulated seconds between telemetry points (utilisation, sparkline series).
    public var snapshotInterval: Double
    /// Points kept per sparkline series and events kept in the event ring.
    public var seriesCapacity: Int
    public var eventCapacity: Int
    /// Fault handling: recovery policy, heartbeats, restart and straggler defaults
    /// (``FaultSettings``; system.md §4 "Faults", §5).
    public var faults: FaultSettings
    /// Policies chosen by name (``Policies``: `je_routing`, `dp_balancing`, `eplb_planner`,
    /// `recovery`, `autoscaler`), over the deployment's `[policies]` table: command line > TOML >
    /// default. Only the slots set here override; ``effectivePolicies`` is what the engine runs.
    public var policies = PolicyNames()
    /// Every slot's policy name: the default, under the deployment's, under ``policies``. The
    /// autoscaler's older spellings sit between: the deployment's `[scaling] autoscale` over the
    /// default, ``ScalingSettings/autoscale`` over the deployment's `[policies]`.
    public var effectivePolicies: PolicyNames {
        let key = Policies.autoscaler.slot.key
        var names = Policies.defaults
        if let name = deployment.autoscale { names[key] = name }
        names = names.overridden(by: deployment.policies)
        if let name = scaling.autoscale { names[key] = name }
        // Names given in any ASCII case run (and are reported) as registered.
        return Policies.canonical(names.overridden(by: policies))
    }
    /// Name of the autoscaler the engine starts with (``Policies/autoscaler``), default `off`.
    public var autoscalerName: String {
        effectivePolicies[Policies.autoscaler.slot.key] ?? Policies.autoscaler.defaultName
    }
    /// Elastic scaling: load paths, pre-warmed spares, the autoscaler (``ScalingSettings``).
    public var scaling = ScalingSettings()
    /// Name of the recovery policy (``Policies/recovery``), default `fine-grained`.
    public var recoveryPolicy: String {
        get { effectivePolicies[Policies.recovery.slot.key] ?? Policies.recovery.defaultName }
        set { policies[Policies.recovery.slot.key] = newValue }
    }

    public init(deployment: Deployment, seed: UInt64 = 1, workload: WorkloadChoice = .synthetic,
                syntheticRate: Double = 10) {
        self.deployment = deployment
        self.seed = seed
        self.workload = workload
        self.syntheticRate = syntheticRate
        sloTTFTMs = 2_000
        sloTPOTMs = 35
        mtpAcceptance = 0.7
        kvBlockTokens = KVRoom.blockTokens
        kvMemoryFraction = Self.defaultKVMemoryFraction
        prefillTokensPerNPU = KVRoom.prefillTokensPerNPU
        colocatedChunkTokens = 2_048
        longPromptTokens = 8_192
        maxWaitingPerPrefillInstance = 1_024
        poolBytesPerNode = 512e9
        snapshotInterval = 0.5
        seriesCapacity = 600
        eventCapacity = 1_000
        faults = FaultSettings()
    }
}
