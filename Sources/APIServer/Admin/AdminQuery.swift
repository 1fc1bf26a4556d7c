import Hummingbird
import PodModel

/// The query string of an admin read route, checked whole before any value is read (each
/// value's range is its route's business). A name the route does not take (`?limmit=5`) was
/// ignored and a name given twice (`?limit=5&limit=7`) answered with the first, both silently, so
/// a typo looked like a default: each is a 400 naming it now (`unknown_parameter`,
/// `duplicate_parameter`). Values are read as Hummingbird decodes them (percent-escapes
/// undone), as before, so an answer to a well-formed query is unchanged.
///
/// ```swift
/// let values = try AdminQuery(route: "GET /admin/requests", accepted: ["sort", "limit"]).values(of: request)
/// ```
struct AdminQuery {
    /// `GET /admin/requests`, for messages.
    let route: String
    /// Every name the route takes, in the order its documentation lists them.
    let accepted: [String]

    /// A route that takes no query parameters.
    init(route: String, accepted: [String] = []) {
        self.route = route
        self.accepted = accepted
    }

    /// The values by name; throws on the first name not taken or given twice.
    func values(of request: Request) throws -> [String: String] {
        try Self.refuseNonUTF8(request.uri.query ?? "")
        var values: [String: String] = [:]
        let pairs = request.uri.queryParameters
        for (key, value) in pairs {
            // `?a=1&&b=2` and a trailing `&` name nothing.
            if key.isEmpty && value.isEmpty { continue }
            let name = String(key)
            guard accepted.contains(name) else { throw unknown(name) }
            guard values[name] == nil else {
                let times = pairs.filter { $0.key == key }.count
                throw APIError.invalidRequest(
                    "query parameter \(InputEcho.quoted(name)) is given \(times) times; \(route) takes each parameter once",
                    param: name, code: "duplicate_parameter")
            }
            values[name] = String(value)
        }
        return values
    }

    /// Refuses (400 `invalid_parameter`, naming it) a name or value whose %-escapes do not undo to
    /// UTF-8 text: Hummingbird reads such bytes as U+FFFD, so `filter=%FF` filtered for '�' and the
    /// page said so, without a word of what went wrong. A '%' not followed by two hex digits is
    /// kept as written, as Hummingbird keeps it.
    static func refuseNonUTF8(_ query: String) throws {
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for part in pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            where String(validating: unescaped(part), as: UTF8.self) == nil {
                let shown = String(validating: unescaped(name), as: UTF8.self) ?? String(name)
                throw APIError.invalidRequest(
                    "query parameter \(InputEcho.quoted(shown)) is not UTF-8 text once its %-escapes are undone "
                        + "(got \(InputEcho.quoted(part)))",
                    param: InputEcho.clean(shown), code: "invalid_parameter")
            }
        }
    }

    /// `text`'s bytes with each `%HH` replaced by the byte it stands for.
    private static func unescaped(_ text: Substring) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private func unknown(_ name: String) -> APIError {
        let takes = accepted.isEmpty ? "takes no query parameters" : "takes " + accepted.joined(separator: ", ")
        return APIError.invalidRequest(
            "unknown query parameter \(InputEcho.quoted(name)): \(route) \(takes)",
            param: InputEcho.clean(name), code: "unknown_parameter")
    }
}
