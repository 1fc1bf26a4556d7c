/// Every efficiency factor and overhead of the cost model, each with its source.
///
/// One set of constants produces every published point and ablation (`xds validate`); none of
/// them is set for one point, and nothing branches on a deployment. Where system.md gives a
/// range, the value chosen is named and inside it; where it gives nothing, the value is a
/// documented default with its physical reading.
public struct CostConstants: Sendable, Equatable {
    // MARK: Compute and memory

    /// system.md §2: "INT8 GEMM reaches 77–83% of peak" (top of the range: decode experts and
    /// prefill GEMMs run hundreds to thousands of tokens per weight, the large-GEMM case); every GEMM.
    public var gemmEfficiency = 0.83
    /// system.md §2: "MLA compute utilisation about 65%" (the attention core, decode and prefill).
    public var attentionComputeEfficiency = 0.65
    /// system.md §2: "MLA reaches about 84% of HBM bandwidth"; used for every HBM stream.
    public var hbmEfficiency = 0.84
    /// Share of the shorter of an operator's HBM load and its compute hidden behind the longer
    /// (physics: double-buffered tiles overlap the next load with the current compute; the first
    /// load and the last compute of a tile pipeline are not hidden, about 5% of the shorter part).
    /// 1 is the ideal roofline (max), 0 load-then-compute (sum). Not in system.md; one value for
    /// every operator, decode and prefill.
    public var loadComputeOverlap = 0.95

    // MARK: The two decode streams (system.md §4b)

    /// system.md §4b: the attention stream runs on 16 of the die's 24 cube cores…
    public var attentionStreamCubeShare = 16.0 / 24.0
    /// …and 32 of its 48 vector cores; the MoE stream has the rest (8 cube + 16 vector).
    public var attentionStreamVectorShare = 32.0 / 48.0

    // MARK: Fabric

    /// system.md §2: UB NPU→NPU write 135–137 GB/s of 196 GB/s; pushes (dispatch, combine, A2E/E2A).
    public var fabricWriteEfficiency = 136.0 / 196.0
    /// system.md §2: UB NPU→NPU read 164–167 GB/s of 196 GB/s; pulls (KV transfer, weight copies).
    public var fabricReadEfficiency = 165.5 / 196.0
    /// Not in system.md: RoCE goodput assumed at the UB read fraction (documented default).
    public var scaleOutEfficiency = 165.5 / 196.0
    /// Fixed cost of one dispatch or combine (barrier handshake, kernel start): with the per-message
    /// cost below, system.md §4b's "about 20 µs at batch 4" (32 messages) and §4's 116–152 µs at batch
    /// 128 (1,024 messages) both hold — two published points, two constants.
    public var collectiveFixedSeconds = 15e-6
    /// Handling cost of one dispatch/combine message (a token to one destination) at each end: the
    /// sender issues its descriptor, the receiving die's polling kernel takes its flag and places
    /// the token; both run while earlier messages are on the wire, so each side takes the longer of
    /// handling its messages and moving their bytes (physics: pipelined DMA). Set with the fixed
    /// cost above from system.md §4 and §4b.
    public var collectiveSecondsPerMessage = 0.09e-6
    /// XCCL point-to-point setup; system.md §4: "under 20 µs for payloads under 1 MB".
    public var pointToPointSetupSeconds = 8e-6
    /// A2E/E2A store-and-forward at a trampoline die adds one more hop of the chunk in flight
    /// (system.md §1: A2E goes through 160 trampoline dies that forward to the rest).
    public var trampolineHops = 2.0

    // MARK: Host side

    /// system.md §4: "Graph launch costs 0.6–0.8 ms per graph" (mid-range); decode runs in graph mode.
    public var graphLaunchSeconds = 0.7e-3
    /// system.md §4: "scheduling adds about 2 ms per step".
    public var schedulingSeconds = 2e-3
    /// Prefill runs eagerly (system.md §1): one host-side launch per operator. Not given by the
    /// papers; a typical eager launch cost on an NPU (documented default).
    public var eagerLaunchSecondsPerOperator = 10e-6
    /// Operators per transformer layer in eager prefill (norms, projections, attention, gate,
    /// dispatch, experts, combine, residuals), launched once per microbatch.
    public var eagerOperatorsPerLayer = 14.0

    // MARK: Vector work and sampling (system.md §4b: visible, not noise)

    /// Passes over the FP32 logits when sampling (physics: softmax, top-k/top-p filter, draw).
    public var samplingPasses = 3.0

    // MARK: Barrier spread in a fixed-batch bench (system.md §1.3: dispatch waits for the slowest group)

    /// Coefficient of variation of the KV lengths inside one DP group's batch: requests joined at
    /// different times, so their contexts are spread around the bench's `--context`. Not in
    /// system.md (§5 leaves load details open): uniform over ±50% of the mean (CV 1/√12 ≈ 0.29).
    public var contextSpread = 0.5 / 3.0.squareRoot()

    public init() {}
    public static let `default` = CostConstants()
}
