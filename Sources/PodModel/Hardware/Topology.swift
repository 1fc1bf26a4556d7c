/// Small ID types for pod → node → NPU → die addressing.
///
/// ```swift
/// let pod = PodTopology.cloudMatrix384
/// let die = DieID(37 * 2 + 1)
/// print(pod.npu(of: die), pod.node(of: pod.npu(of: die)))   // NPUID(37) NodeID(4)
/// ```
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: Int
    public init(_ raw: Int) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "node \(raw)" }
}

public struct NPUID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: Int
    public init(_ raw: Int) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "npu \(raw)" }
}

public struct DieID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: Int
    public init(_ raw: Int) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "die \(raw)" }
}

/// The three network planes of a CloudMatrix384 (system.md §2).
public enum FabricPlane: String, Sendable, CaseIterable {
    /// Unified Bus: scale-up, every NPU to every NPU through a two-tier non-blocking switch.
    case ub
    /// RDMA over Converged Ethernet: scale-out, towards other pods and older prefill servers.
    case roce
    /// Front-end network: management, storage, external traffic.
    case vpc
}

/// The shape of a pod: nodes × devices × dies, numbered densely.
public struct PodTopology: Sendable, Equatable {
    public var nodes: Int
    public var npusPerNode: Int
    public var diesPerNPU: Int

    public init(nodes: Int, npusPerNode: Int, diesPerNPU: Int) {
        self.nodes = nodes
        self.npusPerNode = npusPerNode
        self.diesPerNPU = diesPerNPU
    }

    /// system.md §2: 48 nodes × 8 NPUs = 384 NPUs = 768 dies.
    public static let cloudMatrix384 = PodTopology(nodes: 48, npusPerNode: 8, diesPerNPU: 2)

    public var npuCount: Int { nodes * npusPerNode }
    public var dieCount: Int { npuCount * diesPerNPU }

    public func node(of npu: NPUID) -> NodeID { NodeID(npu.raw / npusPerNode) }
    public func npu(of die: DieID) -> NPUID { NPUID(die.raw / diesPerNPU) }
    public func node(of die: DieID) -> NodeID { node(of: npu(of: die)) }
    public func dies(of npu: NPUID) -> [DieID] {
        (0..<diesPerNPU).map { DieID(npu.raw * diesPerNPU + $0) }
    }
    public func npus(of node: NodeID) -> [NPUID] {
        (0..<npusPerNode).map { NPUID(node.raw * npusPerNode + $0) }
    }
    public func contains(_ npu: NPUID) -> Bool { npu.raw >= 0 && npu.raw < npuCount }
    public func contains(_ die: DieID) -> Bool { die.raw >= 0 && die.raw < dieCount }
    public func contains(_ node: NodeID) -> Bool { node.raw >= 0 && node.raw < nodes }

    /// Scale-up latency of a small message between two dies (system.md §2: 1.2–1.3 µs in a
    /// node, 1.9–2.1 µs across nodes; the two dies of one package are closer still).
    public func latency(from a: DieID, to b: DieID, on hw: HardwareProfile) -> Double {
        if a == b { return 0 }
        if node(of: a) == node(of: b) { return hw.scaleUpLatencyIntraNode }
        return hw.scaleUpLatencyInterNode
    }
}

extension PodTopology {
    /// The one wording for a node, NPU or die that is not there: "node 60 does not exist; the pod
    /// has nodes 0…47", or "… has only node 0" on a one-node cluster (not "nodes 0…0").
    public static func missing(_ noun: String, _ index: Int, count: Int) -> String {
        "\(noun) \(index) does not exist; \(has(noun, count: count))"
    }

    /// "the pod has nodes 0…47" (or "only node 0", "no nodes"): the valid range of a node, NPU or
    /// die number on this pod, for every message that names it.
    public static func has(_ noun: String, count: Int) -> String {
        "the pod has " + (count <= 0 ? "no \(noun)s" : count == 1 ? "only \(noun) 0" : "\(noun)s 0…\(count - 1)")
    }
}
