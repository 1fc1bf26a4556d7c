import Foundation

/// The project's one JSON writer configuration: Foundation's `JSONEncoder` with keys sorted (the
/// same value is the same bytes on every run, which the byte-for-byte report comparisons need;
/// Linux's encoder otherwise follows dictionary order, which changes from process to process) and
/// `/` left unescaped. `xds run --json`/`--out`, `--requests-out`, `--timeline-out`, `printJSON`
/// and the HTTP server's `JSONWire` all take their encoder from here.
///
/// ```swift
/// let data = try JSONOutput.encoder(pretty: true).encode(report)
/// ```
public enum JSONOutput {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty
            ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// An optional written as JSON `null` when absent, where the synthesized encoder leaves the key
/// out: interfaces.md's consumers read a bench result's `eplb` and `routing` (null on a dense
/// model) and a request row's times and instances as keys that are always there.
@propertyWrapper
public struct NullWhenAbsent<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A key that is missing decodes as absent, as it did for the plain optionals the wrapper
    /// replaced (the synthesized decoder would otherwise require every wrapped key): a report or
    /// row written by hand or by another tool without the key still reads.
    public func decode<Value>(_ type: NullWhenAbsent<Value>.Type, forKey key: Key) throws -> NullWhenAbsent<Value> {
        try decodeIfPresent(type, forKey: key) ?? NullWhenAbsent(wrappedValue: nil)
    }
}
