import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct PolicyTests {
    /// Every (slot key, policy name) pair in the registries.
    static let everyPolicy: [(String, String)] = Policies.catalogs.flatMap { c in c.names.map { (c.slot.key, $0) } }

    /// The toy pod (two prefill TEs, one decode TE of 32 groups) under a short synthetic load.
    static func engine(rate: Double = 20, limit: Int = 80, seed: UInt64 = 1,
                       configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: seed, syntheticRate: rate)
        config.eventCapacity = 100_000
        config.expertSkew = false
        config.faults.migrateDecodeOnDrain = true
        configure(&config)
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: rate)
        synthetic.maxRequests = limit
        synthetic.maxOutputTokens = 256
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: seed, configuration: synthetic))
    }

    @Test func registriesListTheirPoliciesAndDefaults() throws {
        #expect(Policies.routing.names == ["prefix-aware", "least-loaded", "round-robin"])
        #expect(Policies.routing.defaultName == "prefix-aware")
        #expect(Policies.decodeBalancing.names == ["kv-aware", "round-robin"])
        #expect(Policies.decodeBalancing.defaultName == "kv-aware")
        #expect(Policies.eplbPlanner.names == ["greedy", "deepseek"])
        #expect(Policies.eplbPlanner.defaultName == "greedy")
        #expect(Policies.recovery.names == ["fine-grained", "pd-failover", "restart-world"])
        #expect(Policies.recovery.defaultName == "fine-grained")
        #expect(Policies.autoscaler.names == ["off", "slo"])
        #expect(Policies.autoscaler.defaultName == "off")
        #expect(Policies.catalogs.map(\.slot.key) == ["je_routing", "dp_balancing", "eplb_planner", "recovery", "autoscaler"])
        #expect(Policies.catalogs.map(\.slot.command) == ["je", "dp-lb", "eplb", "recovery", "autoscaler"])
        #expect(Policies.reportedCatalogs.map(\.slot.key) == ["je_routing", "dp_balancing", "eplb_planner", "recovery"])
        for catalog in Policies.catalogs {
            #expect(catalog.names.contains(catalog.defaultName), "\(catalog.slot.key)")
            #expect(Set(catalog.names).count == catalog.names.count, "\(catalog.slot.key): names are unique")
            for name in catalog.names { #expect(!(catalog.summary(of: name) ?? "").isEmpty, "\(name) has a summary") }
        }
        #expect(Policies.defaults.byKey == ["je_routing": "prefix-aware", "dp_balancing": "kv-aware",
                                           "eplb_planner": "greedy", "recovery": "fine-grained", "autoscaler": "off"])
    }

    /// Both load-aware routers add a colocated TE's decode KV to its cost (``PrefillPool/decodeKVTokens(_:)``),
    /// so `--help`, `:policy` and README must say so for each; prefix-aware's summary said only
    /// "queued + uncached tokens" after it started counting the KV.
    @Test func routersThatCountAColocatedTEsDecodeKVSaySo() {
        for name in ["prefix-aware", "least-loaded"] {
            let summary = Policies.routing.summary(of: name) ?? ""
            #expect(summary.contains("colocated TE adds the KV its requests hold and reserve")
                        || summary.contains("if it also decodes (colocated), the KV its requests hold and reserve"),
                    "\(name): \(summary)")
        }
        #expect(Policies.help(Policies.routing).contains("queued + uncached tokens; a colocated TE adds the KV"))
    }

    @Test func madePoliciesAreValuesWithTheirNames() throws {
        func check(_ made: Any, _ name: String, _ madeName: String) {
            #expect(Mirror(reflecting: made).displayStyle == .struct, "\(name) is a value type (a fork copies it)")
            #expect(madeName == name)
        }
        for name in Policies.routing.names { let p = try Policies.routing.make(name); check(p, name, p.name) }
        for name in Policies.decodeBalancing.names { let p = try Policies.decodeBalancing.make(name); check(p, name, p.name) }
        for name in Policies.eplbPlanner.names { let p = try Policies.eplbPlanner.make(name); check(p, name, p.name) }
        for name in Policies.recovery.names { let p = try Policies.recovery.make(name); check(p, name, p.name) }
        for name in Policies.autoscaler.names { let p = try Policies.autoscaler.make(name); check(p, name, p.name) }
        // The context carries the configured parameters to the policies that take them.
        var parameters = SLOAutoscalerParameters()
        parameters.intervalSeconds = 7
        #expect(try Policies.autoscaler.make("slo", PolicyContext(autoscaler: parameters)).intervalSeconds == 7)
        #expect(try Policies.autoscaler.make("slo").intervalSeconds == SLOAutoscalerParameters().intervalSeconds)
        // A copy of a stateful policy keeps its own state.
        var a = RoundRobinRouting()
        a.cursor = 3
        var b = a
        b.cursor = 9
        #expect(a.cursor == 3)
    }

    @Test func unknownNamesAreRefusedWithOneLineListingTheValidOnes() throws {
        do {
            _ = try Policies.routing.make("random")
            Issue.record("an unknown name was made")
        } catch {
            #expect(error.description == "unknown JE routing policy 'random'; expected one of: prefix-aware, least-loaded, round-robin")
        }
        #expect(throws: ConfigError.self) { try Policies.decodeBalancing.make("") }
        // Through the configuration: one line naming the key; the engine is not built.
        do {
            _ = try Self.engine { $0.policies["dp_balancing"] = "fastest" }
            Issue.record("the engine accepted an unknown policy")
        } catch let error as ConfigError {
            #expect(error.description.contains("dp_balancing: unknown decode DP load balancing policy 'fastest'"))
            #expect(error.description.contains("kv-aware, round-robin"))
            #expect(!error.description.contains("\n"))
        }
        do {
            _ = try Self.engine { $0.policies["autoscale"] = "on" }
            Issue.record("the engine accepted an unknown slot")
        } catch let error as ConfigError {
            #expect(error.description.contains("unknown policy slot 'autoscale'; expected one of: je_routing"))
        }
    }

    /// The deployment file's reader refuses a `[policies]` key that is no slot by PodModel's
    /// list; it must be the engine's slots, in the engine's order (a slot added here only would
    /// be refused in every file).
    @Test func theDeploymentReadersSlotKeysAreTheEnginesSlots() {
        #expect(PolicyNames.slotKeys == Policies.catalogs.map(\.slot.key))
    }

    /// Each policy in its slot, the others at their defaults, on the toy pod to the end with a
    /// node drained mid-run (its decode requests migrate: the balancing policy picks targets).
    @Test(arguments: everyPolicy)
    func everyPolicyRunsToCompletionAndLosesNothing(key: String, name: String) throws {
        let engine = try Self.engine(rate: 25, limit: 120) { $0.policies[key] = name }
        // The report names every slot's policy, the autoscaler's too (it was left out, so a
        // report could not tell an `slo` run from an `off` one).
        #expect(engine.report().policies?[key] == name)
        engine.run(until: 3)
        #expect(engine.apply(.drain(node: 2)).accepted)
        engine.run(until: 6)
        #expect(engine.apply(.undrain(node: 2)).accepted)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine, "\(key)=\(name)")
        FaultTests.expectEmpty(engine, "\(key)=\(name)")
        let report = engine.report()
        #expect(report.requests.arrived == 120)
        #expect(report.requests.completed == 120, "\(key)=\(name): \(report.requests)")
        #expect(report.policies == Policies.defaults.overridden(by: PolicyNames([key: name])))
    }

    @Test func configurationOverridesTheDeploymentWhichOverridesTheDefault() throws {
        var deployment = TestDeployments.toyPod
        deployment.policies["je_routing"] = "least-loaded"
        deployment.policies["eplb_planner"] = "deepseek"
        var config = EngineConfiguration(deployment: deployment)
        config.policies["je_routing"] = "round-robin"
        #expect(config.effectivePolicies.byKey == ["je_routing": "round-robin", "dp_balancing": "kv-aware",
                                                   "eplb_planner": "deepseek", "recovery": "fine-grained", "autoscaler": "off"])
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload([]))
        var reported = config.effectivePolicies
        reported["autoscaler"] = nil
        #expect(engine.snapshot().policies == reported)
        #expect(engine.experts.controllers.allSatisfy { $0?.policy.name ?? "deepseek" == "deepseek" })
        // A deployment file's bad name is refused at build, naming the table and key.
        deployment.policies["recovery"] = "pray"
        #expect(throws: ConfigError.self) { try ServingEngine(configuration: EngineConfiguration(deployment: deployment),
                                                              workload: FixedWorkload([])) }
        #expect(EngineConfiguration(deployment: deployment).validationProblem()?
            .contains("[policies] recovery: unknown recovery policy 'pray'") == true)
    }

    /// The autoscaler slot and its older spellings: `policies` > `scaling.autoscale` >
    /// `[policies] autoscaler` > `[scaling] autoscale` > off; a bad name in any is refused at build.
    @Test func autoscalerSlotOrdersItsSpellings() throws {
        var deployment = TestDeployments.toyPod
        #expect(EngineConfiguration(deployment: deployment).autoscalerName == "off")
        deployment.autoscale = "slo"
        #expect(EngineConfiguration(deployment: deployment).autoscalerName == "slo")
        deployment.policies["autoscaler"] = "off"
        var config = EngineConfiguration(deployment: deployment)
        #expect(config.autoscalerName == "off")
        config.scaling.autoscale = "slo"
        #expect(config.autoscalerName == "slo")
        config.policies["autoscaler"] = "off"
        #expect(config.autoscalerName == "off")
        config.policies["autoscaler"] = "slo"
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload([]))
        #expect(engine.autoscalerName == "slo")
        config.policies["autoscaler"] = "fast"
        #expect(throws: ConfigError.self) { try ServingEngine(configuration: config, workload: FixedWorkload([])) }
    }

    /// A policy name given by several faces is matched the same way by all of them: in any
    /// ASCII case (`[scaling] autoscale = "SLO"` and `--autoscale SLO` were refused while the
    /// command `autoscale SLO` was taken), and runs and is reported under its registered name.
    @Test func everyFaceMatchesNamesInAnyASCIICaseAndKeepsTheRegisteredName() throws {
        for catalog in Policies.catalogs {
            for name in catalog.names {
                // Registered names are lower-case ASCII, so folding the case loses nothing.
                #expect(name.utf8.allSatisfy { $0 < 128 } && PolicyNames.folded(name) == name, "\(name)")
                #expect(catalog.canonicalName(name.uppercased()) == name)
                #expect(catalog.canonicalName(name.prefix(1).uppercased() + name.dropFirst()) == name)
            }
            #expect(catalog.canonicalName("no-such-policy") == nil)
        }
        // ASCII only: the Kelvin sign is not a K.
        #expect(Policies.decodeBalancing.canonicalName("\u{212A}V-AWARE") == nil)
        #expect(try Policies.routing.make("Round-Robin").name == "round-robin")

        // The engine's configuration (the library face, and where flags and files end up).
        var deployment = TestDeployments.toyPod
        deployment.policies["dp_balancing"] = "ROUND-ROBIN"
        var config = EngineConfiguration(deployment: deployment)
        config.policies["je_routing"] = "Least-Loaded"
        config.scaling.autoscale = "SLO"
        #expect(config.validationProblem() == nil && config.scaling.validationProblem() == nil)
        #expect(config.effectivePolicies.byKey == ["je_routing": "least-loaded", "dp_balancing": "round-robin",
                                                   "eplb_planner": "greedy", "recovery": "fine-grained", "autoscaler": "slo"])
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload([]))
        #expect(engine.policyNames.byKey == ["je_routing": "least-loaded", "dp_balancing": "round-robin",
                                             "eplb_planner": "greedy", "recovery": "fine-grained"])
        #expect(engine.autoscalerName == "slo")
        #expect(Policies.problem(in: PolicyNames(["recovery": "PD-Failover"])) == nil)
        #expect(Policies.canonical(PolicyNames(["recovery": "PD-Failover", "je_routing": "nope"])).byKey
            == ["recovery": "pd-failover", "je_routing": "nope"], "unknown names are left for problem(in:) to name")

        // A deployment file: `[scaling] autoscale` kept as registered, and agreeing with a
        // `[policies] autoscaler` written in another case.
        let toml = TestDeployments.toyPod.toml() + "\n[scaling]\nautoscale = \"SLO\"\n\n[policies]\nautoscaler = \"Slo\"\n"
        let file = try Deployment(toml: toml, source: "toy.toml")
        #expect(file.autoscale == "slo")
        #expect(EngineConfiguration(deployment: file).autoscalerName == "slo")
        let clash = toml.replacingOccurrences(of: "autoscaler = \"Slo\"", with: "autoscaler = \"off\"")
        let error = #expect(throws: ConfigError.self) { try Deployment(toml: clash, source: "toy.toml") }
        let line = try #require(clash.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("autoscale =") }) + 1
        #expect(error?.description == "toy.toml:\(line): [scaling]: autoscale 'SLO' disagrees with [policies] autoscaler 'off'; "
            + "name the autoscaler in one place")

        // The command language took any case already, and still gives the registered name.
        #expect(try OperatorCommand.parse("autoscale SLO").get() == .autoscale("slo"))
        #expect(try OperatorCommand.parse("policy autoscaler Slo").get() == .policy(slot: "autoscaler", name: "slo"))
        #expect(try OperatorCommand.parse("policy recovery PD-FAILOVER").get() == .policy(slot: "recovery", name: "pd-failover"))
    }

    @Test func deploymentTOMLCarriesPolicyNames() throws {
        let text = TestDeployments.toyPod.toml() + "\n[policies]\nje_routing = \"round-robin\"\ndp_balancing = \"round-robin\"\n"
        let d = try Deployment(toml: text, source: "toy.toml")
        #expect(d.policies.byKey == ["je_routing": "round-robin", "dp_balancing": "round-robin"])
        #expect(try Deployment(toml: d.toml(), source: "again.toml") == d, "printed and read back")
        #expect(d.toml().contains("[policies]\ndp_balancing = \"round-robin\"\nje_routing = \"round-robin\"\n"))
        #expect(!TestDeployments.toyPod.toml().contains("[policies]"))
        #expect(throws: ConfigError.self) {
            try Deployment(toml: TestDeployments.toyPod.toml() + "\n[policies]\nje_routing = 3\n", source: "bad.toml")
        }
    }

    @Test func policyCommandParsesAndRefusesBadWordsInOneLine() throws {
        #expect(try OperatorCommand.parse("policy je round-robin").get() == .policy(slot: "je", name: "round-robin"))
        #expect(try OperatorCommand.parse("Policy DP-LB Round-Robin").get() == .policy(slot: "dp-lb", name: "round-robin"))
        #expect(OperatorCommand.policy(slot: "eplb", name: "deepseek").description == "policy eplb deepseek")
        func message(_ line: String) -> String? {
            if case .failure(let e) = OperatorCommand.parse(line) { return e.message }
            return nil
        }
        #expect(message("policy") == "expected a policy slot (je, dp-lb, eplb, recovery, autoscaler) after 'policy'")
        #expect(message("policy autoscale off") == "unknown policy slot 'autoscale'; expected one of: je, dp-lb, eplb, recovery, autoscaler")
        #expect(try OperatorCommand.parse("policy autoscaler slo").get() == .policy(slot: "autoscaler", name: "slo"))
        #expect(message("policy je") == "expected a JE routing policy (prefix-aware, least-loaded, round-robin) after 'policy je'")
        #expect(message("policy je random") == "unknown JE routing policy 'random'; expected one of: prefix-aware, least-loaded, round-robin")
        #expect(message("policy je round-robin now")?.contains("expected end of command") == true)
        #expect(OperatorCommand.completions(for: "policy d") == ["policy dp-lb ", "policy dp-lb kv-aware", "policy dp-lb round-robin"])
        #expect(Policies.completionWords(after: ["policy"]) == ["je", "dp-lb", "eplb", "recovery", "autoscaler"])
        #expect(Policies.completionWords(after: ["policy", "autoscaler"]) == ["off", "slo"])
        #expect(Policies.completionWords(after: ["policy", "eplb"]) == ["greedy", "deepseek"])
        #expect(Policies.completionWords(after: ["drain"]) == nil)
    }

    @Test func scenariosCarryPolicyCommands() throws {
        let text = "name = \"p\"\n[[step]]\nat = \"5s\"\ncommand = \"policy dp-lb round-robin\"\n"
        let scenario = try Scenario(toml: text, source: "p.toml")
        #expect(scenario.steps.map(\.command) == [.policy(slot: "dp-lb", name: "round-robin")])
        #expect(throws: ConfigError.self) {
            try Scenario(toml: text.replacingOccurrences(of: "round-robin", with: "fastest"), source: "p.toml")
        }
    }

    @Test func policyCommandIsAppliedLoggedAndCounted() throws {
        let engine = try Self.engine()
        engine.run(until: 1)
        let before = engine.report().commands
        let reply = engine.apply(.policy(slot: "je", name: "least-loaded"))
        #expect(reply.accepted, "\(reply.message)")
        #expect(reply.message == "JE routing policy: prefix-aware → least-loaded")
        #expect(engine.report().commands == before + 1)
        #expect(engine.report().policies?["je_routing"] == "least-loaded")
        #expect(engine.recentEvents().last?.message == "policy je least-loaded: JE routing policy: prefix-aware → least-loaded")
        // The same name again restarts the policy, and the reply says so rather than "X → X".
        #expect(engine.apply(.policy(slot: "je", name: "least-loaded")).message
            == "JE routing policy: least-loaded → least-loaded (the same policy, started afresh: its state, such as a round-robin cursor, is reset)")
        #expect(engine.apply(.policy(slot: "eplb", name: "deepseek")).accepted)
        #expect(engine.experts.controllers.allSatisfy { $0 == nil || $0!.policy.name == "deepseek" })
        #expect(engine.apply(.policy(slot: "recovery", name: "restart-world")).accepted)
        #expect(engine.report().recoveryPolicy == "restart-world")
        // Refused (a line from outside the parser): nothing changes, nothing counted, one event.
        let refused = engine.apply(.policy(slot: "dp-lb", name: "fastest"))
        #expect(!refused.accepted)
        #expect(refused.message == "unknown decode DP load balancing policy 'fastest'; expected one of: kv-aware, round-robin")
        #expect(engine.report().policies?["dp_balancing"] == "kv-aware")
        #expect(engine.report().commands == before + 4)
        #expect(!engine.apply(.policy(slot: "nope", name: "x")).accepted)
        // The autoscaler slot is `autoscale NAME` by another spelling.
        #expect(engine.apply(.policy(slot: "autoscaler", name: "slo")).message.hasPrefix("autoscaler slo"))
        #expect(engine.autoscalerName == "slo")
        #expect(engine.report().policies?["autoscaler"] == "slo", "a switch at run time shows in the report")
        #expect(!engine.apply(.policy(slot: "autoscaler", name: "slo")).accepted, "already slo")
        #expect(engine.apply(.autoscale("off")).accepted)
        #expect(engine.autoscalerName == "off")
        #expect(engine.report().policies?["autoscaler"] == "off")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
    }

    /// `policy eplb deepseek` on a dense model (a scenario step, the console, /admin/commands) was
    /// accepted and counted while changing nothing; `rebalance` there is refused. Refused alike.
    @Test func anEPLBPlannerIsRefusedOnADenseModel() throws {
        var config = EngineConfiguration(deployment: try Deployment.inlineColocated("colocated:2:llama-2-7b:nvidia-a100:tp1"),
                                         seed: 1, syntheticRate: 5)
        config.eventCapacity = 100_000
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 1)
        let before = engine.report().commands
        let planner = engine.report().policies?["eplb_planner"]
        let reply = engine.apply(.policy(slot: "eplb", name: "deepseek"))
        #expect(!reply.accepted && reply.message == "llama-2-7b has no experts", "\(reply.message)")
        #expect(engine.apply(.rebalance).message == reply.message)
        #expect(engine.report().commands == before && engine.report().policies?["eplb_planner"] == planner)
        // The other slots still apply on a dense model.
        #expect(engine.apply(.policy(slot: "je", name: "round-robin")).accepted)
    }

    /// Prefill TEs a run placed its requests on, arrival by arrival.
    static func placements(_ engine: ServingEngine, until end: SimTime) -> [Int: Int] {
        var seen: [Int: Int] = [:]
        while engine.now < end, engine.step() {
            for (id, r) in engine.requests where seen[id] == nil { seen[id] = r.prefillInstance }
        }
        return seen
    }

    @Test func roundRobinRoutingSpreadsWhatPrefixAwareKeepsTogether() throws {
        // Prefix-aware places each prompt where it would finish soonest (queued tokens, cached
        // prefix); round-robin alternates between the toy pod's two prefill TEs whatever they hold.
        let aware = try Self.engine(rate: 20, limit: 60)
        let awareCounts = Dictionary(grouping: Self.placements(aware, until: 5).values, by: { $0 }).mapValues(\.count)
        let turns = try Self.engine(rate: 20, limit: 60)
        #expect(turns.apply(.policy(slot: "je", name: "round-robin")).accepted)
        let turnCounts = Dictionary(grouping: Self.placements(turns, until: 5).values, by: { $0 }).mapValues(\.count)
        let total = turnCounts.values.reduce(0, +)
        #expect(total > 20)
        #expect(turnCounts.count == 2 && turnCounts.values.allSatisfy { abs($0 * 2 - total) <= 2 }, "\(turnCounts)")
        #expect(awareCounts != turnCounts, "\(awareCounts) vs \(turnCounts)")
        #expect(aware.report() != turns.report())
    }

    /// No TE waits for long prompts that do not come: on colocated replicas every one serves
    /// (one was kept for long prompts, so `colocated:2` ran on one replica and `colocated:4` on
    /// three), and long prompts get their own TEs only as their share of tokens fills them.
    @Test(arguments: [2, 4])
    func everyReplicaServesWhenNoPromptIsLong(replicas: Int) throws {
        let deployment = try Deployment.resolve("colocated:\(replicas):llama-2-7b:nvidia-a100:tp1")
        let engine = try ServingEngineTests.synthetic(deployment, rate: 25, limit: 200)
        let placed = Self.placements(engine, until: 30)
        #expect(placed.count > 100)
        #expect(Set(placed.values) == Set(0..<replicas), "\(Dictionary(grouping: placed.values) { $0 }.mapValues(\.count))")
    }

    @Test func longPromptsGetTheirOwnTEsInProportion() {
        var policy = PrefixAwareRouting()
        // A long prompt's side follows the long tokens' recent share: with none, no side.
        policy.recentPromptTokens = (long: 0, short: 1e6)
        #expect(policy.longSideCount(of: 4) == 0)
        policy.recentPromptTokens = (long: 1e5, short: 1e6)  // 9%: under half of one of four TEs
        #expect(policy.longSideCount(of: 4) == 0)
        policy.recentPromptTokens = (long: 1e6, short: 1e6)  // half the tokens: half the TEs
        #expect(policy.longSideCount(of: 4) == 2)
        policy.recentPromptTokens = (long: 1e9, short: 1)  // never every TE: short prompts keep one
        #expect(policy.longSideCount(of: 4) == 3)
        #expect(policy.longSideCount(of: 1) == 0)
    }

    /// The long side's count rounds the share's TEs half away from zero, as `rounded()` does, at
    /// and around the halves (it is rounded in place, without the library call).
    @Test func longSideCountRoundsHalvesAwayFromZero() {
        var policy = PrefixAwareRouting()
        let tes = 8
        for long in [0.0, 1, 2, 3, 5, 7, 8, 11, 13, 1e6] {
            for short in [0.0, 1, 3, 5, 15, 16, 17, 1e9] {
                policy.recentPromptTokens = (long: long, short: short)
                let share = long / max(1, long + short)
                let expected = min(tes - 1, Int((share * Double(tes)).rounded()))
                #expect(policy.longSideCount(of: tes) == expected, "long \(long), short \(short)")
            }
        }
        // 1/16 of 8 TEs is exactly half of one (up), and just under a half stays down.
        policy.recentPromptTokens = (long: 1, short: 15)
        #expect(policy.longSideCount(of: 8) == 1)
        policy.recentPromptTokens = (long: 0.49999999999999994 / 8, short: 0)  // a share of that, under 1 token
        #expect(policy.longSideCount(of: 8) == 0)
    }

    @Test func roundRobinBalancingCyclesTheEligibleGroups() throws {
        let engine = try Self.engine(limit: 0) { $0.policies["dp_balancing"] = "round-robin" }
        let d = try FaultTests.decodeIndex(engine)
        let groups = engine.instances[d].groupCount
        var picks: [Int] = []
        for _ in 0..<(groups + 2) { picks.append(try #require(engine.pickDecodeGroup(d))) }
        #expect(picks == Array(0..<groups) + [0, 1])
        // kv-aware with empty groups always takes the first.
        let aware = try Self.engine(limit: 0)
        #expect(aware.pickDecodeGroup(d) == 0 && aware.pickDecodeGroup(d) == 0)
    }
}
