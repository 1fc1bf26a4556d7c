import PodModel

/// A place in the engine where a policy is chosen by name: the JE's routing, decode DP load
/// balancing, the EPLB planner, fault recovery, the autoscaler. Each slot has one spelling per face.
public struct PolicySlot: Sendable, Hashable, CustomStringConvertible {
    /// The word of the `policy SLOT NAME` command (`je`, `dp-lb`, `eplb`, `recovery`, `autoscaler`).
    public let command: String
    /// The key in a deployment's `[policies]` table, the report and the snapshot (`je_routing`).
    public let key: String
    /// The command-line flag (`--je-routing`).
    public let flag: String
    /// What the slot decides, for help text and messages ("JE routing").
    public let title: String

    public var description: String { title }
}

/// What a factory may use to make a policy: the settings a policy is parameterised by.
/// Policies that need none ignore it.
public struct PolicyContext: Sendable {
    /// Parameters of the `slo` autoscaler (``ScalingSettings/slo``).
    public var autoscaler = SLOAutoscalerParameters()

    public init(autoscaler: SLOAutoscalerParameters = .init()) { self.autoscaler = autoscaler }
}

/// What a face needs to list a slot's policies without making one (help text, completion).
public protocol PolicyCatalog: Sendable {
    var slot: PolicySlot { get }
    var defaultName: String { get }
    var names: [String] { get }
    func summary(of name: String) -> String?
}

extension PolicyCatalog {
    /// The registered spelling of `name`, matched in any ASCII case (``PolicyNames/folded(_:)``),
    /// or nil when the slot has no such policy. Every face looks names up here (flags, a
    /// deployment's `[policies]`, the engine's configuration and the `policy` and `autoscale`
    /// commands), so `SLO` is refused or accepted alike everywhere and reports, snapshots and
    /// messages always carry the registered name.
    public func canonicalName(_ name: String) -> String? {
        let folded = PolicyNames.folded(name)
        return names.first { $0 == folded }
    }
}

/// The policies of one slot by name, each with a one-line summary and a factory making a fresh
/// value. Registries are immutable `static let`s (``Policies``): nothing registers at run time.
///
/// ```swift
/// let routing = try Policies.routing.make("round-robin")     // any RequestRoutingPolicy
/// Policies.routing.names                                     // ["prefix-aware", "least-loaded", "round-robin"]
/// ```
public struct PolicyRegistry<Policy>: PolicyCatalog {
    public struct Entry: Sendable {
        public let name: String
        public let summary: String
        let make: @Sendable (PolicyContext) -> Policy

        public init(_ name: String, _ summary: String, make: @escaping @Sendable () -> Policy) {
            self.name = name
            self.summary = summary
            self.make = { _ in make() }
        }

        /// A policy made from the settings in the context (the `slo` autoscaler's parameters).
        public init(_ name: String, _ summary: String, context make: @escaping @Sendable (PolicyContext) -> Policy) {
            self.name = name
            self.summary = summary
            self.make = make
        }
    }

    public let slot: PolicySlot
    public let defaultName: String
    public let entries: [Entry]

    public init(slot: PolicySlot, defaultName: String, entries: [Entry]) {
        self.slot = slot
        self.defaultName = defaultName
        self.entries = entries
    }

    public var names: [String] { entries.map(\.name) }

    public func summary(of name: String) -> String? { entries.first { $0.name == name }?.summary }

    /// A fresh policy value, or one line naming the slot, the bad name and the valid ones.
    public func make(_ name: String, _ context: PolicyContext = .init()) throws(ConfigError) -> Policy {
        guard let registered = canonicalName(name), let entry = entries.first(where: { $0.name == registered }) else {
            throw unknown(name)
        }
        return entry.make(context)
    }

    public func makeDefault(_ context: PolicyContext = .init()) -> Policy {
        // The default is one of the entries by construction (PolicyTests checks every registry).
        (entries.first { $0.name == defaultName } ?? entries[0]).make(context)
    }

    func unknown(_ name: String) -> ConfigError {
        ConfigError("unknown \(slot.title) policy \(InputEcho.quoted(name)); expected one of: \(names.joined(separator: ", "))")
    }
}

/// Every policy slot's registry. Adding a slot is one `static let` here (and its entry in
/// ``catalogs``), plus where the engine applies it.
public enum Policies {
    public static let routing = PolicyRegistry<any RequestRoutingPolicy>(
        slot: PolicySlot(command: "je", key: "je_routing", flag: "--je-routing", title: "JE routing"),
        defaultName: "prefix-aware",
        entries: [
            .init("prefix-aware", "long/short prompt split, then the TE that finishes soonest (queued + uncached tokens; a colocated TE adds the KV its requests hold and reserve)") {
                PrefixAwareRouting()
            },
            .init("least-loaded", "the TE with the fewest queued prompt tokens plus, if it also decodes (colocated), the KV its requests hold and reserve (lowest id on ties)") { LeastLoadedRouting() },
            .init("round-robin", "prefill TEs in turn") { RoundRobinRouting() },
        ])

    public static let decodeBalancing = PolicyRegistry<any DecodeBalancingPolicy>(
        slot: PolicySlot(command: "dp-lb", key: "dp_balancing", flag: "--dp-balancing", title: "decode DP load balancing"),
        defaultName: "kv-aware",
        entries: [
            .init("kv-aware", "skip full groups, then the lowest KV usage including reserved output space") {
                KVAwareBalancing()
            },
            .init("round-robin", "DP groups with room in turn") { RoundRobinBalancing() },
        ])

    public static let eplbPlanner = PolicyRegistry<any EPLBPlanner>(
        slot: PolicySlot(command: "eplb", key: "eplb_planner", flag: "--eplb-planner", title: "EPLB planner"),
        defaultName: "greedy",
        entries: [
            .init("greedy", "replicas to the hottest expert per replica, each on the least-loaded die") {
                GreedyEPLBPlanner()
            },
            .init("deepseek", "DeepSeek EPLB: replica counts first, then balanced packing") { DeepSeekEPLBPlanner() },
        ])

    public static let recovery = PolicyRegistry<any RecoveryPolicy>(
        slot: PolicySlot(command: "recovery", key: "recovery", flag: "--recovery-policy", title: "recovery"),
        defaultName: "fine-grained",
        entries: RecoveryPolicies.entries)

    /// The autoscaler (system.md §4 "Fast scaling"). Its flag and its older spellings
    /// (`autoscale NAME`, `[scaling] autoscale`) predate the slot and stay; `policy autoscaler
    /// NAME` and `[policies] autoscaler` name the same thing.
    public static let autoscaler = PolicyRegistry<any Autoscaler>(
        slot: PolicySlot(command: "autoscaler", key: "autoscaler", flag: "--autoscale", title: "autoscaler"),
        defaultName: "off",
        entries: [
            .init("off", "the layout changes only by command (scale, drain)") { OffAutoscaler() },
            .init("slo", "scales prefill when it is the bottleneck and latency is at risk, decode on KV headroom and TPOT, "
                + "with hysteresis and cooldowns", context: { SLOAutoscaler(parameters: $0.autoscaler) }),
        ])

    /// Every slot, in the order help text, the `policy` command and completion list them.
    public static let catalogs: [any PolicyCatalog] = [routing, decodeBalancing, eplbPlanner, recovery, autoscaler]

    /// The slots the snapshot's `policies` names (the report's adds `autoscaler`). The snapshot
    /// reports the autoscaler on its own (its `autoscaler`).
    public static let reportedCatalogs: [any PolicyCatalog] = [routing, decodeBalancing, eplbPlanner, recovery]

    /// The slot a `policy` command names (`je`, `dp-lb`, …).
    public static func catalog(command: String) -> (any PolicyCatalog)? {
        catalogs.first { $0.slot.command == command }
    }

    /// Every slot's default name.
    public static var defaults: PolicyNames {
        PolicyNames(Dictionary(uniqueKeysWithValues: catalogs.map { ($0.slot.key, $0.defaultName) }))
    }

    /// The first unknown key or name in `names`, as one line starting with `origin`
    /// (e.g. `"pod.toml: [policies] "`), or nil when every key is a slot and every name is in it.
    public static func problem(in names: PolicyNames, origin: String = "") -> String? {
        problemKey(in: names).map { origin + $0.message }
    }

    /// The first unknown key or name in `names`: the slot key it concerns (so a file's reader can
    /// give its line) and the message without an origin.
    public static func problemKey(in names: PolicyNames) -> (key: String, message: String)? {
        for key in names.keys {
            guard let catalog = catalogs.first(where: { $0.slot.key == key }) else {
                return (key, "unknown policy slot \(InputEcho.quoted(key)); expected one of: "
                    + catalogs.map(\.slot.key).joined(separator: ", "))
            }
            let name = names[key] ?? ""
            if catalog.canonicalName(name) == nil {
                return (key, "\(key): unknown \(catalog.slot.title) policy \(InputEcho.quoted(name)); expected one of: "
                    + catalog.names.joined(separator: ", "))
            }
        }
        return nil
    }

    /// `names` with every known name in its registered spelling (`SLO` → `slo`); unknown slots
    /// and names are left for ``problem(in:origin:)`` to name.
    public static func canonical(_ names: PolicyNames) -> PolicyNames {
        var out = names
        for key in names.keys {
            guard let catalog = catalogs.first(where: { $0.slot.key == key }), let name = names[key],
                  let registered = catalog.canonicalName(name) else { continue }
            out[key] = registered
        }
        return out
    }

    /// What Tab offers after the words of a `policy` command typed so far: the slots after
    /// `policy`, a slot's names after `policy SLOT`; nil for any other line.
    public static func completionWords(after words: [String]) -> [String]? {
        guard words.first == "policy" else { return nil }
        switch words.count {
        case 1: return catalogs.map(\.slot.command)
        case 2: return catalog(command: words[1])?.names ?? []
        default: return []
        }
    }

    /// Help text listing a slot's policies: `prefix-aware (default): …; least-loaded: …`.
    public static func help(_ catalog: any PolicyCatalog) -> String {
        catalog.names.map { name in
            "\(name)\(name == catalog.defaultName ? " (default)" : ""): \(catalog.summary(of: name) ?? "")"
        }.joined(separator: "; ")
    }
}
