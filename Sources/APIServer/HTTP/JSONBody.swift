import Foundation
import Hummingbird

extension Request {
    /// Reads at most `limitBytes` of body (413 beyond) and decodes it as JSON (400 naming the
    /// field at fault), for every route that takes a JSON body. A body whose framing does not
    /// parse (bad chunk sizes, a connection that ends mid-body) is a 400 too, never a 500.
    /// `maxModelLen`: the served model's context window, for the range a length field's message
    /// states (nil: routes without one).
    /// A number no float holds (or one that underflows) named with what its field takes
    /// (`logit_bias.1` is in `logit_bias`, `prompt[0]` in `prompt`).
    static func numberRefusal(_ finding: JSONKeyCheck.Finding, path: String?, maxModelLen: Int?) -> APIError {
        let (text, param) = JSONKeyCheck.message(finding)
        let root = path.map { String($0.prefix { $0 != "." && $0 != "[" }) }
        let expected = path.flatMap { APIError.expected($0, maxModelLen: maxModelLen) }
            ?? root.flatMap { APIError.expected($0, maxModelLen: maxModelLen) }
        return APIError.invalidRequest(text + (expected.map { " (expected \($0))" } ?? ""), param: param)
    }

    mutating func decodeJSON<Body: Decodable>(_ type: Body.Type, limitBytes: Int, maxModelLen: Int? = nil) async throws -> Body {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limitBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limitBytes: limitBytes)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIError.malformedBody
        }
        // Read first (so the connection stays in step), then refused if it came compressed.
        if let coding = headers[.contentEncoding], let unsupported = Self.unsupportedCoding(coding) {
            throw APIError.unsupportedContentEncoding(unsupported)
        }
        // A body declared in another charset (`charset=utf-16`) was parsed as UTF-8 all the same,
        // and judged on bytes the client never meant as UTF-8. Only the charset is checked: the
        // media type is not (curl -d sends application/x-www-form-urlencoded, and clients rely on
        // a JSON body being taken whatever type it is declared as).
        if let contentType = headers[.contentType], let charset = Self.unsupportedCharset(contentType) {
            throw APIError.unsupportedCharset(charset)
        }
        let data = Data(buffer: buffer)
        // Foundation's decoder takes UTF-16 and UTF-32 too, while every check below reads the
        // body's bytes as UTF-8: a key given twice in such a body went through unseen.
        if Self.isUTF16OrUTF32(data) { throw APIError.notUTF8Body }
        do {
            let body = try JSONDecoder().decode(Body.self, from: data)
            // A body the decoder took may still be ambiguous (a key given twice), or hold an
            // integer field's number that underflows (`"seed": 1e-400`): the decoder refuses
            // that in a float field but read it as 0 in an integer one, and served it.
            if let finding = JSONKeyCheck.firstFinding(in: [UInt8](data), surrogates: false, numbers: true,
                                                       numberRoots: APIError.integerFields.union(["prompt"])) {
                if case let .unrepresentableNumber(path, _, _) = finding { throw Self.numberRefusal(finding, path: path, maxModelLen: maxModelLen) }
                let (text, param) = JSONKeyCheck.message(finding)
                throw APIError.invalidRequest(text, param: param)
            }
            return body
        } catch let error as APIError {
            throw error
        } catch {
            // The decoder blames the type of a string with a lone surrogate; say what it is. It
            // refuses `NaN` or `Infinity` as "not valid JSON" without naming the field; name it.
            // A number no float holds is looked for only when the decoder refused the body as
            // "not valid JSON" without a place (as it does for one), never for a field's wrong type:
            // such a number in a field nobody reads must not be blamed for another field's error.
            // The top-level scan (``APIError/unrepresentableNumber(in:maxModelLen:)``) found only
            // top-level fields, and `{"logit_bias": {"1": 1e400}}` was told "not valid JSON".
            var placeless = false
            if case .dataCorrupted(let context)? = error as? DecodingError, context.codingPath.isEmpty { placeless = true }
            // A control character written raw in a string, too: the decoder blamed the type of a
            // field that also takes an array (`messages[0].content`, `prompt`), or said "not valid
            // JSON" with no place. So it did for a body cut short or closed too often: the byte
            // where it goes wrong is named.
            if let finding = JSONKeyCheck.firstFinding(in: [UInt8](data), numbers: placeless, controls: true, ambiguities: false,
                                                       grammar: placeless) {
                let (text, param) = JSONKeyCheck.message(finding)
                switch finding {
                case .unpairedSurrogate, .rawControlCharacter, .badEscape:
                    throw APIError.invalidRequest(text, param: param)
                case .endsBeforeClosing, .endsInsideString, .moreAfterValue, .unmatchedCloser, .unexpected:
                    // The decoder gives up past its nesting limit, before reaching what is wrong further on.
                    if JSONKeyCheck.nestingExceeds(JSONKeyCheck.maxDecodableDepth, in: data) { throw APIError.nestedTooDeep }
                    throw APIError.invalidRequest(text, param: param)
                case let .bareWord(path, _):
                    let expected = path.flatMap { APIError.expected($0, maxModelLen: maxModelLen) }
                    throw APIError.invalidRequest(text + (expected.map { " (expected \($0))" } ?? ""), param: param)
                case let .unrepresentableNumber(path, _, _), let .malformedNumber(path, _):
                    throw Self.numberRefusal(finding, path: path, maxModelLen: maxModelLen)
                default:
                    break
                }
            }
            // JSON is UTF-8 (RFC 8259); bytes that are not make Foundation's error name whichever
            // field held them as "the wrong type", which sends the client looking in the wrong place.
            if String(bytes: data, encoding: .utf8) == nil { throw APIError.notUTF8Body }
            // Nothing sent is no syntax error in what was sent ("not valid JSON" said that).
            if data.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
                throw APIError.invalidRequest("request body is empty; expected a JSON object", param: nil)
            }
            // Foundation refuses nesting beyond its limit as "not valid JSON"; say what it is.
            if JSONKeyCheck.nestingExceeds(JSONKeyCheck.maxDecodableDepth, in: data) { throw APIError.nestedTooDeep }
            throw APIError.undecodable(error, body: data, maxModelLen: maxModelLen)
        }
    }

    /// Whether a body is UTF-16 or UTF-32 as Foundation's decoder tells them: by a byte-order
    /// mark (FE FF, FF FE; UTF-32's begin so or with 00 00), else by a NUL among its first two
    /// bytes, which UTF-8 JSON never has (its first character is `{`, `[`, a quote, a digit or
    /// whitespace, and a raw NUL is no JSON anywhere).
    static func isUTF16OrUTF32(_ data: Data) -> Bool {
        let head = Array(data.prefix(2))
        return head.count == 2 && (head == [0xFE, 0xFF] || head == [0xFF, 0xFE] || head.contains(0))
    }

    /// The `charset` parameter of a `Content-Type` value when it names anything but UTF-8 or its
    /// subset US-ASCII (RFC 9110 §8.3.1: parameters are `;`-separated, names and charset values
    /// without case, values possibly quoted); nil when it has none or names UTF-8.
    static func unsupportedCharset(_ value: String) -> String? {
        for parameter in value.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "charset" else { continue }
            var charset = pair[1].trimmingCharacters(in: .whitespaces)
            if charset.count >= 2, charset.hasPrefix("\""), charset.hasSuffix("\"") { charset = String(charset.dropFirst().dropLast()) }
            return ["utf-8", "utf8", "us-ascii"].contains(charset.lowercased()) ? nil : charset
        }
        return nil
    }

    /// The first coding in a `Content-Encoding` value other than `identity` (RFC 9110 §8.4: a
    /// comma-separated list, names without case), or nil when the body is as sent.
    static func unsupportedCoding(_ value: String) -> String? {
        for coding in value.split(separator: ",") {
            let name = coding.trimmingCharacters(in: .whitespaces)
            if !name.isEmpty, name.lowercased() != "identity" { return name }
        }
        return nil
    }
}

extension APIError {
    /// JSON is UTF-8 (RFC 8259): a body in any other encoding, or with bytes UTF-8 does not allow.
    static var notUTF8Body: APIError { .invalidRequest("request body is not valid UTF-8 (JSON must be UTF-8)", param: nil) }

    /// A body nested past what Foundation's decoder reads, which it refuses as "not valid JSON".
    static var nestedTooDeep: APIError {
        .invalidRequest("request body is nested more than \(JSONKeyCheck.maxDecodableDepth) levels deep (arrays and objects)", param: nil)
    }
}
