import Foundation
import Testing
@testable import PodModel

@Suite struct DeploymentTests {
    @Test(arguments: Deployment.presetNames)
    func presetsValidateAndRoundTripThroughTOML(name: String) throws {
        let preset = try #require(Deployment.preset(name))
        try preset.validate()
        let back = try Deployment(toml: preset.toml(), source: "\(name).toml")
        #expect(back == preset)
    }

    /// A missing deployment file, a folder and a binary file were all "x.toml: cannot read
    /// deployment file": the reason is said, in parentheses after the same words.
    @Test func anUnreadableFileSaysWhy() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xds-unreadable-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("folder.toml")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let binary = dir.appendingPathComponent("binary.toml")
        try Data([0x6E, 0x61, 0x6D, 0x65, 0x20, 0x3D, 0x20, 0xFF, 0xFE, 0x0A]).write(to: binary)
        let missing = dir.appendingPathComponent("missing.toml").path
        for (path, reason) in [(missing, "no such file"), (folder.path, "it is a directory"), (binary.path, "not UTF-8 text")] {
            #expect(throws: ConfigError("\(path): cannot read deployment file (\(reason))")) { try Deployment.load(path: path) }
        }
        #expect(throws: ConfigError("'': cannot read scenario file (no such file)")) {
            try TOMLDocument.read(path: "", what: "scenario file")
        }
    }

    @Test func shippedTOMLFilesEqualThePresets() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for name in Deployment.presetNames {
            let file = root.appendingPathComponent("deployments/\(name).toml").path
            #expect(try Deployment.load(path: file) == Deployment.preset(name), "\(file)")
        }
    }

    @Test func superpodLayoutMatchesInterfaces() throws {
        let d = Deployment.superpod
        #expect(d.usedNPUs().count == 8 * 16 + 160)
        #expect(PodTopology.cloudMatrix384.npuCount - d.usedNPUs().count == 96)
        let decode = try #require(d.group(.decode))
        #expect(decode.dp == 320 && decode.ep == 320 && decode.routedSlots(for: .deepSeekR1) == 288)
        #expect(Set(Deployment.xDeepServeMA.usedNPUs()).count == 384)
        #expect(Deployment.colocated288.group(.decode)?.npusEach == 144)
    }

    @Test func inlineColocatedReplicas() throws {
        let d = try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1")
        try d.validate()
        let g = try #require(d.group(.colocated))
        #expect(g.count == 4 && g.npusEach == 1 && g.tp == 1 && d.hardware == "nvidia-a100" && d.nodes == 1)
        let h = try Deployment.resolve("colocated:2:llama-3-70b:nvidia-h100:tp4")
        #expect(h.group(.colocated)?.npusEach == 4)
    }

    /// Model and profile names fold ASCII case, so the spec's own words do too, and the deployment
    /// is named in one canonical spelling whatever the spelling typed.
    @Test func inlineSpecsFoldCaseAndAreNamedCanonically() throws {
        let typed = try Deployment.resolve("Colocated:02:Llama-2-7B:NVIDIA-A100:TP1")
        let plain = try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1")
        #expect(typed.name == "colocated:2:llama-2-7b:nvidia-a100:tp1")
        #expect(typed.name == plain.name && typed.groups == plain.groups && typed.hardware == plain.hardware)
        #expect(throws: (any Error).self) { try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:Xp1") }
    }

    func problem(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    @Test func badDeploymentsGetOneLineNamingTheProblem() throws {
        var twice = Deployment.superpod
        twice.groups[1].firstNPU = 120
        var tooBig = Deployment.superpod
        tooBig.groups[0].count = 30
        var badEP = Deployment.superpod
        badEP.groups[0].ep = 31
        var negative = Deployment.superpod
        negative.groups[1].batchLimit = -4
        var unknownModel = Deployment.superpod
        unknownModel.model = "gpt-9"
        var unknownHW = Deployment.superpod
        unknownHW.hardware = "tpu"
        // The decode group's EP 320 holds 32 shared-expert dies: the message says where 288 comes from.
        var kimi = Deployment.superpod
        kimi.model = "kimi-k2"
        let cases: [(Deployment, String)] = [
            (twice, "used twice"), (tooBig, "but the pod has NPUs 0…383"), (badEP, "does not divide the experts"),
            (kimi, "416 slots over 288 routed-expert dies (ep 320 − 32 shared-expert dies)"),
            (negative, "batch_limit must be between 0 and 16384"), (unknownModel, "unknown model 'gpt-9'"),
            (unknownHW, "unknown hardware profile 'tpu'"),
        ]
        for (d, expected) in cases {
            let message = problem { try d.validate() }
            #expect(message.contains(expected), "\(message)")
            #expect(!message.contains("\n"))
        }
        for (spec, expected) in [("colocated:0:llama-2-7b:nvidia-a100:tp1", "between 1 and 1024"),
                                 ("colocated:2:llama-2-7b:nvidia-a100", "expected colocated:N"),
                                 ("colocated:2:llama-2-7b:nvidia-a100:x4", "TP degree"),
                                 ("colocated:2:nope:nvidia-a100:tp1", "unknown model"),
                                 ("superduperpod", "unknown deployment")] {
            #expect(problem { _ = try Deployment.resolve(spec) }.contains(expected))
        }
    }

    @Test func malformedTOMLNamesFileAndLine() {
        let message = problem { _ = try Deployment(toml: "name = \"x\"\nnodes = = 4\n", source: "bad.toml") }
        #expect(message.hasPrefix("bad.toml:2:"), "\(message)")
        let unknownField = problem {
            _ = try Deployment(toml: "name = \"x\"\n[[decode]]\nnpus = 2\ntp = 1\ndp = 4\nep = 4\nflavour = 1\n", source: "f.toml")
        }
        #expect(unknownField.contains("unknown field 'flavour'"), "\(unknownField)")
        let wrongType = problem { _ = try Deployment(toml: "nodes = \"many\"\n", source: "t.toml") }
        #expect(wrongType.contains("'nodes' must be an integer"), "\(wrongType)")
        // A value of the wrong type is shown with its kind (it was "must be an integer" alone).
        for (toml, says) in [("nodes = 4.5\n", "'nodes' must be an integer, got 4.5 (a floating-point number)"),
                             ("nodes = \"48\"\n", "'nodes' must be an integer, got '48' (a string)"),
                             ("nodes = [1]\n", "'nodes' must be an integer, got an array"),
                             ("model = 5\n", "'model' must be a string, got 5 (an integer)")] {
            let message = problem { _ = try Deployment(toml: toml, source: "t.toml") }
            #expect(message == "t.toml:1: \(says)", "\(toml)")  // with the key's line
        }
        let impossible = problem {
            _ = try Deployment(toml: "[[decode]]\nnpus = 400\ntp = 1\ndp = 800\nep = 320\nshared_expert_dies = 32\nredundant_experts = 32\n",
                               source: "i.toml")
        }
        #expect(impossible.contains("i.toml:") && impossible.contains("npus must be between 1 and 384"), "\(impossible)")
    }
}
