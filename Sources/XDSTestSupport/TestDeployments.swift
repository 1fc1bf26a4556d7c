import PodModel
import ServingEngine
import SimKit

/// Small deployments that keep engine tests fast while using the real model and cost model.
public enum TestDeployments {
    /// A 4-node toy pod of DeepSeek-R1 on Ascend 910C: two prefill TEs of one node each
    /// (8 NPUs = 16 dies, TP4·DP4, EP16) on nodes 0 and 1, and one decode TE of two nodes
    /// (16 NPUs, DP32 = EP32) on nodes 2–3. Decode needs two nodes: on 16 dies the model's
    /// weights leave too little HBM for KV.
    public static let toyPod = Deployment(
        name: "toy-pod", model: "deepseek-r1", hardware: "ascend-910c", nodes: 4,
        groups: [
            InstanceGroup(role: .prefill, count: 2, npusEach: 8, firstNPU: 0, tp: 4, dp: 4, ep: 16,
                          redundantExperts: 0, batchLimit: 0),
            InstanceGroup(role: .decode, count: 1, npusEach: 16, firstNPU: 16, tp: 1, dp: 32, ep: 32,
                          redundantExperts: 0, batchLimit: 64),
        ])

    /// A 6-node pod for fault tests, shaped like superpod in small: two prefill TEs of one node
    /// each (nodes 0 and 1, NPUs 0–15), one decode TE of three nodes (nodes 2–4, NPUs 16–39 =
    /// dies 32–79, DP48 = EP48: 32 routed dies with 9 slots each (256 experts + 32 redundant)
    /// and 16 shared-expert dies, NPUs 32–39), and a spare node (node 5, NPUs 40–47). Losing a
    /// shared-expert NPU keeps every expert; which routed dies can go depends on the placement.
    public static let faultPod = Deployment(
        name: "fault-pod", model: "deepseek-r1", hardware: "ascend-910c", nodes: 6,
        groups: [
            InstanceGroup(role: .prefill, count: 2, npusEach: 8, firstNPU: 0, tp: 4, dp: 4, ep: 16,
                          redundantExperts: 0, batchLimit: 0),
            InstanceGroup(role: .decode, count: 1, npusEach: 24, firstNPU: 16, tp: 1, dp: 48, ep: 48,
                          redundantExperts: 32, sharedExpertDies: 16, batchLimit: 64),
        ])

    /// Two PD-colocated Llama-2-7B replicas on A100s, TP1 (the Vidur-style setup).
    public static func colocatedLlama() -> Deployment {
        // The spec is a literal known to be valid.
        try! Deployment.inlineColocated("colocated:2:llama-2-7b:nvidia-a100:tp1")
    }
}

/// A fixed list of requests, replayed in order.
public struct FixedWorkload: WorkloadSource {
    private var requests: [RequestSpec]
    private var next_ = 0
    public init(_ requests: [RequestSpec]) { self.requests = requests }
    public mutating func next() -> RequestSpec? {
        guard next_ < requests.count else { return nil }
        defer { next_ += 1 }
        return requests[next_]
    }

    /// `count` requests, one every `gap` seconds, all of `prompt` tokens and `output` tokens,
    /// with a shared system prompt of `sharedBlocks` 128-token blocks.
    public static func uniform(count: Int, gap: Double, prompt: Int, output: Int, sharedBlocks: Int = 0) -> FixedWorkload {
        FixedWorkload((0..<count).map { i in
            RequestSpec(id: i, arrival: Double(i) * gap, promptTokens: prompt, outputTokens: output,
                        prefixHashes: (0..<sharedBlocks).map { UInt64($0 + 1) }, prefixBlockTokens: 128)
        })
    }
}

/// Passes through at most `limit` requests of another source.
public struct LimitedWorkload<Base: WorkloadSource>: WorkloadSource {
    private var base: Base
    private var left: Int
    public init(_ base: Base, limit: Int) {
        self.base = base
        left = limit
    }
    public mutating func next() -> RequestSpec? {
        guard left > 0 else { return nil }
        left -= 1
        return base.next()
    }
}
