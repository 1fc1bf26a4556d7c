import Foundation
import Hummingbird
import PodModel
import ServingEngine

/// `GET /admin/requests` and `GET /admin/requests/{id}`: the engine's request table on demand, for a
/// remote console's Requests view (the snapshot lists only the oldest few hundred in flight).
///
/// - `GET /admin/requests?sort=age&reverse=0&filter=decode-0&offset=0&limit=100` → a
///   ``RequestPage``: `{"query", "simTime", "inFlight", "matching", "rows": [RequestStatus…]}`.
///   `sort` is one of age, stage, tokens, id, prompt, ttft (default age); `reverse` 0 or 1;
///   `filter` a case-insensitive substring of `#id`, stage or place (≤ 200 bytes); `offset`
///   0…10000000 (default 0); `limit` 1…1000 (default 100). A value out of range is a 400 that names it
///   (`invalid_parameter`); so is a name given twice (`duplicate_parameter`) or one the route
///   does not take (`unknown_parameter`, listing the names it takes).
/// - `GET /admin/requests/42` → a ``RequestDetail`` (the engine-recorded times of each stage);
///   404 if the engine no longer remembers request 42.
///
/// 501 if the engine cannot list its requests; 503 if it is not running or did not answer in time.
///
/// ```
/// curl -H "Authorization: Bearer $T" 'localhost:8000/admin/requests?sort=ttft&limit=20'
/// curl -H "Authorization: Bearer $T" localhost:8000/admin/requests/42
/// ```
extension AdminRoutes {
    func registerRequests(on admin: RouterGroup<ServerContext>) {
        admin.get("/requests") { request, _ in
            let values = try Self.requestTableQuery.values(of: request)
            let query = try Self.requestQuery { values[$0] }
            guard let table = link as? RequestQueryLink else { throw Self.cannotList }
            let answer = await Self.offPool { table.requestPage(query) }
            switch answer {
            case .success(let page): return AdminWire.response(page)
            case .failure(let refusal): throw Self.error(refusal)
            }
        }
        admin.get("/requests/:id") { request, context in
            _ = try AdminQuery(route: "GET /admin/requests/{id}").values(of: request)
            let text = context.pathParameter("id")
            // Digits only: Int() also takes a sign, so "+5" and "-0" named requests 5 and 0.
            guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let id = Int(text) else {
                throw APIError.invalidRequest(
                    "request id must be a whole number within 0…\(Int.max), got \(InputEcho.quoted(text))", param: "id",
                    code: "invalid_parameter")
            }
            guard let table = link as? RequestQueryLink else { throw Self.cannotList }
            switch await Self.offPool({ table.requestDetail(id: id) }) {
            case .success(let detail): return AdminWire.response(detail)
            case .failure(let refusal): throw Self.error(refusal)
            }
        }
    }

    /// The names `GET /admin/requests` takes, in the order the README lists them.
    static let requestTableQuery = AdminQuery(
        route: "GET /admin/requests", accepted: ["sort", "reverse", "filter", "offset", "limit"])

    /// The query string as a ``RequestQuery``; every value checked against its range (400
    /// `invalid_parameter` naming it).
    static func requestQuery(_ parameter: (String) -> String?) throws -> RequestQuery {
        var query = RequestQuery()
        if let sort = parameter("sort") {
            guard let key = RequestSort(rawValue: sort) else {
                throw APIError.invalidRequest(
                    "sort must be one of \(RequestSort.allCases.map(\.rawValue).joined(separator: ", ")), got \(InputEcho.quoted(sort))",
                    param: "sort", code: "invalid_parameter")
            }
            query.sort = key
        }
        if let reverse = parameter("reverse") {
            guard reverse == "0" || reverse == "1" else {
                throw APIError.invalidRequest("reverse must be 0 or 1, got \(InputEcho.quoted(reverse))", param: "reverse",
                                                code: "invalid_parameter")
            }
            query.reversed = reverse == "1"
        }
        if let filter = parameter("filter") { query.filter = filter }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = parameter(name) else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw APIError.invalidRequest(
                    "\(name) must be a whole number within \(range.lowerBound)…\(range.upperBound), got \(InputEcho.quoted(text))",
                    param: name, code: "invalid_parameter")
            }
            return value
        }
        if let offset = try integer("offset", RequestQuery.offsetRange) { query.offset = offset }
        if let limit = try integer("limit", RequestQuery.limitRange) { query.limit = limit }
        if let problem = query.problem { throw APIError.invalidRequest(problem, param: "filter", code: "invalid_parameter") }
        return query
    }

    static let cannotList = APIError(
        status: .notImplemented, message: "this engine cannot list its requests", type: "invalid_request_error",
        param: nil, code: "not_implemented")

    static func error(_ refusal: RequestQueryRefusal) -> APIError {
        if refusal.notFound {
            return APIError(status: .notFound, message: refusal.message, type: "invalid_request_error", param: "id",
                            code: "not_found")
        }
        return APIError.engine(reason: refusal.message, status: 503)
    }

    /// The link blocks for an engine turn; it runs on a Dispatch thread, never on an event loop.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }
}
