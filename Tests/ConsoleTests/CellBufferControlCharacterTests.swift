import Testing
@testable import Console

/// Names from files (deployments, traces, scenarios) are drawn with ``CellBuffer/put``; a
/// control character in one must never reach the terminal raw (issue 10).
@Suite struct CellBufferControlCharacterTests {
    @Test func controlCharactersAreDrawnAsQuestionMarks() {
        var b = CellBuffer(width: 24, height: 1)
        let end = b.put("a\u{1B}[2Jb\u{07}c\u{9B}d\u{7F}e\r\nf", x: 0, y: 0)
        #expect(b.text == "a?[2Jb?c?d?e?f")
        #expect(end == 14)  // one cell per character, as before: column arithmetic is unchanged
        for cell in b.cells {
            #expect(!cell.character.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        }
    }

    @Test func printableTextIsUntouched() {
        var b = CellBuffer(width: 20, height: 1)
        b.put("npu 37 ✓ ▇ ü", x: 0, y: 0)
        #expect(b.text == "npu 37 ✓ ▇ ü")
    }
}
