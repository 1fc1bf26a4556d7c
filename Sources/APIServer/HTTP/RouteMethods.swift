import Hummingbird
import Synchronization

/// The methods each route answers, so that a request for a known path with a method it does not
/// take gets 405 with an `Allow` header (RFC 9110 §15.5.6) instead of the 404 of an unknown path,
/// and `OPTIONS` on a known path gets 204 with `Allow` (a CORS preflight included: no
/// `Access-Control-Allow-*` headers are sent, so browsers from other origins stay out, as before).
/// Read off the router once its routes are in (``learn(_:)``); GET routes also take HEAD
/// (the router's `autoGenerateHeadEndpoints`).
final class RouteMethods: Sendable {
    private let table = Mutex<[(path: RouterPath, methods: Set<HTTPRequest.Method>)]>([])

    func learn(_ routes: [Router<ServerContext>.RouteDescription]) {
        var byPath: [String: (path: RouterPath, methods: Set<HTTPRequest.Method>)] = [:]
        var order: [String] = []
        for route in routes {
            let key = route.path.description
            if byPath[key] == nil { order.append(key) }
            byPath[key, default: (route.path, [])].methods.insert(route.method)
            if route.method == .get { byPath[key]!.methods.insert(.head) }
        }
        table.withLock { $0 = order.map { byPath[$0]! } }
    }

    /// The methods `path` answers (OPTIONS included), or nil for a path no route matches.
    func allowed(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var methods: Set<HTTPRequest.Method> = []
        for route in table.withLock({ $0 }) where Self.matches(route.path, parts) { methods.formUnion(route.methods) }
        guard !methods.isEmpty else { return nil }
        methods.insert(.options)
        return methods.sorted { Self.order($0) < Self.order($1) }
    }

    /// Every method some route answers (OPTIONS included): the `Allow` of `OPTIONS *`, which asks
    /// about the server as a whole.
    func all() -> [HTTPRequest.Method] {
        var methods = Set(table.withLock { $0 }.flatMap(\.methods))
        methods.insert(.options)
        return methods.sorted { Self.order($0) < Self.order($1) }
    }

    /// The path, as the router labels it (`/v1/models/{id}`), of the first route that matches
    /// `path` whatever its method; nil for a path no route matches. For the HTTP metrics of a
    /// request that reached no route because of its method (OPTIONS, a 405).
    func route(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return table.withLock({ $0 }).first(where: { Self.matches($0.path, parts) })?.path.description
    }

    /// `GET, HEAD, OPTIONS`: the `Allow` header's value.
    static func header(_ methods: [HTTPRequest.Method]) -> String { methods.map(\.rawValue).joined(separator: ", ") }

    private static func order(_ m: HTTPRequest.Method) -> Int {
        [HTTPRequest.Method.get, .head, .post, .put, .patch, .delete, .options].firstIndex(of: m) ?? 99
    }

    private static func matches(_ route: RouterPath, _ parts: [Substring]) -> Bool {
        var i = 0
        for element in route.components {
            if element.description == "**" { return true }  // the rest of the path, whatever it is
            guard i < parts.count, element ~= parts[i] else { return false }
            i += 1
        }
        return i == parts.count
    }
}
