/// Peak figures of one accelerator kind, by name.
///
/// Peaks only: what fraction of a peak is achievable is the cost model's business
/// (``CostConstants``). Ascend figures come from shared/design/system.md §2; the NVIDIA
/// figures are the public SXM spec sheets, so the same engine can be set beside GPU-cluster
/// simulators.
///
/// ```swift
/// let npu = try HardwareProfile.named("ascend-910c")
/// print(npu.diesPerDevice, npu.bf16FlopsPerDie)
/// ```
public struct HardwareProfile: Sendable, Equatable {
    public var name: String
    /// Compute dies per device (the 910C package has two; GPUs one).
    public var diesPerDevice: Int
    public var devicesPerNode: Int
    public var bf16FlopsPerDie: Double
    /// The 8-bit path: INT8 on Ascend (no FP8), FP8 on H100, INT8 on A100.
    public var int8FlopsPerDie: Double
    public var hbmBytesPerDie: Double
    public var hbmBytesPerSecondPerDie: Double
    /// Scale-up fabric (UB / NVLink / HCCS), one direction, per die.
    public var scaleUpBytesPerSecondPerDie: Double
    /// Link between the two dies of one package, each way.
    public var dieToDieBytesPerSecond: Double
    /// Scale-out (RoCE / InfiniBand), per die.
    public var scaleOutBytesPerSecondPerDie: Double
    /// VPC / front-end network per node (management, storage, external).
    public var vpcBytesPerSecondPerNode: Double
    /// Small-message latency of the scale-up fabric inside a node and across nodes.
    public var scaleUpLatencyIntraNode: Double
    public var scaleUpLatencyInterNode: Double
    public var scaleOutLatency: Double
    /// Host DRAM → device bandwidth per die, for warm weight loads.
    public var hostToDeviceBytesPerSecondPerDie: Double
    /// Most nodes one deployment of this hardware may span: the pod for a CloudMatrix384, a
    /// stated ceiling elsewhere. Layouts larger than this are refused, so a hostile node or
    /// replica count cannot make the engine allocate per-die state for millions of dies.
    public var maxNodes: Int = HardwareProfile.defaultMaxNodes
    /// What the vendor calls one device ("NPU", "GPU"), for messages and labels. A field of the
    /// profile, not worked out from its die count (the Ascend 910B has one die, as a GPU does,
    /// and is an NPU all the same) or its name.
    public var deviceKind = "NPU"

    /// Ceiling for hardware not sold as a fixed pod: 128 nodes × 8 = 1,024 devices, about the
    /// largest GPU cluster the simulators we compare with (Vidur and others) are configured for.
    public static let defaultMaxNodes = 128
    /// Devices one deployment of this hardware may use (``maxNodes`` × ``devicesPerNode``).
    public var maxDevices: Int { maxNodes * devicesPerNode }


    /// What a fault or event text calls one die: on a GPU of one die the die is the GPU, and
    /// "die 1 runs 2× slower" named a part the hardware does not have ("GPU", as the console's
    /// fault menu and grid say). Ascend keeps "die" (a 910C chip has two; a 910B is an NPU of
    /// one die whose texts always said "die"). The `:` language keeps `fault … die D` for every kind.
    public var dieWord: String { deviceKind == "GPU" && diesPerDevice == 1 ? "GPU" : "die" }

    /// Die `die` named as ``dieWord`` says: "GPU 1" on a one-die GPU, "die 1" elsewhere.
    public func dieName(_ die: Int) -> String { "\(dieWord) \(die)" }

    /// Whole devices that hold `dies` dies: a TP-`k` replica of a `colocated:` spec takes them.
    public func devices(holdingDies dies: Int) -> Int { (dies + diesPerDevice - 1) / diesPerDevice }

    public static let catalogue: [HardwareProfile] = [.ascend910C, .ascend910B, .nvidiaH100, .nvidiaA100]
    public static var names: [String] { catalogue.map(\.name) }

    public static func named(_ name: String) throws -> HardwareProfile {
        if let p = catalogue.first(where: { $0.name == name.lowercased() }) { return p }
        throw ConfigError("unknown hardware profile \(InputEcho.quoted(name)); expected one of: \(names.joined(separator: ", "))")
    }

    /// Ascend 910C in a CloudMatrix384 (system.md §2).
    public static let ascend910C = HardwareProfile(
        name: "ascend-910c", diesPerDevice: 2, devicesPerNode: 8,
        bf16FlopsPerDie: 376e12,  // system.md §2: "about 376–400 TFLOPS BF16 per die"; low end
        int8FlopsPerDie: 752e12,  // system.md §2: "about 2× that in INT8"
        hbmBytesPerDie: 64e9,  // system.md §2: 64 GB HBM per die
        hbmBytesPerSecondPerDie: 1.6e12,  // system.md §2: 1.6 TB/s
        scaleUpBytesPerSecondPerDie: 196e9,  // system.md §2: UB 196 GB/s per die one way
        dieToDieBytesPerSecond: 270e9,  // system.md §2: dies linked at 270 GB/s each way
        scaleOutBytesPerSecondPerDie: 25e9,  // system.md §2: RoCE 200 Gbit/s per die
        vpcBytesPerSecondPerNode: 50e9,  // system.md §2: VPC 400 Gbit/s per node
        scaleUpLatencyIntraNode: 1.25e-6,  // system.md §2: 512-byte latency 1.2–1.3 µs in a node
        scaleUpLatencyInterNode: 2.0e-6,  // system.md §2: 1.9–2.1 µs across nodes
        scaleOutLatency: 10e-6,  // not in system.md: typical RoCE verbs round trip; documented default
        // system.md §4: warm DRAM→NPU load of the 671 GB INT8 model ≈ 5 s on the 768-die pod.
        hostToDeviceBytesPerSecondPerDie: 671e9 / 5 / 768,
        maxNodes: 48  // system.md §2: a CloudMatrix384 is 48 nodes
    )

    /// Ascend 910B (single die), used for prefill servers outside the pod (system.md §2, RoCE).
    /// Public spec sheet: ~320 TFLOPS FP16/BF16, 640 TOPS INT8, 64 GB HBM2e at 1.6 TB/s, HCCS 392 GB/s.
    public static let ascend910B = HardwareProfile(
        name: "ascend-910b", diesPerDevice: 1, devicesPerNode: 8,
        bf16FlopsPerDie: 320e12, int8FlopsPerDie: 640e12,
        hbmBytesPerDie: 64e9, hbmBytesPerSecondPerDie: 1.6e12,
        scaleUpBytesPerSecondPerDie: 196e9, dieToDieBytesPerSecond: 0,
        scaleOutBytesPerSecondPerDie: 25e9, vpcBytesPerSecondPerNode: 25e9,
        scaleUpLatencyIntraNode: 1.5e-6, scaleUpLatencyInterNode: 10e-6, scaleOutLatency: 10e-6,
        hostToDeviceBytesPerSecondPerDie: 25e9
    )

    /// NVIDIA H100 SXM (public spec sheet): 989 TF BF16 dense, 1,979 TF FP8 dense, 80 GB HBM3 at
    /// 3.35 TB/s, NVLink 900 GB/s bidirectional, one 400 Gbit/s NIC per GPU.
    public static let nvidiaH100 = HardwareProfile(
        name: "nvidia-h100", diesPerDevice: 1, devicesPerNode: 8,
        bf16FlopsPerDie: 989e12, int8FlopsPerDie: 1979e12,
        hbmBytesPerDie: 80e9, hbmBytesPerSecondPerDie: 3.35e12,
        scaleUpBytesPerSecondPerDie: 450e9, dieToDieBytesPerSecond: 0,
        scaleOutBytesPerSecondPerDie: 50e9, vpcBytesPerSecondPerNode: 25e9,
        scaleUpLatencyIntraNode: 2e-6, scaleUpLatencyInterNode: 5e-6, scaleOutLatency: 5e-6,
        hostToDeviceBytesPerSecondPerDie: 55e9,  // PCIe Gen5 x16 ≈ 64 GB/s raw
        deviceKind: "GPU"
    )

    /// NVIDIA A100 SXM 80 GB (public spec sheet): 312 TF BF16, 624 TOPS INT8, 2.039 TB/s,
    /// NVLink 600 GB/s bidirectional, one 200 Gbit/s NIC per GPU.
    public static let nvidiaA100 = HardwareProfile(
        name: "nvidia-a100", diesPerDevice: 1, devicesPerNode: 8,
        bf16FlopsPerDie: 312e12, int8FlopsPerDie: 624e12,
        hbmBytesPerDie: 80e9, hbmBytesPerSecondPerDie: 2.039e12,
        scaleUpBytesPerSecondPerDie: 300e9, dieToDieBytesPerSecond: 0,
        scaleOutBytesPerSecondPerDie: 25e9, vpcBytesPerSecondPerNode: 25e9,
        scaleUpLatencyIntraNode: 2e-6, scaleUpLatencyInterNode: 5e-6, scaleOutLatency: 5e-6,
        hostToDeviceBytesPerSecondPerDie: 25e9,  // PCIe Gen4 x16 ≈ 32 GB/s raw
        deviceKind: "GPU"
    )
}

/// A configuration problem, with one line that names it.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var description: String
    /// Where in the deployment the refused value sits, when the refusal is about one part of it
    /// (a range check of the deployment's own, or the engine's "weights leave no HBM for KV cache
    /// on the colocated group"): a deployment file's reader names that part's line
    /// (``Deployment/placed(_:source:text:)``). Nil otherwise.
    public var place: DeploymentPlace?
    public init(_ message: String, at place: DeploymentPlace? = nil) {
        description = message
        self.place = place
    }
}
