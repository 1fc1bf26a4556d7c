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

    private func unknown(_ name: String) -> APIError {
        let takes = accepted.isEmpty ? "takes no query parameters" : "takes " + accepted.joined(separator: ", ")
        return APIError.invalidRequest(
            "unknown query parameter \(InputEcho.quoted(name)): \(route) \(takes)",
            param: InputEcho.clean(name), code: "unknown_parameter")
    }
}
