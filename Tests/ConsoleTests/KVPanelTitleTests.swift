import PodModel
import ServingEngine
import Testing

@testable import Console

/// The KV view's right-hand panel was titled "Prefix cache · DRAM pool" on GPU deployments,
/// whose engine builds no pooled DRAM tier (the panel's own row says "DRAM pool  none on GPUs"):
/// the title promised a tier that is not there. It names what the panel shows on each kind of
/// deployment: the pool where there is one, the transfers where KV moves, else the KV-written meter.
@Suite struct KVPanelTitleTests {
    static let h100 = "colocated:8:llama-3-70b:nvidia-h100:tp8"

    /// The panel's title as drawn: from "Prefix cache" to the border's run of "─".
    static func poolTitle(_ text: String) -> String? {
        guard let line = text.split(separator: "\n").first(where: { $0.contains("Prefix cache") }),
              let start = line.range(of: "Prefix cache") else { return nil }
        let rest = line[start.lowerBound...]
        return String(rest.prefix { $0 != "─" && $0 != "┐" }).trimmingCharacters(in: .whitespaces)
    }

    @Test(arguments: ["colocated:2:llama-2-7b:nvidia-a100:tp1", h100])
    func gpuTitleNamesNoPool(spec: String) throws {
        let s = try GPUNoDRAMPoolTests.snapshot(spec)
        try #require(s.kv.poolCapacityBytes == 0)
        for (w, h) in [(80, 24), (200, 60)] {
            let text = GPUNoDRAMPoolTests.render(s, width: w, height: h)
            #expect(Self.poolTitle(text) == "Prefix cache · KV written", "\(text)")
            // The row under it still says the tier is absent.
            #expect(text.contains("DRAM pool  none on GPUs"), "\(text)")
        }
    }

    /// Colocated on Ascend keeps its pool (no transfers); the superpod keeps all three.
    @Test func poolDeploymentsKeepTheirTitles() throws {
        let colocated = try GPUNoDRAMPoolTests.snapshot("colocated:2:llama-2-7b:ascend-910b:tp1")
        try #require(colocated.kv.poolCapacityBytes > 0)
        #expect(Self.poolTitle(GPUNoDRAMPoolTests.render(colocated, width: 200, height: 60)) == "Prefix cache · DRAM pool")
        let superpod = try GPUNoDRAMPoolTests.snapshot("superpod")
        #expect(Self.poolTitle(GPUNoDRAMPoolTests.render(superpod, width: 80, height: 24)) == "Prefix cache · DRAM pool · transfers")
    }

    /// A disaggregated pod without a pool moves KV but has no tier: "Prefix cache · transfers".
    @Test func disaggregatedWithoutPoolNamesTransfers() throws {
        var s = try GPUNoDRAMPoolTests.snapshot("superpod")
        s.kv.poolCapacityBytes = 0
        s.kv.poolUsedBytes = 0
        let text = GPUNoDRAMPoolTests.render(s, width: 80, height: 24)
        #expect(Self.poolTitle(text) == "Prefix cache · transfers", "\(text)")
    }
}

