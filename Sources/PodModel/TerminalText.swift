import Foundation

extension String {
    /// This text with every control character made visible, so a name read from a file (a
    /// deployment name, a trace path, a scenario command) cannot move the cursor, recolour,
    /// retitle or clear the terminal it is printed on.
    ///
    /// C0 characters become caret notation (ESC → `^[`, newline → `^J`), DEL becomes `^?`, and
    /// C1 characters (U+0080…U+009F; U+009B is a CSI on some terminals) become `<U+009B>`. Tab
    /// becomes a space: harmless, but it would break the one-line shape of a message.
    ///
    /// ```swift
    /// "a\u{1B}[31mb".terminalSafe   // "a^[[31mb"
    /// ```
    public var terminalSafe: String {
        // Fast path: most text has no control character at all.
        guard unicodeScalars.contains(where: \.isTerminalControl) else { return self }
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            switch scalar.value {
            case 0x09: out.append(" ")
            case 0x00..<0x20:
                out.append("^")
                out.append(Unicode.Scalar(UInt8(scalar.value) + 0x40))
            case 0x7F: out.append(contentsOf: "^?".unicodeScalars)
            case 0x80...0x9F, 0x2028...0x202E, 0x2066...0x2069:
                out.append(contentsOf: "<U+\(String(format: "%04X", scalar.value))>".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}

extension Unicode.Scalar {
    /// C0 (including ESC, newline and tab), DEL, C1, the Unicode line and paragraph separators
    /// and the bidi embeddings, overrides and isolates: what a terminal may act on, or what can
    /// split a message or make it read backwards. One definition for every echo and print.
    public var isTerminalControl: Bool {
        value < 0x20 || (0x7F...0x9F).contains(value) || (0x2028...0x202E).contains(value)
            || (0x2066...0x2069).contains(value)
    }
}

/// What a user sees when a command fails: one line, whatever the error is.
///
/// The project's own errors (``ConfigError`` and the typed errors of the other modules) carry a
/// message written for the user. Anything else — a Foundation `EncodingError` when a report
/// holds a NaN, a `DecodingError`, an `NSError` — would otherwise print as raw Swift text such
/// as `Swift.DecodingError.dataCorrupted(Context(codingPath: [], …))`; it is mapped to a plain
/// sentence here. Every message is made ``Swift/String/terminalSafe``, which also keeps it on
/// one line.
///
/// ```swift
/// ErrorLine.describe(ConfigError("--rate must be between 0 and 10000 requests/s, got 1e308"))
/// ```
public enum ErrorLine {
    /// Modules whose errors are written for users (their `description` is the message).
    static let projectModules: Set<String> = [
        "PodModel", "SimKit", "ServingEngine", "EngineRuntime", "APIServer", "Console", "XDSTestSupport", "xds",
    ]

    public static func describe(_ error: any Error) -> String {
        let message: String
        switch error {
        case let e as ConfigError:
            message = e.description
        case let e as EncodingError:
            message = encodingMessage(e)
        case let e as DecodingError:
            message = decodingMessage(e)
        case let e as CustomStringConvertible where isProjectError(error):
            message = e.description
        case _ where isProjectError(error) && messageField(error) != nil:
            message = messageField(error) ?? ""
        default:
            let ns = error as NSError
            if ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain {
                // Foundation's own sentence, e.g. "The file “x” couldn’t be opened …".
                message = ns.localizedDescription
            } else {
                message = "unexpected internal error (\(typeName(error))); please report it"
            }
        }
        let line = message.trimmingCharacters(in: .whitespacesAndNewlines)
        return (line.isEmpty ? "unexpected internal error (\(typeName(error))); please report it" : line).terminalSafe
    }

    static func isProjectError(_ error: any Error) -> Bool {
        let module = String(reflecting: type(of: error)).prefix { $0 != "." }
        return projectModules.contains(String(module))
    }

    /// A project error without a `description` (e.g. a theme error) still has its message:
    /// its `location` and `message` fields, when it has them.
    static func messageField(_ error: any Error) -> String? {
        let fields = Dictionary(Mirror(reflecting: error).children.compactMap { child in
            child.label.flatMap { label in (child.value as? String).map { (label, $0) } }
        }, uniquingKeysWith: { a, _ in a })
        guard let message = fields["message"] else { return nil }
        return fields["location"].map { "\($0): \(message)" } ?? message
    }

    static func typeName(_ error: any Error) -> String { String(describing: type(of: error)) }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : "'" + codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            .joined(separator: ".") + "'"
    }

    static func encodingMessage(_ error: EncodingError) -> String {
        switch error {
        case let .invalidValue(value, context):
            if let d = value as? Double, !d.isFinite {
                return "cannot write JSON: \(path(context.codingPath)) is \(d), which JSON cannot hold"
            }
            if let f = value as? Float, !f.isFinite {
                return "cannot write JSON: \(path(context.codingPath)) is \(f), which JSON cannot hold"
            }
            return "cannot write JSON: \(path(context.codingPath)) cannot be encoded"
        @unknown default:
            return "cannot write JSON"
        }
    }

    static func decodingMessage(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, context):
            return "cannot read JSON: missing field '\(key.stringValue)' in \(path(context.codingPath))"
        case let .typeMismatch(type, context):
            return "cannot read JSON: \(path(context.codingPath)) is not a \(type)"
        case let .valueNotFound(type, context):
            return "cannot read JSON: \(path(context.codingPath)) is null, expected a \(type)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "cannot read JSON: the text is not valid JSON"
                : "cannot read JSON: \(path(context.codingPath)) holds a value of the wrong form"
        @unknown default:
            return "cannot read JSON"
        }
    }
}
