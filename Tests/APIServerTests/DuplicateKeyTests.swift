import Foundation
import Synchronization
import SimKit
import Testing
import XDSTestSupport

@testable import APIServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A body with a key given twice is ambiguous (Foundation keeps the first, Python's `json` the
/// last), and a lone surrogate escape is no text: both get a 400 that names the field.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct DuplicateKeyTests {
    @Test func theScannerFindsDuplicatesAndLoneSurrogatesWithTheirPath() {
        func find(_ text: String, surrogates: Bool = true) -> JSONKeyCheck.Finding? {
            JSONKeyCheck.firstFinding(in: Array(text.utf8), surrogates: surrogates)
        }
        #expect(find(#"{"a": 1, "b": 2}"#) == nil)
        #expect(find(#"{"max_tokens": 2, "max_tokens": -1}"#) == .duplicateKey(path: "max_tokens"))
        // Equal keys in different objects, and a key equal to a string value, are fine.
        #expect(find(#"{"m": [{"role": "user"}, {"role": "user"}], "role": "role"}"#) == nil)
        #expect(find(#"{"messages": [{"role": "a"}, {"role": "b", "role": "c"}]}"#)
                == .duplicateKey(path: "messages[1].role"))
        #expect(find(#"{"o": {"x": {"k": 1, "k": 2}}}"#) == .duplicateKey(path: "o.x.k"))
        // Braces, quotes and escapes inside strings are text.
        #expect(find(#"{"p": "{\"p\": 1, \"p\": 2}", "q": "a\\"}"#) == nil)
        #expect(find(#"{"p": "x\"y", "p": 1}"#) == .duplicateKey(path: "p"))
        // Surrogates: a pair is text; a lone high, a lone low, a high before a non-surrogate are not.
        #expect(find(#"{"prompt": "\ud83d\ude00"}"#) == nil)
        #expect(find(#"{"prompt": "a\ud800"}"#) == .unpairedSurrogate(path: "prompt", escape: #"\ud800"#))
        #expect(find(#"{"prompt": "\uDC00b"}"#) == .unpairedSurrogate(path: "prompt", escape: #"\uDC00"#))
        #expect(find(#"{"m": [{"content": "\ud800\u0041"}]}"#)
                == .unpairedSurrogate(path: "m[0].content", escape: #"\ud800"#))
        #expect(find(#"{"prompt": "a\ud800"}"#, surrogates: false) == nil)
        #expect(find(#""\ud800""#) == .unpairedSurrogate(path: nil, escape: #"\ud800"#))
        // Any depth: an explicit stack, no recursion.
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        #expect(find(deep) == nil)
        // A trailing comma (Foundation's parser takes it; RFC 8259 and OpenAI's server do not),
        // named by the object or array it ends; commas inside strings and between items are fine.
        #expect(find(#"{"prompt": "hi", "max_tokens": 3,}"#) == .trailingComma(path: nil))
        #expect(find(#"{"prompt": [1, 2, ]}"#) == .trailingComma(path: "prompt"))
        #expect(find("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"},\n ]}") == .trailingComma(path: "messages"))
        #expect(find(#"{"o": {"k": 1 ,  }}"#) == .trailingComma(path: "o"))
        #expect(find(#"{"s": "a,}", "t": [",]", 2]}"#) == nil)
        // A bare word where a value goes (JSON has no NaN or Infinity), with the field holding
        // it; numbers with exponents, the three literals, and words inside strings are fine.
        #expect(find(#"{"temperature": NaN}"#) == .bareWord(path: "temperature", word: "NaN"))
        #expect(find(#"{"m": [{"x": 1e5, "y": -2.5E-3, "z": true}, -Infinity]}"#) == .bareWord(path: "m[1]", word: "-Infinity"))
        #expect(find(#"{"a": null, "b": false, "c": "NaN", "d": [1E+2, -0.5e1]}"#) == nil)
        #expect(find("Infinity") == .bareWord(path: nil, word: "Infinity"))
        // Truncated or junk input ends the scan without a finding (the decoder reports it).
        for junk in ["{", #"{"a"#, "}}]]", #"{"a": "\u12"#, "\u{0}\u{FF}"] { _ = find(junk) }
    }

    /// Seeded, bounded: random objects built with known duplicates (or none) are judged as built.
    @Test func randomObjectsAreJudgedAsBuilt() {
        var rng = RandomStreams(seed: 7).stream("duplicate-keys")
        for round in 0..<400 {
            let plantAt = round % 2 == 0 ? Int.random(in: 0..<6, using: &rng) : -1
            var keys = (0..<6).map { "k\($0)" }
            if plantAt >= 1 { keys[plantAt] = keys[plantAt - 1] }
            var text = "{"
            for (i, key) in keys.enumerated() {
                if i > 0 { text += ", " }
                let value: String
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: value = "[1, {\"\(key)\": \"}\"}, \"]\"]"  // the same key one level down
                case 1: value = "\"\\\"\(key)\\\": 1\""
                case 2: value = "{\"a\": {}, \"b\": []}"
                default: value = "\(Int.random(in: -5...5, using: &rng))"
                }
                text += "\"\(key)\": \(value)"
            }
            text += "}"
            let finding = JSONKeyCheck.firstFinding(in: Array(text.utf8))
            if plantAt >= 1 {
                #expect(finding == .duplicateKey(path: keys[plantAt]), "\(text)")
            } else {
                #expect(finding == nil, "\(text)")
            }
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil, "\(text)")
        }
    }

    /// Each key of an object used to be inserted into a copy of the object's key set while the
    /// scanner's stack still held the original, so every key copied the set whole: a 1 MB body
    /// of 110,000 keys in one object (`logit_bias`, any extra field) took 93 s of a core in the
    /// release build, on every request that sent one, before the body was even decoded. The set
    /// now grows in place. A complexity check, not a timing: the scan runs on a thread of its own
    /// and is given 60 s, where the linear scan takes about a second in a debug build and the
    /// quadratic one did not end within minutes (a plain call would hang the suite instead of failing).
    @Test func anObjectWithAHundredThousandKeysIsScannedInLinearTime() async {
        let count = 110_000
        var text = #"{"prompt": "hi", "logit_bias": {"#
        for i in 0..<count { text += (i == 0 ? "" : ",") + "\"\(String(i, radix: 16))\":0" }
        text += "}}"
        #expect(text.utf8.count > 1_000_000 && text.utf8.count < 1 << 20, "as big as a body may be")
        // The same body with its first key again at the end: found, with its path.
        let repeated = String(text.dropLast(2)) + #","0":1}}"#
        // Awaited, not waited for on a semaphore: a blocked wait held one of the cooperative
        // pool's two threads from every other test for as long as the scan took. The first of
        // the scan and the 60 s bound resumes the test.
        final class Once: Sendable {
            let taken = Atomic<Bool>(false)
            func claim() -> Bool { !taken.exchange(true, ordering: .acquiringAndReleasing) }
        }
        let bodies = [Array(text.utf8), Array(repeated.utf8)]
        let findings: [JSONKeyCheck.Finding?]? = await withCheckedContinuation { continuation in
            let once = Once()
            Thread {
                let found = bodies.map { JSONKeyCheck.firstFinding(in: $0) }
                if once.claim() { continuation.resume(returning: found) }
            }.start()
            DispatchQueue.global().asyncAfter(deadline: .now() + 60) {
                if once.claim() { continuation.resume(returning: nil) }
            }
        }
        guard let findings else {
            Issue.record("scanning two 1 MB bodies of 110,000 keys took over 60 s")
            return
        }
        #expect(findings == [nil, .duplicateKey(path: "logit_bias.0")])
    }

    @Test func theServerRefusesAKeyGivenTwiceAndNamesIt() async throws {
        try await LiveServer.with { server in
            let raw = #"{"prompt": "hi", "max_tokens": 2, "max_tokens": -1}"#
            let reply = try await server.post("/v1/completions", raw: raw)
            #expect(reply.status == 400, "\(reply.text)")
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["param"] as? String == "max_tokens")
            #expect(error["message"] as? String
                    == "field 'max_tokens' appears more than once in one object; send each field once")
            let chat = #"{"messages": [{"role": "user", "role": "system", "content": "x"}]}"#
            let second = try await server.post("/v1/chat/completions", raw: chat)
            #expect(second.status == 400, "\(second.text)")
            #expect(try #require(try second.json()["error"] as? [String: Any])["param"] as? String == "messages[0].role")
            #expect(server.backend.submitted.isEmpty)
            // The same body with each key once is served.
            #expect(try await server.post("/v1/completions", raw: #"{"prompt": "hi", "max_tokens": 2}"#).status == 200)
        }
    }

    @Test func theServerRefusesATrailingComma() async throws {
        try await LiveServer.with { server in
            for (path, raw) in [("/v1/completions", #"{"prompt": "hi", "max_tokens": 3,}"#),
                                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"},]}"#),
                                ("/tokenize", #"{"prompt": "a b",}"#)] {
                let reply = try await server.post(path, raw: raw)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect((error["message"] as? String ?? "").contains("ends with a comma before its closing bracket"), "\(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// `NaN` and `Infinity` are not JSON; Foundation refused them as "request body is not valid
    /// JSON", naming no field, on every route. The field is named, with what it takes.
    @Test func aNaNOrInfinityNamesItsField() async throws {
        let chat = #"{"model": "deepseek-r1", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}"#
        try await LiveServer.with { server in
            for (path, raw, token, field, says) in [
                ("/v1/chat/completions", chat, nil, "temperature", "holds NaN, which is not JSON: JSON numbers are finite (expected a number within 0…2)"),
                ("/v1/completions", #"{"prompt": "hi", "max_tokens": Infinity}"#, nil, "max_tokens", "holds Infinity, which is not JSON"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": -Infinity}]}"#, nil, "messages[0].content", "holds -Infinity"),
                ("/admin/commands", #"{"command": NaN}"#, LiveServer.token, "command", "holds NaN, which is not JSON"),
                ("/admin/preview", #"{"command": "drain node 1", "duration": undefined}"#, LiveServer.token, "duration",
                 "holds the bare word undefined, which is not JSON (its words are true, false and null)"),
            ] as [(String, String, String?, String, String)] {
                let reply = try await server.post(path, raw: raw, token: token)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(error["param"] as? String == field, "\(path): \(reply.text)")
                #expect(message.contains("'\(field)' \(says)"), "\(path): \(message)")
                #expect(!message.contains("\n"))
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A key given twice whose second value is `NaN`, `Infinity`, `-Infinity` or a number no float
    /// holds: the decoder refuses the body for that value, and the scan that names it stopped at
    /// the repeated key (a finding the decoder's refusal has no use for), so the client was told
    /// "request body is not valid JSON" with `param: null`. It gets what the value alone gets:
    /// the field named, the value and what the field takes. So does such a value after a
    /// trailing comma elsewhere (the other finding the decoder lets through).
    @Test func aRepeatedKeysNonFiniteValueIsNamedAsTheSingleOneIs() async throws {
        let chat = #"{"messages": [{"role": "user", "content": "hi"}], "#
        try await LiveServer.with { server in
            for word in ["NaN", "Infinity", "-Infinity"] {
                for (path, single, repeated) in [
                    ("/v1/completions", #"{"prompt": "hi", "max_tokens": \#(word)}"#,
                     #"{"prompt": "hi", "max_tokens": 4, "max_tokens": \#(word)}"#),
                    ("/v1/chat/completions", chat + #""max_tokens": \#(word)}"#, chat + #""max_tokens": 4, "max_tokens": \#(word)}"#),
                    ("/v1/chat/completions", chat + #""temperature": \#(word)}"#, chat + #""temperature": 1, "temperature": \#(word)}"#),
                    ("/v1/completions", #"{"prompt": "hi", "max_tokens": \#(word)}"#,
                     #"{"prompt": "hi", "stop": ["a",], "max_tokens": \#(word)}"#),
                ] {
                    let one = try await server.post(path, raw: single), two = try await server.post(path, raw: repeated)
                    #expect(one.status == 400 && two.status == 400, "\(path): \(two.text)")
                    let expected = try #require(try one.json()["error"] as? [String: Any], "\(one.text)")
                    let got = try #require(try two.json()["error"] as? [String: Any], "\(two.text)")
                    let field = repeated.contains("temperature") ? "temperature" : "max_tokens"
                    #expect(got["param"] as? String == field, "\(path) \(repeated): \(two.text)")
                    #expect(got["message"] as? String == expected["message"] as? String, "\(path) \(repeated): \(two.text)")
                    #expect((got["message"] as? String ?? "").contains(word), "\(two.text)")
                }
            }
            // A number no float holds the decoder reads past when it is the second (it keeps the
            // first): the body is refused for the repeat, also naming the field.
            let twice = try await server.post("/v1/completions", raw: #"{"prompt": "hi", "max_tokens": 4, "max_tokens": 1e400}"#)
            #expect(twice.status == 400 && twice.text.contains(#""param":"max_tokens""#), "\(twice.text)")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A number JSON's grammar does not allow (`+1`, `.5`, `01`, `1.`): Foundation refuses the body
    /// as "request body is not valid JSON" with `param: null`; the field is named, with the number
    /// as written and what the field takes, as for `NaN`.
    @Test func aMalformedNumberNamesItsField() async throws {
        let chat = #"{"messages": [{"role": "user", "content": "hi"}], "#
        try await LiveServer.with { server in
            for (path, raw, field, number) in [
                ("/v1/chat/completions", chat + #""top_p": +1}"#, "top_p", "+1"),
                ("/v1/chat/completions", chat + #""top_p": .5}"#, "top_p", ".5"),
                ("/v1/completions", #"{"prompt": "hi", "max_tokens": 01}"#, "max_tokens", "01"),
                ("/v1/completions", #"{"prompt": "hi", "temperature": 1.}"#, "temperature", "1."),
                ("/v1/completions", #"{"prompt": "hi", "max_tokens": -}"#, "max_tokens", "-"),
                ("/v1/completions", #"{"prompt": "hi", "logit_bias": {"5": 1e}}"#, "logit_bias.5", "1e"),
            ] {
                let reply = try await server.post(path, raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["param"] as? String == field, "\(raw): \(reply.text)")
                #expect((error["message"] as? String ?? "").hasPrefix("field '\(field)' holds \(number), which is not a JSON number"),
                        "\(raw): \(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A body cut short or closed too often (Foundation on Linux refuses it as "request body is
    /// not valid JSON" with no place) is told what is wrong and at which byte (the first is byte
    /// 1), in the same 400 `invalid_request_error` with `param: null`; the admin routes share the
    /// decoder and say the same, with their `invalid_body` code.
    @Test func aBodyCutShortOrClosedTooOftenIsToldWhereTheJSONEnds() async throws {
        func find(_ text: String, grammar: Bool = true) -> JSONKeyCheck.Finding? {
            JSONKeyCheck.firstFinding(in: Array(text.utf8), ambiguities: false, grammar: grammar)
        }
        // Whitespace after the last byte is not where the closer goes; an escaped quote is text.
        #expect(find("[1, 2\r\n") == .endsBeforeClosing(closers: "]", outermost: "array", after: 5))
        #expect(find(#"{"prompt": "hi\"}"#) == .endsInsideString(start: 12))
        #expect(find(#"{"a": {"b": [1]}"#) == .endsBeforeClosing(closers: "}", outermost: "object", after: 16))
        let deep = String(repeating: "[", count: 600)
        #expect(JSONKeyCheck.message(try #require(find(deep))).text
                    == "request body ends before its JSON array closes (']]]]]]]]…' (600 closers) are missing after byte 600)")
        #expect(find("}") == .unexpected(at: 1, found: "a '}'", due: "a value"))
        #expect(find("\u{FEFF}{\"a\": 1} ") == nil, "the byte-order mark the decoder skips")
        #expect(find(#"{"stop": ["a",], "n": 1}"#) == nil, "a trailing comma, which the decoder takes, is left to its own finding")
        #expect(find("{\"a\": 1} \n") == nil)
        // Only when asked (the decoder refused the body without a place): a body it took is not read so.
        #expect(find(#"{"prompt":"hi""#, grammar: false) == nil && find(#"{"a":1}}"#, grammar: false) == nil)
        let chat = #"{"messages":[{"role":"user","content":"hi"}"#
        try await LiveServer.with { server in
            for (path, raw, says) in [
                ("/v1/completions", #"{"prompt":"hi""#,
                 "request body ends before its JSON object closes (a '}' is missing after byte 14)"),
                ("/v1/completions", #"{"prompt":"hi","max_tokens":4"#,
                 "request body ends before its JSON object closes (a '}' is missing after byte 29)"),
                ("/v1/completions", #"{"prompt":"hi","stream":tru"#,
                 "request body ends before its JSON object closes (a '}' is missing after byte 27)"),
                ("/v1/chat/completions", chat,
                 "request body ends before its JSON object closes (']}' are missing after byte \(chat.utf8.count))"),
                ("/v1/completions", #"{"prompt":"hi"}}"#, "request body has more after its JSON object (from byte 16: '}')"),
                ("/v1/completions", #"{"prompt":"hi"} x"#, "request body has more after its JSON object (from byte 17: 'x')"),
                ("/v1/completions", #"{"prompt":"hi"}{"n":1}"#, #"request body has more after its JSON object (from byte 16: '{"n":1}')"#),
                ("/v1/completions", #"{"prompt":"hi"#, "request body ends inside a string that starts at byte 11"),
                ("/v1/completions", #"{"prompt":["hi"}"#, "request body has a '}' at byte 16 where a ']' is due"),
                // A ':' or ',' missing, or one too many, a value missing, a single quote.
                ("/v1/completions", #"{"prompt" "hi"}"#, "request body has a string at byte 11 where a ':' is due"),
                ("/v1/completions", #"{"prompt":"hi" "max_tokens":2}"#, "request body has a string at byte 16 where ',' or '}' is due"),
                ("/v1/completions", #"{"prompt":"hi","max_tokens":2 3}"#, "request body has a number at byte 31 where ',' or '}' is due"),
                ("/v1/completions", #"{"prompt":"hi",,"n":1}"#, "request body has a ',' at byte 16 where a key (a string) is due"),
                ("/v1/completions", #"{"prompt":}"#, "request body has a '}' at byte 11 where a value is due"),
                ("/v1/completions", #"{"prompt"}"#, "request body has a '}' at byte 10 where a ':' is due"),
                ("/v1/completions", #"{:1}"#, "request body has a ':' at byte 2 where a key (a string) or '}' is due"),
                ("/v1/completions", #"{"prompt":[1 2]}"#, "request body has a number at byte 14 where ',' or ']' is due"),
                ("/v1/completions", #"{"prompt":"hi","echo" true}"#, "request body has the word true at byte 23 where a ':' is due"),
                ("/v1/completions", "{'prompt':'hi'}",
                 #"request body has a single quote (JSON quotes strings and keys with ") at byte 2 where a key (a string) or '}' is due"#),
            ] {
                let reply = try await server.post(path, raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["message"] as? String == says, "\(raw): \(reply.text)")
                #expect(error["type"] as? String == "invalid_request_error" && error["param"] is NSNull, "\(reply.text)")
            }
            // Unchanged: a body nested past the decoder's limit (it gives up there, before the end),
            // a bare word alone (not a literal cut short inside an object).
            for (raw, says) in [
                (String(repeating: "[", count: 100_000), "request body is nested more than 512 levels deep (arrays and objects)"),
                (#"{"prompt":"hi","x":"# + String(repeating: "[", count: 600), "request body is nested more than 512 levels deep (arrays and objects)"),
                ("nul", "the request body holds the bare word nul, which is not JSON (its words are true, false and null)"),
            ] {
                let reply = try await server.post("/v1/completions", raw: raw)
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(reply.status == 400 && error["message"] as? String == says, "\(raw.prefix(40)): \(reply.text)")
            }
            let admin = try await server.post("/admin/commands", raw: #"{"command":"drain node 1""#, token: LiveServer.token)
            #expect(admin.status == 400, "\(admin.text)")
            let error = try #require(try admin.json()["error"] as? [String: Any], "\(admin.text)")
            #expect(error["message"] as? String == "request body ends before its JSON object closes (a '}' is missing after byte 25)",
                    "\(admin.text)")
            #expect(error["code"] as? String == "invalid_body", "\(admin.text)")
            #expect(server.backend.submitted.isEmpty && server.link.receivedCommands.isEmpty)
        }
    }

    /// A backslash escape JSON does not have (`\x`, `\u` without four hex digits) was refused
    /// as "field 'prompt' has the wrong type", sending the client to change a string that is a
    /// string, or as "not valid JSON" with no place. The field and the escape are named.
    @Test func anEscapeJSONDoesNotHaveIsNamedNotBlamedOnTheType() async throws {
        try await LiveServer.with { server in
            for (raw, field, escape) in [
                (#"{"prompt": "\x"}"#, "prompt", #"\x"#),
                (#"{"prompt": "a\uZZZZ"}"#, "prompt", #"\u"#),
                (#"{"prompt": "hi", "user": "\u12"}"#, "user", #"\u12"#),
                (#"{"messages": [{"role": "user", "content": "\'"}]}"#, "messages[0].content", #"\'"#),
            ] {
                let path = raw.contains("messages") ? "/v1/chat/completions" : "/v1/completions"
                let reply = try await server.post(path, raw: raw)
                #expect(reply.status == 400, "\(raw): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["param"] as? String == field, "\(raw): \(reply.text)")
                #expect(error["message"] as? String == "field '\(field)' holds the escape \(escape), which is not JSON (its escapes are "
                    + #"\", \\, \/, \b, \f, \n, \r, \t and \u with four hex digits)"#, "\(raw): \(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// An empty body (or one of blanks only) was told "request body is not valid JSON", which
    /// sends the client looking for a syntax error in JSON it did not send.
    @Test func anEmptyBodyIsSaidToBeEmpty() async throws {
        try await LiveServer.with { server in
            for (path, raw) in [("/v1/completions", ""), ("/v1/chat/completions", " \r\n\t")] {
                let reply = try await server.post(path, raw: raw)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["message"] as? String == "request body is empty; expected a JSON object", "\(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    @Test func aLoneSurrogateIsNamedAsSuchNotAsTheWrongType() async throws {
        try await LiveServer.with { server in
            let reply = try await server.post("/v1/completions", raw: #"{"prompt": "bad \ud800 text", "max_tokens": 2}"#)
            #expect(reply.status == 400, "\(reply.text)")
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["param"] as? String == "prompt")
            let message = error["message"] as? String ?? ""
            #expect(message.contains("unpaired UTF-16 surrogate") && message.contains(#"\ud800"#), "\(message)")
            #expect(!message.contains("wrong type"), "\(message)")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A control character written raw inside a string (a newline a client pasted into its JSON
    /// by hand, a NUL) is not JSON (RFC 8259 §7: it must be escaped). In a message's content it
    /// was refused as "field 'messages[0].content' has the wrong type", sending the client to
    /// change a string that is a string; elsewhere as "not valid JSON" with no place. Now the
    /// field and the character are named, with the escape to write.
    @Test func aRawControlCharacterInAStringIsNamedAsSuchNotAsTheWrongType() async throws {
        try await LiveServer.with { server in
            for (raw, field, says) in [
                ("{\"messages\": [{\"role\": \"user\", \"content\": \"two\nlines\"}]}", "messages[0].content", "U+000A"),
                ("{\"prompt\": \"a\u{0}b\", \"max_tokens\": 2}", "prompt", "U+0000"),
                ("{\"prompt\": \"ab\", \"user\": \"x\u{7}\"}", "user", "U+0007"),
            ] {
                let path = field == "messages[0].content" ? "/v1/chat/completions" : "/v1/completions"
                let reply = try await server.post(path, raw: raw)
                #expect(reply.status == 400, "\(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                let message = error["message"] as? String ?? ""
                #expect(error["param"] as? String == field, "\(reply.text)")
                #expect(message.contains("field '\(field)' holds a control character (\(says)) written raw"), "\(message)")
                #expect(!message.contains("wrong type") && !message.contains("\n"), "\(message)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }
}
