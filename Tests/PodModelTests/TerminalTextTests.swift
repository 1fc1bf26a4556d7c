import Foundation
import Testing
@testable import PodModel

/// What a user sees when a command fails (issue 10): one terminal-safe line, never raw Swift
/// error text such as `Swift.DecodingError.dataCorrupted(…)` or `EncodingError`.
@Suite struct TerminalTextTests {
    @Test func controlCharactersBecomeVisible() {
        #expect("a\u{1B}[31mb".terminalSafe == "a^[[31mb")
        #expect("x\ny\r\u{0}".terminalSafe == "x^Jy^M^@")
        #expect("del\u{7F}".terminalSafe == "del^?")
        #expect("csi\u{9B}2J".terminalSafe == "csi<U+009B>2J")
        #expect("tab\there".terminalSafe == "tab here")
        #expect("plain ✓ ünïcode".terminalSafe == "plain ✓ ünïcode")
        for text in ["\u{1B}]0;title\u{07}", "a\u{85}b", "\u{1B}c"] {
            #expect(!text.terminalSafe.unicodeScalars.contains { $0.isTerminalControl }, "\(text.debugDescription)")
        }
    }

    @Test func configErrorsKeepTheirMessageOnOneSafeLine() {
        #expect(ErrorLine.describe(ConfigError("--rate must be between 0 and 10000 requests/s, got 1e308"))
            == "--rate must be between 0 and 10000 requests/s, got 1e308")
        let evil = ErrorLine.describe(ConfigError("unknown deployment 'x\u{1B}[2J\ny'"))
        #expect(evil == "unknown deployment 'x^[[2J^Jy'")
    }

    @Test func encodingErrorsAreASentence() throws {
        struct Report: Encodable { var tpot: Double }
        let error = try #require(capture { _ = try JSONEncoder().encode(Report(tpot: .nan)) })
        let line = ErrorLine.describe(error)
        #expect(line == "cannot write JSON: 'tpot' is nan, which JSON cannot hold", "\(line)")
    }

    @Test func decodingErrorsAreASentence() throws {
        struct Body: Decodable { var model: String; var n: Int }
        let cases: [(String, String)] = [
            ("{not json", "cannot read JSON: the text is not valid JSON"),
            ("{\"n\": 1}", "cannot read JSON: missing field 'model'"),
            ("{\"model\": \"m\", \"n\": \"x\"}", "cannot read JSON: 'n' is not a Int"),
            ("{\"model\": null, \"n\": 1}", "cannot read JSON: 'model' is null"),
        ]
        for (json, expected) in cases {
            let error = try #require(capture { _ = try JSONDecoder().decode(Body.self, from: Data(json.utf8)) })
            let line = ErrorLine.describe(error)
            #expect(line.hasPrefix(expected), "\(json) → \(line)")
            #expect(!line.contains("Context(") && !line.contains("DecodingError") && !line.contains("\n"), "\(line)")
        }
    }

    @Test func foreignErrorsGetOneGenericLine() {
        struct Mystery: Error {}
        let line = ErrorLine.describe(Mystery())
        #expect(line == "unexpected internal error (Mystery); please report it")
        let file = ErrorLine.describe(CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: "/nope"]))
        #expect(!file.isEmpty && !file.contains("\n") && !file.contains("CocoaError"), "\(file)")
    }

    func capture(_ body: () throws -> Void) -> (any Error)? {
        do { try body() } catch { return error }
        return nil
    }
}

/// An echo of input that holds a character drawing nothing (a byte-order mark, a zero-width
/// space pasted in with a value) showed it as nothing: `unknown deployment 'superpod'`, while
/// superpod is the default preset. It is spelt out, as control characters are.
@Suite struct InvisibleEchoTests {
    @Test func invisibleCharactersAreSpeltOut() {
        #expect(InputEcho.quoted("round-robin\u{FEFF}") == "'round-robin\\u{FEFF}'")
        #expect(InputEcho.clean("super\u{200B}pod\u{2060}") == "super\\u{200B}pod\\u{2060}")
        #expect(InputEcho.clean("soft\u{AD}hyphen") == "soft\\u{AD}hyphen")
        // Printing characters are kept as they are.
        #expect(InputEcho.clean("é🙂 µs–x") == "é🙂 µs–x")
        let error = #expect(throws: ConfigError.self) { try Deployment.resolve("superpod\u{200B}") }
        #expect(error?.description.hasPrefix("unknown deployment 'superpod\\u{200B}'") == true, "\(String(describing: error))")
    }
}
