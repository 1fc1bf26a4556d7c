import Foundation
import PodModel
import Testing
import XDSTestSupport

/// Seeded, bounded fuzzing of the deployment readers: TOML files and inline
/// `colocated:N:MODEL:PROFILE:tpK` names give a deployment or a one-line ConfigError, never a
/// trap or a hang. `XDS_FUZZ_SECONDS=60 swift test --skip-build --filter DeploymentFuzz` soaks.
@Suite(.timeLimit(.minutes(2))) struct DeploymentFuzzTests {
    /// Inputs that once broke a reader, replayed first on every run.
    ///
    /// Known traps in PodModel (issue 10), found by this harness; both tests are disabled until
    /// they are fixed, because a trap ends the whole test process:
    /// - `[[decode]]\nnpus = 9223372036854775807\ncount = 9223372036854775807\n`: arithmetic
    ///   overflow at DeploymentValidation.swift:25;
    /// - `[[\u{5}step]]\n` (any raw control character in a key): TOMLKit's toml++ asserts and
    ///   aborts in parse_key (toml.hpp:15481) in debug builds; TOMLDocument.parse should refuse
    ///   raw control characters (TOML forbids them) before calling TOMLKit;
    /// - `colocated:9223372036854775807:llama-2-7b:nvidia-a100:tp1` and
    ///   `colocated:2:llama-2-7b:nvidia-a100:tp9223372036854775807`: arithmetic overflow at
    ///   DeploymentPresets.swift:74 and :72;
    /// - `[[prefill]]\nnpus = 4611686018427387904\ntp = 4\ndp = 4\n`: overflow at
    ///   DeploymentValidation.swift:25 with the default count;
    /// - `a = [}]`, `a = [[[\n\u{2028}`: toml++ asserts in parse_value (toml.hpp:14994);
    ///   `TOMLPreflight.problem(in:)` (ServingEngine) refuses all of the TOML cases above and
    ///   belongs in TOMLDocument.parse;
    /// - raw control characters echoed in messages: a deployment `name = "\u001B[2J"` and
    ///   inline names such as `colocated:\u{1B}[2J` or `superpod\u{4}`.
    static let tomlCorpus: [String] = [
        "[[decode]]\nnpus = 9223372036854775807\ncount = 9223372036854775807\n",
        "[[\u{5}step]]\n",
        "[[prefill]]\nnpus = 4611686018427387904\ntp = 4\ndp = 4\n",
        "a = [}]\n", "a = [[[\n\u{2028}",
        "nodes = 9223372036854775807\n",
        "nodes = -1\n",
        "[[prefill]]\nnpus = 16\ncount = 4611686018427387904\ntp = 4\ndp = 4\n",
        "name = \"\\u001B[2J\"\n",
        "nodes = nan\n",
        "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
    ]

    static let nameCorpus: [String] = [
        "colocated:9223372036854775807:llama-2-7b:nvidia-a100:tp1",
        "colocated:2:llama-2-7b:nvidia-a100:tp9223372036854775807",
        "colocated:-1:llama-2-7b:nvidia-a100:tp1",
        "colocated:99999999999999999999:llama-2-7b:nvidia-a100:tp1",
        "colocated:\u{1B}[2J", "superpod\u{4}",
    ]

    private func expectClean(_ report: FuzzReport) {
        for failure in report.failures.prefix(5) { Issue.record("\(failure)") }
        #expect(report.failures.isEmpty, "\(report.failures.count) failing inputs in \(report.target)")
    }

    @Test(.disabled("PodModel traps on overflowing counts and raw control characters (see tomlCorpus); enable once fixed"))
    func deploymentTOML() {
        let seeds = Deployment.presetNames.compactMap { Deployment.preset($0)?.toml() }
        let configuration = FuzzHarness.Configuration.fromEnvironment(maxBytes: 16_384)
        let report = FuzzHarness.run(target: "deployment-toml", seeds: seeds, corpus: Self.tomlCorpus,
                                     configuration: configuration) { bytes in
            do {
                let d = try Deployment(toml: String(decoding: bytes, as: UTF8.self), source: "fuzz.toml")
                _ = try? d.topology()
                return .value
            } catch let error as ConfigError {
                return .error(error.description)
            } catch {
                return .error("untyped error \(type(of: error))\n")
            }
        }
        expectClean(report)
    }

    @Test(.disabled("PodModel traps on overflowing colocated:N:…:tpK counts (see nameCorpus); enable once fixed"))
    func inlineDeploymentNames() {
        let seeds = Deployment.presetNames + [
            "colocated:2:llama-2-7b:nvidia-a100:tp1", "colocated:1:deepseek-r1:ascend-910c:tp8",
        ]
        let report = FuzzHarness.run(target: "deployment-name", seeds: seeds, corpus: Self.nameCorpus) { bytes in
            do {
                _ = try Deployment.resolve(String(decoding: bytes, as: UTF8.self))
                return .value
            } catch let error as ConfigError {
                return .error(error.description)
            } catch {
                return .error("untyped error \(type(of: error))\n")
            }
        }
        expectClean(report)
    }
}
