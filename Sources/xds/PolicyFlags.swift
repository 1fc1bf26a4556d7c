import PodModel
import ServingEngine

/// The policy flags (`--je-routing`, `--dp-balancing`, `--eplb-planner`, `--recovery-policy`,
/// `--autoscale`)
/// and a deployment file's `[policies]` table: each name checked against its registry, one
/// line naming the flag or the file when it is not there. Command line > TOML > default.
extension CommonOptions {
    /// The names given on the command line, by slot key; each checked.
    func policyFlags() throws -> PolicyNames {
        var names = PolicyNames()
        let given: [(any PolicyCatalog, String?)] = [
            (Policies.routing, jeRouting), (Policies.decodeBalancing, dpBalancing),
            (Policies.eplbPlanner, eplbPlanner), (Policies.recovery, recoveryPolicy),
            (Policies.autoscaler, autoscale),
        ]
        for (catalog, name) in given {
            guard let name else { continue }
            guard let registered = catalog.canonicalName(name) else {
                throw ConfigError("\(catalog.slot.flag): unknown \(catalog.slot.title) policy \(InputEcho.quoted(name)); "
                    + "expected one of: \(catalog.names.joined(separator: ", "))")
            }
            names[catalog.slot.key] = registered
        }
        return names
    }

    /// The deployment with every slot's effective policy in its `[policies]` table (and
    /// `--prewarmed-spares`, checked, as its `[scaling] prewarmed_spare_tes`), as `--print-config`
    /// prints it.
    func deploymentWithPolicies() throws -> Deployment {
        let prewarmed = try prewarmedSpares.map { try FlagLimits.prewarmedSpares.int($0) }
        var d = try deployment.resolve(changesOfARefusedFit: true)
        try refuseExpertFlags(onDense: d.modelSpec())
        if let prewarmed = try checkedPrewarmedSpares(prewarmed, on: d) { d.prewarmedSpareTEs = prewarmed }
        var defaults = Policies.defaults
        // `[scaling] autoscale`, the autoscaler's older spelling, under `[policies] autoscaler`.
        if let name = d.autoscale { defaults[Policies.autoscaler.slot.key] = name }
        d.policies = defaults.overridden(by: d.policies).overridden(by: try policyFlags())
        // Now named in `[policies]`: kept in `[scaling]` too, `--autoscale off` over `autoscale =
        // "slo"` printed a file that disagreed with itself, which every run refused.
        d.autoscale = nil
        return d
    }
}
