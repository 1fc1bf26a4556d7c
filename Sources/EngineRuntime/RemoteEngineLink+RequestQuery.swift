import Foundation
import NIOCore
import ServingEngine

/// The request table of a remote `xds serve` (`xds console --connect`): `GET /admin/requests`
/// and `GET /admin/requests/{id}` (AdminRequestRoutes).
extension RemoteEngineLink: RequestQueryLink {
    /// A page of a few hundred rows comes back in milliseconds; a console asks again soon.
    static let queryTimeout = TimeAmount.seconds(10)

    public func requestPage(_ query: RequestQuery) -> Result<RequestPage, RequestQueryRefusal> {
        if let problem = query.problem { return .failure(RequestQueryRefusal(problem)) }
        var components = URLComponents(url: baseURL.appendingPathComponent("admin/requests"), resolvingAgainstBaseURL: false)
        components?.queryItems = [
            URLQueryItem(name: "sort", value: query.sort.rawValue),
            URLQueryItem(name: "reverse", value: query.reversed ? "1" : "0"),
            URLQueryItem(name: "filter", value: query.filter),
            URLQueryItem(name: "offset", value: String(query.offset)),
            URLQueryItem(name: "limit", value: String(query.limit)),
        ]
        guard let url = components?.url else { return .failure(RequestQueryRefusal("cannot form the request URL")) }
        return get(url, as: RequestPage.self)
    }

    public func requestDetail(id: Int) -> Result<RequestDetail, RequestQueryRefusal> {
        get(baseURL.appendingPathComponent("admin/requests/\(id)"), as: RequestDetail.self)
    }

    private func get<T: Decodable & Sendable>(_ url: URL, as: T.Type) -> Result<T, RequestQueryRefusal> {
        switch http.exchange(url, timeout: Self.queryTimeout) {
        case .failure(let failure):
            return .failure(RequestQueryRefusal("not connected to \(baseURL.absoluteString): \(failure.explanation)"))
        case .success(let answer):
            return read(answer, as: T.self).mapError { RequestQueryRefusal($0.message, notFound: $0.notFound) }
        }
    }
}
