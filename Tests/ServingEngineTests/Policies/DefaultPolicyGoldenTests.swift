import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// With the default policies the engine reports exactly what it did before policies had names:
/// the fixtures are `xds run … --json` from main at 33975e4 (the release build of the lead's
/// reference, /work/ref/xds-main), with `wall_seconds` zeroed; only the new `policies` key is
/// left out here. The toy pod was given as a TOML file of ``TestDeployments/toyPod``.
@Suite(.timeLimit(.minutes(10))) struct DefaultPolicyGoldenTests {
    /// `xds run --deployment toy.toml --duration 20s --rate 20 --seed 1 --json`
    static let toyPod = #"""
{
  "commands" : 0,
  "deployment" : "toy-pod",
  "events" : 1514,
  "experts" : {
    "imbalance" : 1.2512752192400978,
    "rebalances" : 0
  },
  "fault_details" : [

  ],
  "faults" : {
    "detected" : 0,
    "injected" : 0,
    "recovered" : 0
  },
  "hardware" : "ascend-910c",
  "kv" : {
    "peak_usage" : 0.049325292111673975,
    "prefix_hit_rate" : 0.33252198821454554
  },
  "latency_ms" : {
    "e2e" : {
      "mean" : 6793.7522366863905,
      "p50" : 6193.151,
      "p90" : 11853.823,
      "p99" : 16793.599
    },
    "tpot" : {
      "mean" : 20.57642603550296,
      "p50" : 20.655,
      "p90" : 21.199,
      "p99" : 21.343
    },
    "ttft" : {
      "mean" : 599.0038343195267,
      "p50" : 562.687,
      "p90" : 988.159,
      "p99" : 1782.783
    }
  },
  "model" : "deepseek-r1",
  "recovery_policy" : "fine-grained",
  "requests" : {
    "arrived" : 403,
    "completed" : 169,
    "failed" : 0,
    "failure_reasons" : {

    },
    "in_flight" : 234,
    "in_flight_walked" : 234,
    "rejected" : 0,
    "rejection_reasons" : {

    }
  },
  "seed" : 1,
  "sim_seconds" : 20,
  "slo" : {
    "attainment" : 1,
    "tpot_ms" : 35,
    "ttft_ms" : 2000
  },
  "throughput" : {
    "output_tokens_per_s" : 2549.85,
    "output_tokens_per_s_per_npu" : 159.365625,
    "prefill_tokens_per_s_per_npu" : 2737.984375
  },
  "tokens" : {
    "generated" : 50997,
    "prompt" : 1328597
  },
  "wall_seconds" : 0
}
"""#

    /// `xds run --deployment colocated:2:llama-2-7b:nvidia-a100:tp1 --duration 30s --rate 6 --seed 1 --json`
    static let colocated = #"""
{
  "commands" : 0,
  "deployment" : "colocated:2:llama-2-7b:nvidia-a100:tp1",
  "events" : 1777,
  "experts" : {
    "imbalance" : 1,
    "rebalances" : 0
  },
  "fault_details" : [

  ],
  "faults" : {
    "detected" : 0,
    "injected" : 0,
    "recovered" : 0
  },
  "hardware" : "nvidia-a100",
  "kv" : {
    "peak_usage" : 0.7524234876720184,
    "prefix_hit_rate" : 0.20415017959782253
  },
  "latency_ms" : {
    "e2e" : {
      "mean" : 14239.248,
      "p50" : 13582.335,
      "p90" : 22233.087,
      "p99" : 26696.528
    },
    "tpot" : {
      "mean" : 49.928125,
      "p50" : 50.847,
      "p90" : 58.623,
      "p99" : 75.748
    },
    "ttft" : {
      "mean" : 1627.3935,
      "p50" : 822.783,
      "p90" : 1545.215,
      "p99" : 16621.108
    }
  },
  "model" : "llama-2-7b",
  "recovery_policy" : "fine-grained",
  "requests" : {
    "arrived" : 179,
    "completed" : 32,
    "failed" : 0,
    "failure_reasons" : {

    },
    "in_flight" : 147,
    "in_flight_walked" : 147,
    "rejected" : 0,
    "rejection_reasons" : {

    }
  },
  "seed" : 1,
  "sim_seconds" : 30,
  "slo" : {
    "attainment" : 0.0625,
    "tpot_ms" : 35,
    "ttft_ms" : 2000
  },
  "throughput" : {
    "output_tokens_per_s" : 277.6,
    "output_tokens_per_s_per_npu" : 138.8,
    "prefill_tokens_per_s_per_npu" : 3925.383333333333
  },
  "tokens" : {
    "generated" : 8328,
    "prompt" : 588770
  },
  "wall_seconds" : 0
}
"""#

    /// The report as `xds run` writes it, driven as its run loop drives it (one-second slices).
    static func report(_ deployment: Deployment, rate: Double, seconds: Int) throws -> (RunReport, String) {
        var config = EngineConfiguration(deployment: deployment, seed: 1)
        config.syntheticRate = rate
        let engine = try ServingEngine(configuration: config)
        for t in 1...seconds { engine.run(until: SimTime(t)) }
        var report = engine.report()
        let withPolicies = report
        report.policies = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (withPolicies, String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    @Test func defaultPoliciesReportAsBefore() throws {
        let (toy, toyText) = try Self.report(TestDeployments.toyPod, rate: 20, seconds: 20)
        #expect(toyText == Self.toyPod)
        #expect(toy.policies == Policies.defaults)
        let (_, coloText) = try Self.report(try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1"), rate: 6, seconds: 30)
        #expect(coloText == Self.colocated)
    }
}
