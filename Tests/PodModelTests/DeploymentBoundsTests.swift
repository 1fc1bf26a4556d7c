import Foundation
import Testing
@testable import PodModel

/// Hostile layouts (issue 10): every number of a deployment is checked against its range
/// before anything multiplies or loops over it, and the refusal names the field and the range.
@Suite(.timeLimit(.minutes(10))) struct DeploymentBoundsTests {
    /// The superpod file with one `key = value` line replaced (first occurrence after `anchor`).
    func superpodTOML(replacing old: String, with new: String) throws -> String {
        let text = Deployment.superpod.toml()
        let range = try #require(text.range(of: old), "no '\(old)' in the superpod TOML")
        return text.replacingCharacters(in: range, with: new)
    }

    func problem(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return "\(error)" }
        return nil
    }

    /// (line in superpod.toml, hostile replacement, words the message must contain).
    static let hostileTOML: [(String, String, [String])] = [
        ("nodes = 48", "nodes = 1000000000000", ["nodes must be between 1 and 48", "1000000000000"]),
        ("nodes = 48", "nodes = 9223372036854775807", ["nodes must be between 1 and 48"]),
        ("nodes = 48", "nodes = -3", ["nodes must be between 1 and 48", "-3"]),
        ("count = 8", "count = 9223372036854775807", ["prefill group: count must be between 1 and 384"]),
        ("count = 8", "count = 1000000000000", ["count must be between 1 and 384"]),
        ("npus = 16", "npus = 4611686018427387904", ["npus must be between 1 and 384"]),
        ("first_npu = 128", "first_npu = 9223372036854775807", ["first_npu must be between 0 and 383"]),
        ("first_npu = 0", "first_npu = -1", ["first_npu must be between 0 and 383"]),
        ("tp = 4", "tp = 9223372036854775807", ["tp must be between 1 and 32"]),
        ("dp = 8", "dp = -9223372036854775808", ["dp must be between 1 and 32"]),
        ("ep = 32", "ep = 0", ["ep must be between 1 and 32"]),
        ("redundant_experts = 32", "redundant_experts = 9223372036854775807", ["redundant_experts must be between 0 and 1024"]),
        ("shared_expert_dies = 32", "shared_expert_dies = 1000000", ["shared_expert_dies must be between 0 and 320"]),
        ("batch_limit = 96", "batch_limit = 9223372036854775807", ["batch_limit must be between 0 and 16384"]),
    ]

    @Test(arguments: hostileTOML)
    func hostileTOMLNumberIsRefusedNamingFieldAndRange(line: String, hostile: String, expected: [String]) throws {
        let text = try superpodTOML(replacing: line, with: hostile)
        let message = try #require(problem { _ = try Deployment(toml: text, source: "hostile.toml") })
        // The file and the line of the key holding the value (f9d778b).
        let lineNumber = try #require(text.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.trimmingCharacters(in: .whitespaces) == hostile }) + 1
        #expect(message.hasPrefix("hostile.toml:\(lineNumber): "), "\(message)")
        for word in expected { #expect(message.contains(word), "\(message)") }
        #expect(!message.contains("\n"))
    }

    /// The neighbours of the hostile values above are layouts that still load.
    @Test func validNeighboursStillLoad() throws {
        let fewerNodes = try superpodTOML(replacing: "nodes = 48", with: "nodes = 36")
        #expect(try Deployment(toml: fewerNodes, source: "n.toml").nodes == 36)
        let lastPrefill = try superpodTOML(replacing: "count = 8", with: "count = 14")  // 14 × 16 = 224 NPUs…
        let message = problem { _ = try Deployment(toml: lastPrefill, source: "p.toml") }
        #expect(message?.contains("used twice") == true, "\(message ?? "loaded")")  // …overlapping decode, not a range
        let bigBatch = try superpodTOML(replacing: "batch_limit = 96", with: "batch_limit = 16384")
        #expect(try Deployment(toml: bigBatch, source: "b.toml").group(.decode)?.batchLimit == 16_384)
        let lastNPU = try superpodTOML(replacing: "first_npu = 128", with: "first_npu = 224")
        #expect(try Deployment(toml: lastNPU, source: "l.toml").group(.decode)?.firstNPU == 224)
    }

    @Test func moeAttentionFieldsAreBounded() throws {
        for (field, value, expected) in [("expert_dies", Int.max, "expert_dies must be between 1 and 768"),
                                         ("attention_domains", 1 << 62, "attention_domains must be between 1 and 768"),
                                         ("dp_per_domain", -1, "dp_per_domain must be between 1 and 768"),
                                         ("microbatches", 1_000_000, "microbatches must be between 1 and 64"),
                                         ("first_npu", 384, "first_npu must be between 0 and 383")] {
            let text = Deployment.xDeepServeMA.toml()
            let start = try #require(text.range(of: "[moe_attention]"))
            let line = try #require(text.range(of: "\(field) = ", range: start.upperBound..<text.endIndex))
            let end = try #require(text[line.upperBound...].firstIndex(of: "\n"))
            let hostile = text.replacingCharacters(in: line.upperBound..<end, with: String(value))
            let message = try #require(problem { _ = try Deployment(toml: hostile, source: "ma.toml") })
            #expect(message.contains(expected), "\(message)")
        }
    }

    @Test func layoutsBeyondAPodOrAClusterAreRefused() throws {
        var external = Deployment.xDeepServeMA
        external.groups[0].count = 100_000
        let message = try #require(problem { try external.validate() })
        #expect(message.contains("count must be between 1 and 1024"), "\(message)")
        external.groups[0].count = 64  // 64 × 16 = 1024 910B devices: the ceiling itself
        try external.validate()
        external.groups[0].count = 65
        let over = try #require(problem { try external.validate() })
        #expect(over.contains("count 65 × npus 16 = 1040 devices"), "\(over)")

        var gpus = try Deployment.resolve("colocated:8:llama-2-7b:nvidia-a100:tp1")
        gpus.nodes = HardwareProfile.nvidiaA100.maxNodes + 1
        let nodes = try #require(problem { try gpus.validate() })
        #expect(nodes.contains("nodes must be between 1 and 128"), "\(nodes)")
    }

    @Test(arguments: [
        ("colocated:999999999:llama-2-7b:nvidia-a100:tp1", "replica count N must be a whole number between 1 and 1024"),
        ("colocated:99999999999999999999:llama-2-7b:nvidia-a100:tp1", "between 1 and 1024"),
        ("colocated:-2:llama-2-7b:nvidia-a100:tp1", "got '-2'"),
        ("colocated:0:llama-2-7b:nvidia-a100:tp1", "between 1 and 1024"),
        ("colocated:2:deepseek-r1:ascend-910c:tp9223372036854775807", "TP degree K must be between 1 and 768"),
        ("colocated:2:llama-2-7b:nvidia-a100:tp-1", "TP degree K must be between 1 and 1024"),
        ("colocated:300:llama-3-70b:nvidia-h100:tp4", "300 replicas × 4 GPUs = 1200"),
        // The Ascend 910B has one die, as a GPU does, and is still an NPU: the noun follows the
        // vendor, not the die count ("200 replicas × 8 GPUs" for an ascend-910b before).
        ("colocated:200:llama-2-7b:ascend-910b:tp8", "200 replicas × 8 NPUs = 1600"),
        ("colocated:2:llama-2-7b:nvidia-a100:tp", "not a TP degree"),
    ])
    func hostileInlineSpecIsRefused(spec: String, expected: String) throws {
        let message = try #require(problem { _ = try Deployment.resolve(spec) })
        #expect(message.contains(expected), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test func inlineSpecAtTheCeilingStillWorks() throws {
        let d = try Deployment.resolve("colocated:1024:llama-2-7b:nvidia-a100:tp1")
        try d.validate()
        #expect(d.nodes == 128 && d.group(.colocated)?.count == 1024)
        let pod = try Deployment.resolve("colocated:48:deepseek-r1:ascend-910c:tp16")
        try pod.validate()
        #expect(pod.nodes == 48)
    }

    /// A TP shard holds whole attention heads: a degree that does not divide the model's heads
    /// (Llama-2-7B has 32) is refused with the degrees that would work, inline or from a file.
    @Test(arguments: [
        ("colocated:1:llama-2-7b:nvidia-a100:tp3", "tp 3 does not divide llama-2-7b's 32 attention heads"),
        ("colocated:1:llama-2-7b:nvidia-a100:tp64", "use one of 1, 2, 4, 8, 16, 32"),
        ("colocated:1:deepseek-r1:ascend-910c:tp256", "tp 256 does not divide deepseek-r1's 128 attention heads"),
    ])
    func tpThatSplitsAHeadIsRefused(spec: String, expected: String) throws {
        let d = try Deployment.resolve(spec)
        let message = try #require(problem { try d.validate() })
        #expect(message.contains(expected), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test func tpThatSplitsWholeHeadsIsAccepted() throws {
        for spec in ["colocated:1:llama-2-7b:nvidia-a100:tp32", "colocated:2:llama-3-70b:nvidia-a100:tp8",
                     "colocated:1:deepseek-r1:ascend-910c:tp128"] {
            try Deployment.resolve(spec).validate()
        }
    }

    /// A name is shown in the header, reports and messages: written escaped, refused on load.
    @Test func namesWithControlCharactersAreWrittenEscapedAndRefusedOnLoad() throws {
        var d = Deployment.superpod
        d.name = "evil\u{1B}]0;pwned\u{07}\"\\\n\u{9B}2J"
        let text = d.toml()
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B })
        var message = ""
        do {
            _ = try Deployment(toml: text, source: "evil.toml")
            Issue.record("a name with control characters was accepted")
        } catch let error as ConfigError {
            message = error.description
        }
        #expect(message.contains("must not contain control characters"), "\(message)")
        #expect(!message.unicodeScalars.contains { $0.isTerminalControl })
        var quoted = Deployment.superpod
        quoted.name = "a \"quoted\" \\ name"
        let back = try Deployment(toml: quoted.toml(), source: "q.toml")
        #expect(back.name == quoted.name)
        // A blank name would show as nothing in the header ("xds run ·  · deepseek-r1").
        for blank in ["", "   "] {
            var d = Deployment.superpod
            d.name = blank
            #expect(throws: ConfigError.self) { try Deployment(toml: d.toml(), source: "blank.toml") }
        }
    }

    /// Settings that were read and then dropped without a word: a request limit on a prefill
    /// group, and an autoscaler named twice, differently.
    @Test func settingsThatWouldBeIgnoredAreRefused() throws {
        let text = Deployment.superpod.toml()
        func message(_ toml: String) -> String? {
            do { _ = try Deployment(toml: toml, source: "d.toml"); return nil } catch { return "\(error)" }
        }
        #expect(message(text) == nil)
        let prefillLimit = text.replacingOccurrences(of: "shared_expert_dies = 0\nbatch_limit = 0", with: "shared_expert_dies = 0\nbatch_limit = 5")
        #expect(prefillLimit != text)
        #expect(message(prefillLimit)?.contains("[[prefill]] #1: batch_limit applies to decode and colocated groups") == true,
                "\(message(prefillLimit) ?? "accepted")")
        // As `xds run --print-config` writes it, then edited.
        let printed = text + "\n[policies]\nautoscaler = \"off\"\n"
        #expect(message(printed + "\n[scaling]\nautoscale = \"slo\"\n")?
                    .contains("autoscale 'slo' disagrees with [policies] autoscaler 'off'") == true)
        #expect(message(printed + "\n[scaling]\nautoscale = \"off\"\n") == nil, "the same name twice is no conflict")
    }

    /// A `[policies]` key that is no slot was refused as "'bogus' must be a string (a policy
    /// name)" when its value was a number, sending the author to fix the value of a key that
    /// cannot be; with a string value the slot was named, but not where. Now either way: one
    /// line with the file and line, the key, and the slots there are; a wrong type in a real
    /// slot says what the file holds, at its line.
    @Test func aPoliciesKeyThatIsNoSlotIsNamedWithItsLineAndTheSlots() throws {
        let text = Deployment.superpod.toml() + "\n[policies]\nje_routing = \"round-robin\"\n"
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).count  // the next line's number
        func message(_ toml: String) -> String? {
            do { _ = try Deployment(toml: toml, source: "d.toml"); return nil } catch { return "\(error)" }
        }
        #expect(message(text) == nil)
        let slots = "expected one of: je_routing, dp_balancing, eplb_planner, recovery, autoscaler"
        #expect(message(text + "bogus = 1\n") == "d.toml:\(line): [policies] unknown policy slot 'bogus'; \(slots)")
        #expect(message(text + "bogus = \"x\"\n") == "d.toml:\(line): [policies] unknown policy slot 'bogus'; \(slots)")
        #expect(message(text.replacingOccurrences(of: "je_routing = \"round-robin\"", with: "je_routing = 5"))
                    == "d.toml:\(line - 1): [policies] 'je_routing' must be a string (a policy name), got 5 (an integer)")
        // Written as a dotted key at the top, the key is found there too.
        #expect(message("policies.bogus = 1\n" + Deployment.superpod.toml())
                    == "d.toml:1: [policies] unknown policy slot 'bogus'; \(slots)")
    }

    /// A dense model has no experts: `redundant_experts = 5` or `shared_expert_dies = 1` in its
    /// file was taken (ep 1 was the only expert field checked), printed back and ignored.
    @Test func expertFieldsOnADenseModelAreRefused() throws {
        let text = try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1").toml()
        func message(_ toml: String) -> String? {
            do { _ = try Deployment(toml: toml, source: "d.toml"); return nil } catch { return "\(error)" }
        }
        #expect(message(text) == nil)
        for (field, value) in [("redundant_experts", 5), ("shared_expert_dies", 1)] {
            let edited = text.replacingOccurrences(of: "\(field) = 0", with: "\(field) = \(value)")
            #expect(edited != text)
            let refused = message(edited)
            #expect(refused?.hasPrefix("d.toml") == true && refused?.contains(
                "colocated group: llama-2-7b is dense (no experts); \(field) must be 0, got \(value)") == true,
                    "\(refused ?? "accepted")")
        }
        // Every dense fit of a preset (--model) still validates: it sets both to 0.
        for preset in Deployment.presetNames {
            let d = try #require(Deployment.preset(preset))
            for model in ModelSpec.catalogue where !model.isMoE {
                if let fit = try? d.fitted(to: model) { #expect(throws: Never.self) { try fit.deployment.validate() } }
            }
        }
    }

    @Test func everyCatalogueModelHasAContextWindow() {
        for model in ModelSpec.catalogue { #expect(model.contextWindow >= 4_096, "\(model.name)") }
        #expect(ModelSpec.llama2_7B.contextWindow == 4_096)
        #expect(ModelSpec.deepSeekR1.contextWindow == 131_072)
    }
}
