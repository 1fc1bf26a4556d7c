import Foundation
import Hummingbird

extension Request {
    /// Reads at most `limitBytes` of body (413 beyond) and decodes it as JSON (400 naming the
    /// field at fault), for every route that takes a JSON body.
    mutating func decodeJSON<Body: Decodable>(_ type: Body.Type, limitBytes: Int) async throws -> Body {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limitBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limitBytes: limitBytes)
        }
        do {
            return try JSONDecoder().decode(Body.self, from: Data(buffer: buffer))
        } catch {
            throw APIError.undecodable(error)
        }
    }
}
