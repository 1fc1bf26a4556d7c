import Testing
@testable import PodModel

/// A deployment's range checks and the engine's refusals carry where their value sits in one
/// way: a ``ConfigError`` with its ``ConfigError/place``. The checks threw a type of their own
/// (message + place) that the file reader turned into `file:LINE:` with a formatting of its own
/// beside ``Deployment/placed(_:source:text:)``, which formats the engine's refusals.
@Suite struct DeploymentRefusalPlaceTests {
    /// The range checks throw a ``ConfigError`` naming the key they are about.
    @Test func aCheckNamesItsKey() throws {
        var d = try Deployment(toml: "model = \"llama-2-7b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n[[colocated]]\nnpus = 1\ntp = 1\n",
                               source: "x.toml")
        d.groups[0].tp = 3
        let error = try #require(throws: ConfigError.self) { try d.check() }
        #expect(error.place == .group(0, "tp"), "\(String(describing: error.place))")
        d.nodes = 0
        let nodes = try #require(throws: ConfigError.self) { try d.check() }
        #expect(nodes.place == .top("nodes"))
        // `validate()` (presets, inline specs, fitted layouts: no file to name) says the message alone.
        let plain = try #require(throws: ConfigError.self) { try d.validate() }
        #expect(plain.description == nodes.description && plain.place == nil)
    }

    /// A file's refusal from the checks reads as `placed` writes the engine's.
    @Test func theFileReaderPlacesAsTheEngineRefusalsArePlaced() throws {
        let text = "model = \"llama-2-7b\"\nhardware = \"nvidia-a100\"\nnodes = 1\n\n[[colocated]]\nnpus = 1\ntp = 2\n"
        let refused = try #require(throws: ConfigError.self) { try Deployment(toml: text, source: "x.toml") }
        var d = try Deployment(toml: text.replacingOccurrences(of: "tp = 2", with: "tp = 1"), source: "x.toml")
        d.groups[0].tp = 2
        let error = try #require(throws: ConfigError.self) { try d.check() }
        #expect(refused.description == d.placed(error, source: "x.toml", text: text).description)
        #expect(refused.description.hasPrefix("x.toml:7: "), "\(refused.description)")
    }
}
