import EngineRuntime
import Foundation
import ServingEngine
import SimKit
import Synchronization
import Testing
import XDSTestSupport

@testable import APIServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Issue 10: every input gets an answer, the engine keeps moving or says why not.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HardeningTests {
    // MARK: HTTP framing

    @Test func aMalformedChunkedBodyIs400() async throws {
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
            defer { connection.close() }
            connection.write(raw:
                "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\n\r\nzz-not-hex\r\n{\"prompt\": \"x\"}\r\n0\r\n\r\n")
            let answer = await connection.read(until: "\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A head NIO's decoder refuses (a Content-Length that is not one whole number, two that
    /// disagree, a header name with a space) got Hummingbird's bare `400` with an empty body: the
    /// one error without the OpenAI error object, so the openai package could only say "Error
    /// code: 400". It carries the object now, names what was wrong, and the connection closes.
    @Test func aMalformedHeadIs400WithTheErrorBody() async throws {
        let heads: [(fields: String, says: String)] = [
            ("Content-Length: abc", "Content-Length must be one whole number of bytes"),
            ("Content-Length: -5", "Content-Length must be one whole number of bytes"),
            ("Content-Length: 99999999999999999999999", "Content-Length must be one whole number of bytes"),
            ("Content-Length: 2\r\nContent-Length: 3", "Content-Length is repeated with different values"),
            ("Bad Name: x\r\nContent-Length: 2", "a header name or value holds a character HTTP does not allow"),
        ]
        try await LiveServer.with { server in
            for head in heads {
                let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
                defer { connection.close() }
                connection.write(raw:
                    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "\(head.fields)\r\n\r\n{}")
                let (answer, closed) = await connection.readUntilClosed()
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(head.fields): \(answer)")
                #expect(answer.lowercased().contains("content-type: application/json"), "\(head.fields): \(answer)")
                #expect(answer.contains(#""code":"malformed_request""#), "\(head.fields): \(answer)")
                #expect(answer.contains(#""type":"invalid_request_error""#), "\(head.fields): \(answer)")
                #expect(answer.contains(head.says), "\(head.fields): \(answer)")
                #expect(closed, "\(head.fields): the connection stays open after a head that did not parse")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A request whose lines end in a bare LF (`printf 'GET /health HTTP/1.1\nHost: x\n\n' | nc`)
    /// was told its HTTP version was not 1.0 or 1.1, or, for a header line, given Content-Length
    /// with Transfer-Encoding as the example: neither was what the client did. Both answers name
    /// the line ending now; a wrong version is still named as one.
    @Test func aBareLFLineEndingIsNamedInThe400() async throws {
        let requests: [(raw: String, says: String)] = [
            ("GET /health HTTP/1.1\nHost: 127.0.0.1\n\n", "does not end in CRLF"),
            ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\n\r\n", "does not end in CRLF"),
            ("GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", "its HTTP version is not HTTP/1.0 or HTTP/1.1"),
        ]
        try await LiveServer.with { server in
            for request in requests {
                let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
                defer { connection.close() }
                connection.write(raw: request.raw)
                let (answer, closed) = await connection.readUntilClosed()
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(request.raw.debugDescription): \(answer)")
                #expect(answer.contains(#""code":"malformed_request""#), "\(request.raw.debugDescription): \(answer)")
                #expect(answer.contains(request.says), "\(request.raw.debugDescription): \(answer)")
                #expect(closed, "\(request.raw.debugDescription)")
            }
        }
    }

    /// HTTP/2's connection preface (`curl --http2-prior-knowledge`, gRPC) got the generic 400
    /// "its framing does not parse". The server speaks HTTP/1.x only: it is a 505 naming HTTP/2,
    /// and the connection closes cleanly (a FIN, not a reset), whether the preface opens the
    /// connection or follows an HTTP/1.1 request on it.
    @Test func anHTTP2PrefaceIs505AndTheConnectionCloses() async throws {
        // The preface, then an empty SETTINGS frame, as an HTTP/2 client sends them at once.
        let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u{0}\u{0}\u{0}\u{4}\u{0}\u{0}\u{0}\u{0}\u{0}"
        try await LiveServer.with { server in
            for after11 in [false, true] {
                let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
                defer { connection.close() }
                if after11 {
                    connection.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    let first = await connection.read(until: "}")  // the whole answer, body included
                    #expect(first.hasPrefix("HTTP/1.1 200"), "\(first)")
                }
                connection.write(raw: preface)
                let (answer, ending) = await connection.readToEnd()
                #expect(answer.hasPrefix("HTTP/1.1 505"), "after 1.1: \(after11): \(answer)")
                #expect(answer.contains(#""code":"http_version_not_supported""#), "after 1.1: \(after11): \(answer)")
                #expect(answer.contains("HTTP/2 is not supported: this server speaks HTTP/1.1 and HTTP/1.0 only"),
                        "after 1.1: \(after11): \(answer)")
                #expect(ending == .closed, "after 1.1: \(after11): \(ending)")
            }
        }
    }

    /// A chunked body whose size line announces more than the 1 MiB limit waited for that data:
    /// a few bytes behind `100001` got no answer until the body timeout (60 s), then a 408. The
    /// size line is enough now, as an oversized Content-Length is: 413 `request_too_large` at
    /// once, and a clean close (FIN). So is a later chunk that takes the body past the limit;
    /// a chunked request before it on the same connection (with an extension and a trailer) is
    /// answered as before (a 400 for its `max_tokens`, whose error body ends in a known way).
    @Test func aChunkAnnouncedOverTheBodyLimitIs413AtOnce() async throws {
        let json = #"{"prompt": "hello there", "max_tokens": 0}"#
        let head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n"
        try await LiveServer.with { server in
            for secondChunk in [false, true] {
                let connection = try RawConnection(port: server.port, readTimeout: 20)  // a busy machine is slow
                defer { connection.close() }
                connection.write(raw: head + "\(String(json.utf8.count, radix: 16));x=y\r\n\(json)\r\n0\r\nX-Trailer: 1\r\n\r\n")
                let answered = await connection.read(until: "}}")
                #expect(answered.hasPrefix("HTTP/1.1 400") && answered.contains("max_tokens"), "\(answered)")
                let started = ContinuousClock.now
                if secondChunk {
                    let first = String(repeating: "a", count: 600 * 1024)
                    #expect(await connection.sendAllOffPool(Array((head + "96000\r\n" + first + "\r\n96000\r\n{\"pro").utf8)))
                } else {
                    connection.write(raw: head + "100001\r\n{\"prompt\": \"x")
                }
                let (answer, ending) = await connection.readToEnd()
                let waited = ContinuousClock.now - started
                #expect(answer.hasPrefix("HTTP/1.1 413"), "second chunk \(secondChunk): \(answer)")
                #expect(answer.contains(#""code":"request_too_large""#), "second chunk \(secondChunk): \(answer)")
                #expect(answer.lowercased().contains("connection: close"), "second chunk \(secondChunk): \(answer)")
                #expect(ending == .closed, "second chunk \(secondChunk): \(ending)")
                #expect(waited < .seconds(10), "second chunk \(secondChunk): answered after \(waited)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    @Test func aWellFormedChunkedBodyIsServed() async throws {
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
            defer { connection.close() }
            let json = #"{"prompt": "hello there", "max_tokens": 3}"#
            connection.write(raw:
                "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n\(String(json.utf8.count, radix: 16))\r\n\(json)\r\n0\r\n\r\n")
            let answer = await connection.read(until: "\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }
    }

    /// A compressed body was read as sent and judged "not valid JSON", sending the client looking
    /// at its JSON. It is a 415 naming the coding, with `Accept-Encoding: identity` (RFC 9110
    /// §15.5.16); the body is read all the same, so the next request on the connection is served.
    @Test func aCompressedBodyIs415AndTheConnectionStaysInStep() async throws {
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
            defer { connection.close() }
            let json = #"{"prompt": "hello there", "max_tokens": 3}"#
            let gzipMagic = "\u{1F}\u{8B}\u{08}\u{00}junk"  // what a gzip body starts with; never decoded
            connection.write(raw:
                "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Encoding: identity, GZip\r\nContent-Length: \(gzipMagic.utf8.count)\r\n\r\n\(gzipMagic)")
            let refused = await connection.read(until: "}}")
            #expect(refused.hasPrefix("HTTP/1.1 415"), "\(refused)")
            #expect(refused.lowercased().contains("accept-encoding: identity"), "\(refused)")
            #expect(refused.contains(#""code":"unsupported_content_encoding""#), "\(refused)")
            #expect(refused.contains("Content-Encoding 'GZip' is not supported; send the body uncompressed (identity)"),
                    "\(refused)")
            #expect(server.backend.submitted.isEmpty)
            connection.write(raw:
                "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Encoding: identity\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
            let served = await connection.read(until: "\r\n\r\n")
            #expect(served.hasPrefix("HTTP/1.1 200"), "\(served)")
        }
    }

    /// A body declared in another charset (`charset=utf-16`, `charset=iso-8859-1`) was parsed as
    /// UTF-8 and served. It is a 415 `unsupported_charset` now, with one line saying to send UTF-8;
    /// the body is read all the same, so the connection stays in step. UTF-8 and US-ASCII, said
    /// any way (quoted, upper case), and a missing or other media type (curl -d's
    /// `application/x-www-form-urlencoded`) are served as before.
    @Test func aBodyDeclaredInAnotherCharsetIs415AndOthersAreServedAsBefore() async throws {
        let json = #"{"prompt": "hello there", "max_tokens": 3}"#
        func request(_ contentType: String?) -> String {
            "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + (contentType.map { "Content-Type: \($0)\r\n" } ?? "")
                + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
        }
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
            defer { connection.close() }
            for (contentType, charset) in [("application/json; charset=utf-16", "utf-16"),
                                           ("application/json;charset=\"ISO-8859-1\"", "ISO-8859-1"),
                                           ("text/plain; format=flowed; Charset=latin1", "latin1")] {
                connection.write(raw: request(contentType))
                let refused = await connection.read(until: "}}")
                #expect(refused.hasPrefix("HTTP/1.1 415"), "\(contentType): \(refused)")
                #expect(refused.contains(#""code":"unsupported_charset""#), "\(contentType): \(refused)")
                #expect(refused.contains("charset '\(charset)' is not supported; send the JSON body as UTF-8 "
                    + "(Content-Type: application/json; charset=utf-8, or no charset)"), "\(contentType): \(refused)")
            }
            #expect(server.backend.submitted.isEmpty)
            // The refused bodies were read: the connection is still in step.
            connection.write(raw: request("application/json"))
            let next = await connection.read(until: "\r\n\r\n")
            #expect(next.hasPrefix("HTTP/1.1 200"), "\(next)")
            for contentType in ["application/json; charset=utf-8", "application/json; charset=\"UTF-8\"",
                                "application/json; charset=us-ascii", "application/x-www-form-urlencoded", nil] {
                let fresh = try RawConnection(port: server.port, readTimeout: 15)
                defer { fresh.close() }
                fresh.write(raw: request(contentType))
                let served = await fresh.read(until: "\r\n\r\n")
                #expect(served.hasPrefix("HTTP/1.1 200"), "\(contentType ?? "no Content-Type"): \(served)")
            }
            #expect(server.backend.submitted.count == 6)
        }
    }

    // MARK: Numbers in bodies

    /// A length field that does not decode states the served model's window, as the in-range
    /// check does (a 1.5 for `max_tokens` was told "1…131072" by a 4,096-token server).
    @Test func anUndecodableLengthStatesTheServedWindow() throws {
        for (raw, field) in [(#"{"messages": [], "max_tokens": 1.5}"#, "max_tokens"),
                             (#"{"messages": [], "max_completion_tokens": "many"}"#, "max_completion_tokens"),
                             (#"{"messages": [], "max_tokens": 1e400}"#, "max_tokens")] {
            let data = Data(raw.utf8)
            var caught: (any Error)?
            do { _ = try JSONDecoder().decode(ChatCompletionBody.self, from: data) } catch { caught = error }
            let error = try #require(caught, "\(raw) decoded")
            let served = APIError.undecodable(error, body: data, maxModelLen: 4_096)
            #expect(served.param == field && served.message.contains("within 1…4096"), "\(served.message)")
            #expect(!served.message.contains("131072"), "\(served.message)")
            // Routes without a window keep the default's.
            #expect(APIError.undecodable(error, body: data).message.contains("within 1…131072"))
        }
    }

    /// A body nested past the decoder's limit is told so, not "not valid JSON"; one level
    /// less still decodes (and is served).
    @Test func aBodyNestedTooDeepIsNamedAsSuch() async throws {
        func body(_ depth: Int) -> String {  // the object itself is one level
            #"{"prompt": "hi", "max_tokens": 1, "x": "# + String(repeating: "[", count: depth - 1)
                + String(repeating: "]", count: depth - 1) + "}"
        }
        #expect(!JSONKeyCheck.nestingExceeds(3, in: Data(#"{"a": "[[[[", "b": [[1]]}"#.utf8)), "brackets in strings do not count")
        #expect(JSONKeyCheck.nestingExceeds(3, in: Data(#"{"a": "\"[", "b": [[[1]]]}"#.utf8)))
        try await LiveServer.with { server in
            let deep = try await server.post("/v1/completions", raw: body(100_000))
            #expect(deep.status == 400, "\(deep.text)")
            let message = try #require(try deep.json()["error"] as? [String: Any])["message"] as? String ?? ""
            #expect(message == "request body is nested more than 512 levels deep (arrays and objects)", "\(message)")
            #expect(try await server.post("/v1/completions", raw: body(513)).status == 400)
            #expect(try await server.post("/v1/completions", raw: body(512)).status == 200)
        }
    }

    /// A number no float holds inside a field (`logit_bias`'s values, a token-id prompt's ids)
    /// names its place and what the field takes, as one at the top level does: it was told
    /// "request body is not valid JSON" with no param. One in a field nobody reads is still
    /// served, and never blamed for another field's error.
    @Test func aNestedNumberNoFloatHoldsIsNamed() async throws {
        try await LiveServer.with { server in
            for (raw, param, expected) in [
                (#"{"prompt": "x", "logit_bias": {"1": 1e400}}"#, "logit_bias.1", "-100…100"),
                (#"{"prompt": "x", "logit_bias": {"7": -1e-400}}"#, "logit_bias.7", "-100…100"),
                (#"{"prompt": [[1, 1e400]]}"#, "prompt[0][1]", "token ids within 0…2147483647"),
                (#"{"prompt": [1e400, 1]}"#, "prompt[0]", "token ids within 0…2147483647"),
            ] {
                let reply = try await server.post("/v1/completions", raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["param"] as? String == param, "\(raw): \(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(message.contains("invalid value") && message.contains(expected), "\(raw): \(message)")
            }
            let blamed = try await server.post("/v1/completions", raw: #"{"prompt": "x", "x_note": {"a": 1e400}, "max_tokens": "5"}"#)
            #expect(blamed.status == 400)
            #expect(try #require(try blamed.json()["error"] as? [String: Any])["param"] as? String == "max_tokens", "\(blamed.text)")
            #expect(server.backend.submitted.isEmpty)
            let served = try await server.post("/v1/completions", raw: #"{"prompt": "x", "max_tokens": 1, "x_note": {"a": 1e400}}"#)
            #expect(served.status == 200, "\(served.text)")
        }
    }

    /// An integer field's `1e-400` was decoded as 0 and served: `"seed": 1e-400`, `"min_tokens":
    /// 1e-400`, `"top_k": 1e-400` and a token-id prompt `[1e-400]` (token 0) came back 200, and
    /// `"max_tokens": 1e-400` was told "got 0", where `"temperature": 1e-400` is refused naming
    /// the number. A nonzero number that underflows to 0 is refused the same way in every field
    /// the route reads, with what the field takes; zero written any way is still 0, and such a
    /// number in a field nobody reads is still served.
    @Test func anIntegerFieldsNumberThatUnderflowsToZeroIsRefused() async throws {
        try await LiveServer.with { server in
            for (raw, param, expected) in [
                (#"{"prompt": "x", "seed": 1e-400}"#, "seed", "an integer within"),
                (#"{"prompt": "x", "max_tokens": 3, "min_tokens": 1e-400}"#, "min_tokens", "an integer within 0…max_tokens"),
                (#"{"prompt": "x", "top_k": -1E-999}"#, "top_k", "an integer within -1…2147483647"),
                (#"{"prompt": "x", "max_tokens": 0.5e-330}"#, "max_tokens", "an integer within 1…"),
                (#"{"prompt": [1e-400]}"#, "prompt[0]", "token ids within 0…2147483647"),
                (#"{"prompt": [[5, 1e-400]]}"#, "prompt[0][1]", "token ids within 0…2147483647"),
            ] {
                let reply = try await server.post("/v1/completions", raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(raw): \(reply.text)")
                #expect(error["param"] as? String == param, "\(raw): \(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(message.contains("has an invalid value") && message.lowercased().contains("e-") && message.contains(expected),
                        "\(raw): \(message)")
            }
            let chat = try await server.post("/v1/chat/completions",
                                             raw: #"{"messages": [{"role": "user", "content": "x"}], "seed": 1e-400}"#)
            #expect(chat.status == 400, "\(chat.text)")
            #expect(server.backend.submitted.isEmpty)
            for raw in [#"{"prompt": "x", "max_tokens": 1, "seed": 0e-400}"#, #"{"prompt": [0.0e5], "max_tokens": 1}"#,
                        #"{"prompt": "x", "max_tokens": 1, "x_note": {"a": 1e-400}}"#] {
                let served = try await server.post("/v1/completions", raw: raw)
                #expect(served.status == 200, "\(raw): \(served.text)")
            }
        }
    }

    /// A nonzero number that underflows to 0 in a 64-bit float (`"temperature": 1e-400`) is
    /// refused on purpose, as everywhere in xds (flags, TOML, commands, traces): read as 0 it would
    /// be served as a value the client did not write. The refusal used to say only "has an
    /// invalid value 1e-400 (expected a number within 0…2)", which 1e-400 is: the client could not
    /// tell what was wrong. It now says it underflows and to write 0 if 0 is meant, as the other
    /// readers do, with the field's range. A number too large for a float is not said to underflow.
    @Test func aNumberThatUnderflowsIsToldSoNotOutOfRange() async throws {
        try await LiveServer.with { server in
            let chat = #"{"messages": [{"role": "user", "content": "x"}], "#
            for (route, raw, param, expected) in [
                ("/v1/chat/completions", chat + #""temperature": 1e-400}"#, "temperature", "a number within 0…2"),
                ("/v1/chat/completions", chat + #""top_p": -1E-999}"#, "top_p", "a number within 0…1"),
                ("/v1/completions", #"{"prompt": "x", "logit_bias": {"7": 1e-400}}"#, "logit_bias.7", "-100…100"),
                ("/v1/completions", #"{"prompt": "x", "seed": 1e-400}"#, "seed", "an integer within"),
                ("/v1/completions", #"{"prompt": [[5, 0.5e-330]]}"#, "prompt[0][1]", "token ids within 0…2147483647"),
            ] {
                let reply = try await server.post(route, raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(raw): \(reply.text)")
                #expect(error["param"] as? String == param, "\(raw): \(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(message.contains("underflows to 0 in a 64-bit float; write 0 if 0 is meant"), "\(raw): \(message)")
                #expect(message.contains(param) && message.contains(expected), "\(raw): \(message)")
            }
            let large = try await server.post("/v1/chat/completions", raw: chat + #""temperature": 1e400}"#)
            let message = try #require(try large.json()["error"] as? [String: Any])["message"] as? String ?? ""
            #expect(large.status == 400 && !message.contains("underflow") && message.contains("0…2"), "\(message)")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A value of the wrong type is told what its field takes, in every field: `"model": 123`,
    /// `"messages": {…}` and `"stop": ["a", 1]` were told only "field … has the wrong type" (the
    /// table of expected values covers the numeric fields), where OpenAI says "expected a string".
    @Test func aWrongTypeSaysWhatTheFieldTakes() async throws {
        try await LiveServer.with { server in
            let chat = #"{"messages": [{"role": "user", "content": "x"}], "#
            for (route, raw, param, expected) in [
                ("/v1/chat/completions", chat + #""model": 123}"#, "model", "(expected a string)"),
                ("/v1/chat/completions", #"{"messages": {"role": "user", "content": "x"}}"#, "messages", "(expected an array)"),
                ("/v1/chat/completions", chat + #""stop": ["a", 1]}"#, "stop[1]", "(expected a string)"),
                ("/v1/completions", #"{"prompt": "x", "user": true}"#, "user", "(expected a string)"),
                ("/v1/completions", #"{"prompt": "x", "stream_options": 1, "stream": true}"#, "stream_options", "(expected an object)"),
            ] {
                let reply = try await server.post(route, raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(raw): \(reply.text)")
                #expect(error["param"] as? String == param, "\(raw): \(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(message == "field '\(param)' has the wrong type \(expected)", "\(raw): \(message)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A wrongly typed value under an object's key that is a number (`logit_bias {"1": "x"}`)
    /// is named by its key, `logit_bias.1`, as a number no float holds there is: it was named
    /// `logit_bias[1]`, an array index, for an object that has no index 1.
    @Test func aWrongTypeUnderANumericKeyIsNamedByItsKey() async throws {
        try await LiveServer.with { server in
            let reply = try await server.post("/v1/completions", raw: #"{"prompt": "x", "logit_bias": {"50256": "x"}}"#)
            #expect(reply.status == 400, "\(reply.text)")
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["param"] as? String == "logit_bias.50256", "\(reply.text)")
            #expect((error["message"] as? String ?? "").hasPrefix("field 'logit_bias.50256' has the wrong type (expected a number within -100…100)"),
                    "\(reply.text)")
            // An array's element keeps its index.
            let listed = try await server.post("/v1/completions", raw: #"{"prompt": "x", "stop": ["a", 1]}"#)
            #expect(try #require(try listed.json()["error"] as? [String: Any])["param"] as? String == "stop[1]", "\(listed.text)")
        }
    }

    /// A message's `name` and `tool_call_id` are strings (OpenAI refuses any other type); they
    /// were never read, so `"name": 5` was served as if absent. A string is still served.
    @Test func aMessagesNameOrToolCallIDOfTheWrongTypeIsRefused() async throws {
        try await LiveServer.with { server in
            for (field, value) in [("name", "5"), ("tool_call_id", "{}")] {
                let raw = #"{"messages": [{"role": "user", "content": "x", ""# + field + #"": "# + value + "}]}"
                let reply = try await server.post("/v1/chat/completions", raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(raw): \(reply.text)")
                #expect(error["param"] as? String == "messages[0].\(field)", "\(reply.text)")
                #expect(error["message"] as? String == "field 'messages[0].\(field)' has the wrong type (expected a string)",
                        "\(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
            let served = try await server.post("/v1/chat/completions", raw:
                #"{"messages": [{"role": "user", "content": "x", "name": "bob"}, {"role": "tool", "content": "r", "tool_call_id": "a"}], "max_tokens": 1}"#)
            #expect(served.status == 200, "\(served.text)")
        }
    }

    @Test func everyNumberIsCheckedAgainstAStatedRange() async throws {
        let chat: [String: Any] = ["messages": [["role": "user", "content": "hi"]]]
        // (field, value, what the message must say)
        let cases: [(String, Any, String)] = [
            ("max_tokens", 0, "1…131072"), ("max_tokens", -5, "1…131072"), ("max_tokens", 1_000_000, "1…131072"),
            ("max_completion_tokens", 0, "1…131072"),
            ("temperature", 2.5, "0.0…2.0"), ("temperature", -0.1, "0.0…2.0"),
            ("top_p", 1.5, "0.0…1.0"), ("presence_penalty", 3, "-2.0…2.0"), ("frequency_penalty", -2.5, "-2.0…2.0"),
            ("top_logprobs", 21, "0…20"), ("n", 2, "n = 1"), ("n", 0, "n = 1"), ("n", -3, "n = 1"),
            // Ignored by the simulation, checked all the same (they were answered 200).
            ("top_k", -2, "-1…2147483647"), ("min_p", 1.5, "0.0…1.0"), ("repetition_penalty", -1, "above 0"),
            ("repetition_penalty", 0, "above 0"), ("logit_bias", ["50256": 1e308], "-100.0…100.0"),
            ("logit_bias", ["abc": 1], "token ids within 0…2147483647"),
            ("logit_bias", ["-1": 1], "token ids within 0…2147483647"),
        ]
        try await LiveServer.with { server in
            for (field, value, range) in cases {
                var body = chat
                body[field] = value
                let reply = try await server.post("/v1/chat/completions", json: body)
                #expect(reply.status == 400, "\(field)=\(value): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["param"] as? String == field, "\(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(message.contains(field) && message.contains(range), "\(field)=\(value): \(message)")
                // Advice only where it makes sense: "send 0 requests instead" is none.
                if let n = value as? Int, field == "n", n < 1 { #expect(!message.contains("send"), "\(message)") }
            }
            // Numbers that do not even decode name the field and what it takes, with no Swift text.
            for raw in [#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e400}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 99999999999999999999999}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "temperature": 1e400}"#,
                        // Valid JSON whose magnitude underflows: Foundation refuses it too.
                        #"{"messages": [{"role": "user", "content": "x"}], "temperature": 1e-400}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "seed": 1e30}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "seed": 1.5}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "seed": "x"}"#,
                        #"{"messages": [{"role": "user", "content": "x"}], "logit_bias": [1, 2]}"#] {
                let reply = try await server.post("/v1/chat/completions", raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let message = try #require(try reply.json()["error"] as? [String: Any])["message"] as? String ?? ""
                #expect(["max_tokens", "temperature", "seed", "logit_bias"].contains { message.contains($0) }, "\(message)")
                #expect(message.contains("within") || message.contains("an integer"), "\(message)")
                for leak in ["Swift.", "DecodingError", "Context(", "codingPath", "Int64"] {
                    #expect(!reply.text.contains(leak), "\(reply.text)")
                }
            }
            // The legacy endpoint: logprobs count, token ids, best_of, a stream_options of the wrong shape.
            let legacy: [([String: Any], String)] = [
                (["prompt": "x", "logprobs": 6], "logprobs"), (["prompt": [1, 2, -3]], "prompt"),
                (["prompt": "x", "best_of": 3], "best_of"),
                (["prompt": "x", "stream": true, "stream_options": ["include_usage": 3]], "stream_options.include_usage"),
                // Stream options without a stream: OpenAI's 400, not silently dropped.
                (["prompt": "x", "stream_options": ["include_usage": true]], "stream_options"),
                (["prompt": "x", "stream": false, "stream_options": [String: Any]()], "stream_options"),
            ]
            for (body, field) in legacy {
                let reply = try await server.post("/v1/completions", json: body)
                #expect(reply.status == 400, "\(body): \(reply.text)")
                #expect(try #require(try reply.json()["error"] as? [String: Any])["param"] as? String == field)
            }
            #expect(server.backend.submitted.isEmpty)
            // Neighbours inside the ranges still work.
            var fine = chat
            fine["temperature"] = 2
            fine["top_p"] = 0
            fine["max_tokens"] = 131_072
            fine["presence_penalty"] = -2
            fine["seed"] = -7
            fine["top_k"] = -1
            fine["min_p"] = 1
            fine["repetition_penalty"] = 1.1
            fine["logit_bias"] = ["50256": -100, "0": 100]
            #expect(try await server.post("/v1/chat/completions", json: fine).status == 200)
            #expect(server.backend.submitted.last?.maxTokens == 16_384)
            // (Asking for log-probabilities at all is refused: ClientOptionTests.)
            #expect(try await server.post("/v1/chat/completions", json: chat.merging(["logprobs": false]) { $1 }).status == 200)
        }
    }

    /// Bytes that are not UTF-8 are named as such (they were "field 'messages[0].content' has the
    /// wrong type", pointing at a field that was fine).
    @Test func aBodyThatIsNotUTF8SaysSo() async throws {
        try await LiveServer.with { server in
            var body = Data(#"{"messages": [{"role": "user", "content": "caf"#.utf8)
            body.append(contentsOf: [0xE9, 0xFF])
            body.append(contentsOf: Array(#""}]}"#.utf8))
            let reply = try await server.request("POST", "/v1/chat/completions", body: body, token: nil)
            #expect(reply.status == 400, "\(reply.text)")
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["message"] as? String == "request body is not valid UTF-8 (JSON must be UTF-8)")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A body in UTF-16 or UTF-32 (Python's `json.dumps(...).encode("utf-16")`) was served:
    /// Foundation's decoder recognises those encodings, while every check made on the body's
    /// bytes reads them as UTF-8, so a key given twice, or a `charset` the server refuses when it is
    /// declared, went through unseen. Such a body is refused as not UTF-8, as the message says.
    @Test func aBodyInUTF16OrUTF32IsRefusedAsNotUTF8() async throws {
        try await LiveServer.with { server in
            let once = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#
            let twice = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "max_tokens": 900}"#
            for text in [once, twice] {
                for encoding: String.Encoding in [.utf16, .utf16LittleEndian, .utf16BigEndian, .utf32LittleEndian, .utf32BigEndian] {
                    let body = try #require(text.data(using: encoding))
                    let reply = try await server.request("POST", "/v1/chat/completions", body: body, token: nil)
                    #expect(reply.status == 400, "\(encoding): \(reply.text)")
                    let error = try #require(try reply.json()["error"] as? [String: Any], "\(encoding): \(reply.text)")
                    #expect(error["message"] as? String == "request body is not valid UTF-8 (JSON must be UTF-8)", "\(encoding)")
                }
            }
            #expect(server.backend.submitted.isEmpty)
            // UTF-8 with a byte-order mark is UTF-8 (RFC 8259 lets a parser ignore the mark).
            let marked = try await server.request("POST", "/v1/chat/completions", body: Data([0xEF, 0xBB, 0xBF] + Array(once.utf8)), token: nil)
            #expect(marked.status == 200, "\(marked.text)")
        }
    }

    /// OpenAI answers `stream_options` without `stream: true` with a 400 naming the parameter;
    /// so do we (it used to be accepted and ignored). A null `stream_options` is no options.
    @Test func streamOptionsNeedAStream() async throws {
        try await LiveServer.with { server in
            let chat: [String: Any] = ["messages": [["role": "user", "content": "hi"]], "stream_options": ["include_usage": true]]
            let reply = try await server.post("/v1/chat/completions", json: chat)
            #expect(reply.status == 400, "\(reply.text)")
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["type"] as? String == "invalid_request_error" && error["param"] as? String == "stream_options")
            #expect(error["message"] as? String == "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
            #expect(server.backend.submitted.isEmpty, "nothing reached the engine")
            let raw = #"{"messages": [{"role": "user", "content": "hi"}], "stream_options": null}"#
            #expect(try await server.post("/v1/chat/completions", raw: raw).status == 200)
            #expect(try await server.post("/v1/chat/completions", json: chat.merging(["stream": true]) { $1 }).status == 200)
        }
    }

    @Test func aPromptBeyondTheContextWindowIsRefused() async throws {
        try await LiveServer.with { server in
            let ids = Array(repeating: 7, count: 131_072)
            let reply = try await server.post("/v1/completions", json: ["prompt": ids])
            #expect(reply.status == 400, "\(reply.text.prefix(300))")
            let error = try #require(try reply.json()["error"] as? [String: Any])
            #expect(error["code"] as? String == "context_length_exceeded")
            #expect((error["message"] as? String)?.contains("131072") == true)
            // One token less fits, with max_tokens lowered to what the window leaves.
            let fits = try await server.post("/v1/completions", json: ["prompt": Array(ids.dropLast()), "max_tokens": 100])
            #expect(fits.status == 200, "\(fits.text.prefix(300))")
            #expect(server.backend.submitted.last?.maxTokens == 1)
        }
    }

    @Test func anOverlongAdminCommandIs400InTheErrorShape() async throws {
        try await LiveServer.with { server in
            let reply = try await server.post(
                "/admin/commands", json: ["command": String(repeating: "x", count: 5000)], token: LiveServer.token)
            #expect(reply.status == 400)
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["param"] as? String == "command")
            #expect((error["message"] as? String)?.contains("0…1024") == true)
            #expect(server.link.receivedCommands.isEmpty)
        }
    }

    // MARK: Liveness over HTTP

    @Test func aStuckEngineIsNotReadyAndEveryRouteStillAnswersInBoundedTime() async throws {
        let core = WedgeableCore(base: RecordingEngineLink.smallPod(), acceptsRequests: false)
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01,
                              bounds: EngineHost.Bounds(stall: 0.3, backlog: 0.3, command: 1, admission: 1))
        host.start()
        defer {
            core.release()
            host.stop(timeout: 5)
        }
        try await LiveServer.with(host: host) { server in
            let ready = try await server.get("/ready")
            #expect(ready.status == 200, "\(ready.text)")
            #expect(try ready.json()["status"] as? String == "ready")
            core.wedge()
            // Generous: eventually returns as soon as it holds; a loaded machine can take seconds.
            #expect(await eventually(within: 30) { core.inside.load(ordering: .acquiring) })
            #expect(await eventually(within: 30) { host.liveness().state == .stalled })
            let stuck = try await server.get("/ready")
            #expect(stuck.status == 503)
            let body = try stuck.json()
            #expect(body["ready"] as? Bool == false && body["status"] as? String == "not_ready")
            #expect((body["reason"] as? String)?.contains("has not advanced simulated time") == true, "\(stuck.text)")
            let health = try await server.get("/health")
            #expect(health.status == 200)
            #expect((try health.json()["engine"] as? String)?.contains("has not advanced") == true, "\(health.text)")

            let start = ContinuousClock.now
            let command = try await server.command("drain node 1")
            // The host answers within its 1 s command bound; the rest is slack for a busy machine.
            let took = ContinuousClock.now - start
            #expect(took < .seconds(15), "the command took \(took)")
            #expect(command.status == 503, "\(command.text)")
            #expect(try command.json()["accepted"] as? Bool == false)
            #expect((try command.json()["message"] as? String)?.hasPrefix("the engine did not apply the command within 1 s") == true)

            let completion = try await server.post(
                "/v1/chat/completions", json: ["messages": [["role": "user", "content": "hi"]]])
            #expect(completion.status == 503, "\(completion.text)")
            #expect(completion.text.contains("cannot take requests"))
        }
    }

    // MARK: Degraded during a restart

    @Test func aRestartUnderWayIsDegradedOverHTTP() async throws {
        let link = RecordingEngineLink()
        try await LiveServer.with(link: link) { server in
            link.update { s in
                s.activeFaults = [FaultStatus(id: 1, description: "fault npu 20 · detected in 3.0 s", injectedAt: 10, detectedAt: 13)]
            }
            link.log(EngineEvent(time: 13, kind: .recovery, severity: .warning,
                                 message: "fault 1: decode failover fell back to a restart of decode-0: out for 300 s; 4 requests re-prefilled, 0 failed"))
            let reply = try await server.get("/ready")
            #expect(reply.status == 200)
            let body = try reply.json()
            #expect(body["ready"] as? Bool == true && body["status"] as? String == "degraded")
            #expect((body["reason"] as? String)?.contains("restart of decode-0") == true, "\(reply.text)")
            // Recovered: ready again.
            link.update { s in s.activeFaults[0].recoveredAt = 313 }
            #expect(try await server.get("/ready").json()["status"] as? String == "ready")
        }
    }

    @Test func theEnginesOwnRestartReadsAsDegraded() throws {
        var config = EngineConfiguration(deployment: TestDeployments.faultPod)
        config.syntheticRate = 5
        config.recoveryPolicy = "restart-world"
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 5)
        #expect(ServingReadiness(engine.snapshot()).status == "ready")
        #expect(engine.apply(.faultNPU(20)).accepted)
        engine.run(until: 60)  // heartbeats detect it; the world restarts (300 s)
        let readiness = ServingReadiness(engine.snapshot())
        #expect(readiness.ready && readiness.status == "degraded", "\(readiness)")
        #expect(readiness.reason.contains("restart"), "\(readiness.reason)")
    }
}
