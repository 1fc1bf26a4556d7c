import Foundation
import PodModel
import Testing
import XDSTestSupport

/// Seeded, bounded fuzzing of the deployment readers: TOML files and inline
/// `colocated:N:MODEL:PROFILE:tpK` names give a deployment or a one-line ConfigError, never a
/// trap or a hang. `XDS_FUZZ_SECONDS=60 swift test --skip-build --filter DeploymentFuzz` soaks.
@Suite(.timeLimit(.minutes(10))) struct DeploymentFuzzTests {
    /// Inputs that once broke a reader (issue 10), replayed first on every run: overflowing
    /// counts (DeploymentValidation, inline `colocated:N:…:tpK`), raw control characters and
    /// what toml++ asserted on (`[[\u{5}step]]`, `a = [}]`, U+2028 in an array; now refused by
    /// TOMLPreflight inside TOMLDocument.parse), and raw escapes echoed in messages.
    static let tomlCorpus: [String] = [
        // The TOML library's message quoted raw input: a newline, a tab, a bidi override, a
        // 16 KB line (a 15 s soak, seed 4711).
        "nodes = n\na\n", "nodes = n\tan\n", "name = \"\\u\u{202E}B[2J\"\n", "name = \"\\u\u{2028}B[2J\"\n",
        "nodes = \"" + String(repeating: "1e1", count: 5_000) + "\n",
        String(repeating: "s", count: 16_000) + " = 1\n", "name = \"" + String(repeating: "21e1", count: 4_000) + "\"\n",
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

    @Test
    func deploymentTOML() {
        let seeds = Deployment.presetNames.compactMap { Deployment.preset($0)?.toml() }
        let configuration = FuzzHarness.Configuration.fromEnvironment(maxBytes: 16_384)
        let report = FuzzHarness.run(target: "deployment-toml", seeds: seeds, corpus: Self.tomlCorpus,
                                     configuration: configuration) { bytes in
            do {
                let d = try Deployment(toml: String(decoding: bytes, as: UTF8.self), source: "fuzz.toml")
                _ = try? d.topology()
                // What the CLI does next with a file: validate it, and with --model fit it to
                // every catalogue model and validate the fit (the fitter does arithmetic on the
                // file's numbers before validation sees them). Only a trap or hang fails here.
                try? d.validate()
                for model in ModelSpec.catalogue {
                    if let fit = try? d.fitted(to: model) { try? fit.deployment.validate() }
                }
                return .value
            } catch let error as ConfigError {
                return .error(error.description)
            } catch {
                return .error("untyped error \(type(of: error))\n")
            }
        }
        expectClean(report)
    }

    @Test
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
