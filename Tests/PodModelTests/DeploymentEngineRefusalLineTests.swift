import PodModel
import ServingEngine
import Testing

/// The engine's refusals of a layout it cannot build carry the group they are about
/// (``ConfigError/place``), and ``Deployment/placed(_:source:text:)`` turns it into the line of
/// that group's header in the file, as the file's own refusals say it (`file:LINE:`). The engine
/// has no file: the command that read it does this (`xds run`: DeploymentFileEngineLineTests).
@Suite struct DeploymentEngineRefusalLineTests {
    static func refusal(_ text: String) throws -> (Deployment, ConfigError) {
        let d = try Deployment(toml: text, source: "x.toml")
        do {
            _ = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1, syntheticRate: 1))
        } catch let error as ConfigError {
            return (d, error)
        }
        Issue.record("the engine built \(text)")
        throw ConfigError("built")
    }

    @Test func noKVRoomIsPlacedAtItsGroup() throws {
        let text = "model = \"llama-3-70b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n[[prefill]]\nnpus = 4\ntp = 4\n\n"
            + "[[decode]]\nfirst_npu = 4\nnpus = 1\ntp = 1\n"
        let (d, error) = try Self.refusal(text)
        #expect(error.place == .group(1, nil))
        let placed = d.placed(error, source: "x.toml", text: text).description
        #expect(placed == "x.toml:9: " + error.description, "\(placed)")
        // Without the text (the file could not be read again) the file alone, as before.
        #expect(d.placed(error, source: "x.toml", text: nil).description == "x.toml: " + error.description)
    }

    @Test func missingCapacityIsPlacedAtTheFirstGroup() throws {
        let text = "model = \"llama-2-7b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n# decode only\n[[decode]]\nnpus = 1\n"
        let (d, error) = try Self.refusal(text)
        #expect(error.description == "deployment 'x.toml' needs prefill and decode capacity: it has no prefill or colocated group")
        #expect(d.placed(error, source: "x.toml", text: text).description == "x.toml:6: " + error.description)
        let prefillOnly = "model = \"llama-2-7b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n[[prefill]]\nnpus = 1\n"
        let (p, noDecode) = try Self.refusal(prefillOnly)
        #expect(p.placed(noDecode, source: "x.toml", text: prefillOnly).description
            == "x.toml:4: deployment 'x.toml' needs prefill and decode capacity: it has no decode or colocated group")
    }
}
