import PodModel
import SimKit

/// Policies by name (``Policies``): chosen at build from the configuration (command line >
/// deployment `[policies]` > default) and replaced between events by `policy SLOT NAME`.
extension ServingEngine {
    static func makeJobExecutor(_ configuration: EngineConfiguration) throws -> JobExecutor {
        let names = configuration.effectivePolicies
        return JobExecutor(
            configuration: configuration,
            routing: try Policies.routing.make(names[Policies.routing.slot.key] ?? Policies.routing.defaultName),
            decodeBalancing: try Policies.decodeBalancing.make(
                names[Policies.decodeBalancing.slot.key] ?? Policies.decodeBalancing.defaultName))
    }

    /// The recovery policy and the EPLB planner (the JE's are made with it).
    func installPolicies() throws {
        let names = configuration.effectivePolicies
        faults.use(try Policies.recovery.make(names[Policies.recovery.slot.key] ?? Policies.recovery.defaultName))
        experts.use(try Policies.eplbPlanner.make(names[Policies.eplbPlanner.slot.key] ?? Policies.eplbPlanner.defaultName))
    }

    /// The policy running in each slot of ``Policies/reportedCatalogs``, by slot key (the
    /// report's and snapshot's `policies`; the autoscaler is ``autoscalerName``).
    public var policyNames: PolicyNames {
        var names = PolicyNames()
        names[Policies.routing.slot.key] = je.routing.name
        names[Policies.decodeBalancing.slot.key] = je.decodeBalancing.name
        names[Policies.eplbPlanner.slot.key] = experts.planner.name
        names[Policies.recovery.slot.key] = faults.policy.name
        return names
    }

    /// `policy SLOT NAME`: a fresh policy value in the slot from the next event on (a policy's
    /// state, such as a round-robin cursor, starts over). Returns the reply message, or nil and
    /// the refusal when the slot or name is unknown.
    func setPolicy(slot command: String, name: String) -> (accepted: Bool, message: String) {
        guard let catalog = Policies.catalog(command: command) else {
            return (false, "unknown policy slot \(InputEcho.quoted(command)); expected one of: "
                + Policies.catalogs.map(\.slot.command).joined(separator: ", "))
        }
        if catalog.slot == Policies.autoscaler.slot {
            // The same as `autoscale NAME`, which predates the slot.
            let reply = applyAutoscale(name)
            return (reply.accepted, reply.message)
        }
        let previous = policyNames[catalog.slot.key] ?? ""
        do {
            switch catalog.slot {
            case Policies.routing.slot: je.setRouting(try Policies.routing.make(name))
            case Policies.decodeBalancing.slot: je.setDecodeBalancing(try Policies.decodeBalancing.make(name))
            case Policies.recovery.slot: faults.use(try Policies.recovery.make(name))
            case Policies.eplbPlanner.slot:
                // A dense model has no experts to plan for: taken, it changed nothing and counted as
                // a command (`rebalance` is refused there, and `xds run --eplb-planner` too).
                guard experts.hasExperts else { return (false, "\(model.name) has no experts") }
                // Plans made by the old planner are forgotten; every controller takes the new one.
                experts.use(try Policies.eplbPlanner.make(name))
            default:
                return (false, "the engine has no \(catalog.slot.title) slot to set")
            }
        } catch {
            return (false, error.description)
        }
        // The same name again is not a no-op: the slot gets a fresh value, so say so.
        let restarted = previous == name ? " (the same policy, started afresh: its state, such as a round-robin cursor, is reset)" : ""
        return (true, "\(catalog.slot.title) policy: \(previous) → \(name)\(restarted)")
    }
}
