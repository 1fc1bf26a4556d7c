import Testing
@testable import Console

/// A box title too long for its border ends in "…" before a border cell, as a cut line does
/// (``CellBuffer/put(cutting:x:y:style:clip:)``). It was cut at the corner with no mark, so a
/// title that lost its end (a command's argument, a filter's text) read as whole.
@Suite struct BoxTitleCutTests {
    static func top(width: Int, title: String) -> String {
        var b = CellBuffer(width: width, height: 3)
        b.box(Rect(x: 0, y: 0, width: width, height: 3), title: title)
        return String(b.text.split(separator: "\n", omittingEmptySubsequences: false)[0])
    }

    @Test func aTitleThatDoesNotFitEndsInAnEllipsis() {
        #expect(Self.top(width: 20, title: "What if · drain node 20") == "┌ What if · drain…─┐")
    }

    /// Whole titles are drawn as before: with their closing blank, or without it when only that
    /// blank has no room (the text is all there).
    @Test func aTitleThatFitsIsWhole() {
        #expect(Self.top(width: 20, title: "Pod · 48 nodes") == "┌ Pod · 48 nodes ──┐")
        #expect(Self.top(width: 20, title: "KV held, reserved") == "┌ KV held, reserved┐")
    }
}
