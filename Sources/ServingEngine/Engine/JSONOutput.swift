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
