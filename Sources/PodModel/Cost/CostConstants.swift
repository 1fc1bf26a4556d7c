/// Every efficiency factor and overhead of the cost model, each with its source.
///
/// One set of constants produces every calibration point (`xds validate`); none of them is
/// fitted per point. Where system.md gives a range, the value chosen is named and inside it.
public struct CostConstants: Sendable, Equatable {
    /// system.md §2: "INT8 GEMM reaches 77–83% of peak" (mid-range).
    public var gemmEfficiency = 0.80
    /// system.md §2: "MLA compute utilisation about 65%" (core attention on the BF16 path).
    public var attentionComputeEfficiency = 0.65
    /// system.md §2: "MLA reaches about 84% of HBM bandwidth"; used for every HBM stream.
    public var hbmEfficiency = 0.84
    /// system.md §2: UB NPU→NPU write 135–137 GB/s of 196 GB/s; pushes (dispatch, combine, A2E/E2A).
    public var fabricWriteEfficiency = 136.0 / 196.0
    /// system.md §2: UB NPU→NPU read 164–167 GB/s of 196 GB/s; pulls (KV transfer, weight copies).
    public var fabricReadEfficiency = 165.5 / 196.0
    /// Not in system.md: RoCE goodput assumed at the UB read fraction (documented default).
    public var scaleOutEfficiency = 165.5 / 196.0
    /// Fixed cost of one dispatch or combine: the global barrier plus the 8-bit quantisation /
    /// weighted-sum kernels around the transfer. Chosen so that dispatch and combine at batch 128
    /// per rank land inside system.md §4's 116–152 µs for EP8…EP256.
    public var collectiveFixedSeconds = 50e-6
    /// How far an operator overlaps streaming its operands from HBM with computing on them:
    /// 1 is the ideal roofline (time = max of the two), 0 is load-then-compute (time = sum).
    /// Decode operators at batch ≤ 128 per die run load-then-compute: with the roofline's max the
    /// published decode layer times (system.md §4: 0.874 ms, 1.26 ms with MTP) cannot both be met,
    /// with the sum they are. Prefill is compute-bound either way.
    public var decodeLoadComputeOverlap = 0.0
    public var prefillLoadComputeOverlap = 1.0
    /// Share of the shorter of the attention and MoE streams hidden by the two-microbatch overlap
    /// (system.md §4: two microbatches overlap attention with MoE; "microbatching gives +23–31%"
    /// in prefill). The papers leave dynamic microbatching's inner workings open (§5).
    public var microbatchOverlap = 0.85
    /// system.md §4: "Graph launch costs 0.6–0.8 ms per graph" (mid-range); decode runs in graph mode.
    public var graphLaunchSeconds = 0.7e-3
    /// system.md §4: "scheduling adds about 2 ms per step".
    public var schedulingSeconds = 2e-3
    /// system.md §4: XCCL point-to-point setup; "under 20 µs for payloads under 1 MB".
    public var pointToPointSetupSeconds = 8e-6
    /// Prefill runs eagerly (system.md §1): one host-side launch per operator. Not given by the
    /// papers; a typical eager launch cost on an NPU (documented default).
    public var eagerLaunchSecondsPerOperator = 10e-6
    /// Operators per transformer layer in eager prefill (norms, projections, attention, gate,
    /// dispatch, experts, combine, residuals).
    public var eagerOperatorsPerLayer = 14.0
    /// A2E/E2A store-and-forward at a trampoline die adds one more hop of the chunk in flight
    /// (system.md §1: A2E goes through 160 trampoline dies that forward to the rest).
    public var trampolineHops = 2.0

    public init() {}
    public static let `default` = CostConstants()
}
