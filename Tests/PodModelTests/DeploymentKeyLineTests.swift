import Testing
@testable import PodModel

/// A deployment file's refusal about one key names the key's line (`file:LINE: …`), as
/// `[policies]` refusals did: `[scaling] bogus = 1` or a wrong type in the second `[[prefill]]`
/// named only the file, leaving the author to search it.
@Suite struct DeploymentKeyLineTests {
    func message(_ toml: String) -> String? {
        do { _ = try Deployment(toml: toml, source: "d.toml"); return nil } catch { return "\(error)" }
    }

    @Test func anUnknownScalingKeyIsRefusedAtItsLine() {
        let text = """
            name = "x"
            nodes = 4

            [[colocated]]
            npus = 1

            [scaling]
            autoscale = "off"
            bogus = 1
            """
        #expect(message(text) == "d.toml:9: [scaling]: unknown field 'bogus'; expected one of: autoscale, prewarmed_spare_tes")
        // Written as a dotted key at the top level, found there.
        #expect(message("scaling.bogus = 1\n[[colocated]]\nnpus = 1\n")
                    == "d.toml:1: [scaling]: unknown field 'bogus'; expected one of: autoscale, prewarmed_spare_tes")
        #expect(message(text.replacingOccurrences(of: "bogus = 1", with: "prewarmed_spare_tes = 65"))
                    == "d.toml:9: [scaling]: prewarmed_spare_tes must be between 0 and 64, got 65")
        #expect(message(text.replacingOccurrences(of: "autoscale = \"off\"", with: "autoscale = \"later\"")
                            .replacingOccurrences(of: "bogus = 1", with: ""))
                    == "d.toml:8: [scaling]: autoscale must be off or slo, got 'later'")
    }

    /// The line is the one in the group the message numbers, not the same key in an earlier group.
    @Test func aWrongTypeInTheSecondPrefillGroupIsRefusedAtItsLine() {
        let text = """
            [[prefill]]
            npus = 2
            tp = 1

            [[prefill]]
            npus = 2
            tp = "4"

            [[decode]]
            npus = 2
            """
        #expect(message(text) == "d.toml:7: [[prefill]] #2: 'tp' must be an integer, got '4' (a string)")
        #expect(message(text.replacingOccurrences(of: "tp = \"4\"", with: "batch_limit = 8"))
                    == "d.toml:7: [[prefill]] #2: batch_limit applies to decode and colocated groups "
                    + "(a prefill batch is bounded by tokens); leave it out or set 0")
        #expect(message(text.replacingOccurrences(of: "tp = \"4\"", with: "flavour = 1")) == "d.toml:7: [[prefill]] #2: "
                    + "unknown field 'flavour'; expected one of: batch_limit, count, dp, ep, external, first_npu, hardware, "
                    + "npus, redundant_experts, shared_expert_dies, tp")
        #expect(message(text.replacingOccurrences(of: "tp = \"4\"", with: "tp = 1") + "\nexternal = 1\n")
                    == "d.toml:11: [[decode]] #1: 'external' must be true or false, got 1 (an integer)")
    }

    @Test func topLevelAndMoEAttentionKeysAreRefusedAtTheirLines() {
        let group = "\n[[colocated]]\nnpus = 1\n"
        #expect(message("# a pod\nnodes = 4.5\n" + group)
                    == "d.toml:2: 'nodes' must be an integer, got 4.5 (a floating-point number)")
        #expect(message("model = \"deepseek-r1\"\nname = \" \"\n" + group)
                    == "d.toml:2: name must not be empty (leave it out to use the file's name)")
        #expect(message("nodes = 4\nflavour = 1\n" + group)?.hasPrefix("d.toml:2: unknown field 'flavour'; ") == true)
        #expect(message("nodes = 4\n\n[moe_attention]\nexpert_dies = 8\nattention_domains = true\n")
                    == "d.toml:5: [moe_attention]: 'attention_domains' must be an integer, got true (a bool)")
    }
}
