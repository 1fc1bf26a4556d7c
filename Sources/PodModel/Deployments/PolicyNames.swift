import TOMLKit

/// Policies chosen by name, one per slot, keyed as in a deployment's `[policies]` table
/// (`je_routing = "round-robin"`). PodModel only carries the names; the serving engine knows
/// the slots and their registries and refuses an unknown key or name (one line naming both).
///
/// ```swift
/// var names = PolicyNames()
/// names["je_routing"] = "least-loaded"
/// let effective = defaults.overridden(by: deployment.policies).overridden(by: names)  // CLI > TOML > default
/// ```
public struct PolicyNames: Sendable, Equatable, Codable {
    /// Slot key → policy name.
    public private(set) var byKey: [String: String] = [:]

    public init(_ byKey: [String: String] = [:]) { self.byKey = byKey }

    /// The slot keys a `[policies]` table may hold, in the order the engine lists its slots
    /// (ServingEngine's `Policies.catalogs`; a test there keeps the two the same). Known here so
    /// the file's reader can refuse a key that is no slot at its line, before its value's type:
    /// `bogus = 1` was told "'bogus' must be a string", as if the key could be right.
    public static let slotKeys = ["je_routing", "dp_balancing", "eplb_planner", "recovery", "autoscaler"]

    public subscript(key: String) -> String? {
        get { byKey[key] }
        set { byKey[key] = newValue }
    }

    /// A policy or mode name as every face matches it: ASCII letters lower-cased, nothing else
    /// touched (`SLO` → `slo`, `Round-Robin` → `round-robin`). Registered names are lower-case
    /// ASCII, so `--autoscale SLO`, `[scaling] autoscale = "SLO"` and `autoscale SLO` name the same
    /// policy; reports and messages use the registered spelling. ``Policies`` (ServingEngine) looks
    /// names up through it; the `[scaling] autoscale` check here uses it directly.
    public static func folded(_ name: String) -> String {
        guard name.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) else { return name }
        return String(decoding: name.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    public var isEmpty: Bool { byKey.isEmpty }
    /// Keys in a stable (sorted) order, for printing.
    public var keys: [String] { byKey.keys.sorted() }

    /// These names with `other`'s set names on top (`other` wins where both name a slot).
    public func overridden(by other: PolicyNames) -> PolicyNames {
        PolicyNames(byKey.merging(other.byKey) { _, new in new })
    }

    // Encoded as a plain object: `{"je_routing": "prefix-aware", ...}`.
    public init(from decoder: any Decoder) throws {
        byKey = try decoder.singleValueContainer().decode([String: String].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(byKey)
    }
}

extension Deployment {
    /// A deployment file's `[policies]` table: every key a slot (``PolicyNames/slotKeys``), every
    /// value a string (the engine checks the names). A refusal names the file and the key's line
    /// (`text` is the file's text; the parsed table keeps no lines).
    static func readPolicies(_ reader: TOMLReader, text: String) throws -> PolicyNames {
        guard let table = try reader.table("policies") else { return PolicyNames() }
        func fail(_ key: String, _ message: String) -> ConfigError {
            // A slot written as a table (`[policies.x]`) at its header.
            let line = (TOMLDocument.line(ofKey: key, inTable: "policies", text: text)
                ?? TOMLDocument.header(ofKey: key, inTable: "policies", text: text)?.line).map { ":\($0)" } ?? ""
            return ConfigError("\(reader.source)\(line): [policies] \(message)")
        }
        var names = PolicyNames()
        for key in table.keys {
            guard PolicyNames.slotKeys.contains(key) else {
                throw fail(key, "unknown policy slot \(InputEcho.quoted(key)); expected one of: "
                    + PolicyNames.slotKeys.joined(separator: ", "))
            }
            guard let value = table[key], let name = value.string else {
                let got = table[key].map { ", got \(TOMLReader.received($0))" } ?? ""
                throw fail(key, "\(InputEcho.quoted(key)) must be a string (a policy name)\(got)")
            }
            names[key] = name
        }
        return names
    }

    /// The `[policies]` table, empty when no policy is named.
    func policiesTOML() -> String {
        guard !policies.isEmpty else { return "" }
        var out = "\n[policies]\n"
        for key in policies.keys { out += "\(key) = \(Self.quoted(policies[key] ?? ""))\n" }
        return out
    }
}
