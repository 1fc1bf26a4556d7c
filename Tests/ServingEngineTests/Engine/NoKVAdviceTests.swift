import PodModel
import Testing

@testable import ServingEngine

/// A layout whose weights leave no HBM for KV cache is refused with one line saying what to
/// change, in the knobs the deployment was written with: `tpK` for an inline `colocated:` spec
/// (which has no npus, dp or ep to give), the TOML fields otherwise.
@Suite struct NoKVAdviceTests {
    /// The engine's refusal, or nil when it builds.
    static func refusal(_ deployment: Deployment) -> String? {
        do {
            _ = try ServingEngine(configuration: EngineConfiguration(deployment: deployment))
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aColocatedSpecIsToldTheTpKToWrite() throws {
        let spec = try Deployment.inlineColocated("colocated:1:llama-3-70b:nvidia-a100:tp1")
        let message = try #require(Self.refusal(spec))
        #expect(message.hasPrefix("llama-3-70b weights leave no HBM for KV cache on the colocated group: 141.1 GB"))
        #expect(message.hasSuffix("; raise tpK in the spec to tp2 or more, e.g. colocated:1:llama-3-70b:nvidia-a100:tp2"))
        #expect(!message.contains("npus, dp") && !message.contains("\n"))
        // The spec it names runs.
        #expect(Self.refusal(try Deployment.inlineColocated("colocated:1:llama-3-70b:nvidia-a100:tp2")) == nil)
    }

    /// On a 910C (2 dies per chip) TP must fill whole chips and divide the heads: 57.6 GB per die
    /// needs tp4; 384 replicas of 2 NPUs do not fit the pod, so the advice says how many do.
    @Test func theAdvisedSpecFitsThePod() throws {
        let spec = try Deployment.inlineColocated("colocated:384:llama-3-70b:ascend-910c:tp1")
        let message = try #require(Self.refusal(spec))
        #expect(message.hasSuffix(
            "; raise tpK in the spec to tp4 or more, e.g. colocated:192:llama-3-70b:ascend-910c:tp4 "
                + "(192 replicas: 2 NPUs each, at most 384 in one deployment)"))
        #expect(Self.refusal(try Deployment.inlineColocated("colocated:192:llama-3-70b:ascend-910c:tp4")) == nil)
        // An MoE model: EP is the replica's dies, so tpK must also split the 256 experts evenly.
        let moe = try #require(Self.refusal(try Deployment.inlineColocated("colocated:1:deepseek-r1:nvidia-a100:tp1")))
        #expect(moe.hasSuffix("e.g. colocated:1:deepseek-r1:nvidia-a100:tp16"))
        #expect(moe.contains("(tp 1, 256 expert slots per die on 1 routed-expert die)"), "one die, singular: \(moe)")
        #expect(Self.refusal(try Deployment.inlineColocated("colocated:1:deepseek-r1:nvidia-a100:tp16")) == nil)
    }

    /// `validate --sweep` of a spec whose weights leave no KV room said only the bench's HBM line
    /// ("batch 8/die at context 1024 does not fit: …"), without the `tpK` to write that `xds run`
    /// gives for the same spec; it now refuses it with the engine's own line.
    @Test func aSweepOfASpecThatCannotHoldKVIsToldTheTpKToWrite() throws {
        let spec = try Deployment.inlineColocated("colocated:64:kimi-k2:ascend-910c:tp1")
        let engine = try #require(Self.refusal(spec))
        #expect(engine.contains("raise tpK in the spec to tp"), "\(engine)")
        let sweep = try #require(throws: ConfigError.self) { try Validation.sweep(deployment: spec) }
        #expect("\(sweep)" == engine)
        // `bench decode` and `bench prefill` said only their batch's HBM line, as if a smaller
        // batch could fit: they give the engine's too.
        let decode = try #require(throws: ConfigError.self) {
            try Bench.decode(deployment: spec, batchPerDie: 8, context: 1024, mtpAcceptance: 0.7)
        }
        #expect("\(decode)" == engine)
        let prefill = try #require(throws: ConfigError.self) {
            try Bench.prefill(deployment: spec, promptLen: 4096, tokensPerNPU: 16384)
        }
        #expect("\(prefill)" == engine)
        // A spec that holds KV but no sweep point keeps the bench's line (it names the point).
        #expect(try Validation.sweep(deployment: try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1")).count > 0)
    }

    /// The advice follows how the layout was written, not its name: the same layout as a file
    /// would give it (same name) is told about the TOML fields.
    @Test func theSameLayoutWrittenAsTOMLNamesTheTOMLFields() throws {
        var layout = try Deployment.inlineColocated("colocated:1:llama-3-70b:nvidia-a100:tp1")
        layout.isInlineColocatedSpec = false
        let message = try #require(Self.refusal(layout))
        #expect(message.hasSuffix("; give each instance more NPUs (npus, dp) or use a smaller model"))
        #expect(!message.contains("tpK"))
    }
}
