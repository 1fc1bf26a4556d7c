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

    /// A required field left out is refused at its table's header, and a `[policies.x]` sub-table
    /// at its own: "[[colocated]] #2: missing field 'npus'" named the file alone.
    @Test func aMissingFieldIsRefusedAtItsTablesHeader() {
        #expect(message("nodes = 4\n[[colocated]]\nnpus = 1\n\n[[colocated]]\ncount = 1\n")
                    == "d.toml:5: [[colocated]] #2: missing field 'npus'")
        #expect(message("nodes = 4\n\n[moe_attention]\nattention_domains = 1\n") == "d.toml:3: [moe_attention]: missing field 'expert_dies'")
        #expect(message("nodes = 4\n[[colocated]]\nnpus = 1\n[policies.x]\na = 1\n")?
                    .hasPrefix("d.toml:4: [policies] unknown policy slot 'x'; ") == true)
    }

    /// A file with CRLF line ends (saved on Windows) lost every refusal's line: Swift reads
    /// "\r\n" as one Character, which a split on "\n" never matches, so the file was one line.
    @Test func aCRLFFileKeepsItsLines() {
        #expect(message("nodes = 4\r\n[[colocated]]\r\nnpus = 1.5\r\n")
                    == "d.toml:3: [[colocated]] #1: 'npus' must be an integer, got 1.5 (a floating-point number)")
        #expect(message("nodes = 4\r\n[[colocated]]\r\nnpus = 1\r\n[[decod]]\r\n")?.hasPrefix("d.toml:4: unknown table [[decod]]; ") == true)
        #expect(message("nodes = 4\r\n[[colocated]]\r\nnpus = 1\r\n[[colocated]]\r\ncount = 1\r\n")
                    == "d.toml:4: [[colocated]] #2: missing field 'npus'")
    }

    /// A table written as dotted keys (`decode.npus = 1` where `[[decode]]` belongs) is refused at
    /// the first of its lines: the scan matched the key only written whole, so the line was lost.
    @Test func aTableWrittenAsDottedKeysIsRefusedAtItsLine() {
        #expect(message("nodes = 4\ndecode.npus = 1\n") == "d.toml:2: 'decode' must be an array of tables ([[decode]])")
        #expect(message("nodes = 4\nscaling = 5\n") == "d.toml:2: 'scaling' must be a table, got 5 (an integer)")
        #expect(TOMLDocument.line(ofKey: "header", inTable: "colors", text: "[colors]\ntext = 1\nheader.fg = 9\n") == 3)
        // A key that only starts like another is not it.
        #expect(TOMLDocument.line(ofKey: "decode", inTable: "", text: "decoder = 1\n") == nil)
    }

    /// The range checks that run on the built deployment (validate()) name the line of the key
    /// that holds the bad value, in the group the message is about; they named the file only.
    @Test func rangeRefusalsNameTheKeysLine() {
        let text = """
            name = "x"
            nodes = 4

            [[prefill]]
            count = 1
            npus = 2
            tp = 4
            dp = 1
            ep = 4

            [[decode]]
            npus = 2
            first_npu = 2
            tp = 1
            dp = 4
            ep = 4
            """
        /// `text` with `old` replaced in the [[decode]] group only.
        func decode(_ old: String, _ new: String) -> String {
            let parts = text.components(separatedBy: "[[decode]]")
            return parts[0] + "[[decode]]" + parts[1].replacingOccurrences(of: old, with: new)
        }
        #expect(message(text) == nil)
        #expect(message(text.replacingOccurrences(of: "nodes = 4", with: "nodes = 49"))
                    == "d.toml:2: deployment 'x': nodes must be between 1 and 48 (a CloudMatrix384 pod has 48 nodes), got 49")
        // The second group's `count`, not the first's.
        #expect(message(decode("npus = 2", "npus = 2\ncount = 0"))
                    == "d.toml:13: deployment 'x', decode group: count must be between 1 and 32 (NPUs in the pod), got 0")
        #expect(message(decode("npus = 2", "npus = 33"))
                    == "d.toml:12: deployment 'x', decode group: npus must be between 1 and 32 (NPUs in the pod), got 33")
        #expect(message(decode("first_npu = 2", "first_npu = 32"))
                    == "d.toml:13: deployment 'x', decode group: first_npu must be between 0 and 31 (NPU indices of the pod), got 32")
        #expect(message(decode("tp = 1", "tp = 0"))
                    == "d.toml:14: deployment 'x', decode group: tp must be between 1 and 4 (dies of one instance), got 0")
        #expect(message(decode("ep = 4", "ep = 5"))
                    == "d.toml:16: deployment 'x', decode group: ep must be between 1 and 4 (dies of one instance), got 5")
        #expect(message(decode("ep = 4", "ep = 4\nbatch_limit = 16385"))
                    == "d.toml:17: deployment 'x', decode group: batch_limit must be between 0 and 16384 (requests per DP group), "
                    + "got 16385")
        #expect(message(decode("ep = 4", "ep = 4\nbatch_limit = 0"))
                    == "d.toml:17: deployment 'x', decode group: batch_limit must be positive for a decode group")
        #expect(message(text.replacingOccurrences(of: "dp = 1\n", with: "dp = 1\nredundant_experts = 1025\n"))
                    == "d.toml:9: deployment 'x', prefill group: redundant_experts must be between 0 and 1024, got 1025")
        // tp × dp against npus is about the group's keys together: the group's table.
        #expect(message(decode("tp = 1", "tp = 3"))
                    == "d.toml:11: deployment 'x', decode group: tp 3 × dp 4 = 12 dies, but 2 NPUs have 4 dies")
        #expect(message(text.replacingOccurrences(of: "name = \"x\"", with: "name = \"x\"\nmodel = \"gpt-9\""))?
                    .hasPrefix("d.toml:2: ") == true)
    }

    /// A check across several keys of one group (tp × dp against npus, a group past the pod, an
    /// NPU used twice) names the line of that group's table header.
    @Test func refusalsAcrossKeysNameTheGroupsTable() {
        let text = """
            nodes = 4

            [[prefill]]
            npus = 2
            tp = 4

            [[decode]]
            npus = 2
            first_npu = 2
            tp = 2
            dp = 2
            ep = 4

            [[decode]]
            npus = 2
            tp = 2
            dp = 1
            ep = 4
            """
        #expect(message(text) == "d.toml:14: deployment 'd.toml', decode group: tp 2 × dp 1 = 2 dies, but 2 NPUs have 4 dies")
        #expect(message(text.replacingOccurrences(of: "dp = 1", with: "dp = 2"))
                    == "d.toml:14: deployment 'd.toml', decode group: NPU 0 is used twice (also by prefill 0)")
        #expect(message(text.replacingOccurrences(of: "dp = 1", with: "dp = 2\nfirst_npu = 31"))?
                    .hasPrefix("d.toml:14: deployment 'd.toml', decode group: instance 0 would take NPUs 31…32") == true)
        // [moe_attention]: a key's line, and the table's for a check across its keys.
        let ma = "nodes = 4\n\n[moe_attention]\nexpert_dies = 8\nattention_domains = 1\ndp_per_domain = 8\n"
        #expect(message(ma.replacingOccurrences(of: "dp_per_domain = 8", with: "dp_per_domain = 65"))
                    == "d.toml:6: deployment 'd.toml', moe_attention: dp_per_domain must be between 1 and 64 (dies in the pod), got 65")
        #expect(message(ma.replacingOccurrences(of: "expert_dies = 8", with: "expert_dies = 7"))
                    == "d.toml:3: deployment 'd.toml', moe_attention: 7 routed-expert dies do not divide 256 experts")
    }

    /// A misspelt or unknown table is written as a header (`[[decod]]` for `[[decode]]`), not as
    /// `key = …`: the key scan found no line, and the refusal named the file alone, while every
    /// other TOML refusal says `file:LINE`. It names the header's line, the header as written and
    /// the tables a deployment takes.
    @Test func anUnknownTableIsRefusedAtItsHeaderNamingTheTablesTaken() {
        let tables = "a deployment's tables are [[prefill]], [[decode]], [[colocated]], [moe_attention], [policies] and [scaling]"
        let text = "name = \"x\"\nnodes = 4\n\n[[decode]]\nnpus = 2\n\n[[decod]]\nnpus = 2\n"
        #expect(message(text) == "d.toml:7: unknown table [[decod]]; \(tables)")
        #expect(message("nodes = 4\n[[colocated]]\nnpus = 1\n\n[scalling]\nautoscale = \"off\"\n")
                    == "d.toml:5: unknown table [scalling]; \(tables)")
        // Quoted or spaced, as TOML allows: shown as written (without its comment).
        #expect(message("nodes = 4\n[[colocated]]\nnpus = 1\n[ \"moe attention\" ]  # MA\nexpert_dies = 8\n")
                    == "d.toml:4: unknown table [ \"moe attention\" ]; \(tables)")
        // A sub-table of a group: its own header's line, not the group's.
        let sub = "nodes = 4\n[[decode]]\nnpus = 2\n[[decode]]\nnpus = 2\n[decode.extra]\na = 1\n"
        #expect(message(sub) == "d.toml:6: [[decode]] #2: unknown table [decode.extra]; this table takes fields only: "
                    + "batch_limit, count, dp, ep, external, first_npu, hardware, npus, redundant_experts, shared_expert_dies, tp")
        // The right table written with the wrong brackets: the header's line, too.
        #expect(message("nodes = 4\n\n[decode]\nnpus = 2\n") == "d.toml:3: 'decode' must be an array of tables ([[decode]])")
        #expect(message("nodes = 4\n[[colocated]]\nnpus = 1\n[[scaling]]\nautoscale = \"off\"\n")
                    == "d.toml:4: 'scaling' must be a table, got an array")
    }

    /// External groups were bounded one by one (each within its profile's 1,024 devices), not
    /// together: 200 groups of 1,024 external prefill instances were taken, and `xds run
    /// --duration 10s` on them had not finished after two minutes.
    @Test func externalGroupsTogetherFitTheirProfilesCluster() {
        let text = "model = \"llama-2-7b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n[[decode]]\nnpus = 1\n"
        let group = "\n[[prefill]]\nexternal = true\ncount = 1024\nnpus = 1\n"
        #expect(message(text + group) == nil)
        #expect(message(text + group + group) == "d.toml:13: deployment 'd.toml', prefill group: external nvidia-a100 groups "
                    + "would use 2048 devices in all, more than the 1024 nvidia-a100 devices external groups may use together")
    }
}
