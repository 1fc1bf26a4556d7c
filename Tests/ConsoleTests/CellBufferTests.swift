import Testing

@testable import Console

@Suite struct CellBufferTests {
    @Test func boxAndSparklineRenderOffscreen() {
        var b = CellBuffer(width: 20, height: 4)
        b.box(Rect(x: 0, y: 0, width: 20, height: 4), title: "sim")
        b.sparkline([0, 1, 2, 3, 4, 5, 6, 7], x: 2, y: 1, width: 16, max: 7)
        #expect(
            b.text == """
                ┌ sim ─────────────┐
                │ ▁▂▃▄▅▆▇█         │
                │                  │
                └──────────────────┘
                """)
    }

    @Test func putClipsToTheBufferAndTheClipRect() {
        var b = CellBuffer(width: 10, height: 2)
        b.put("hello world", x: 3, y: 0)
        b.put("abcdef", x: -2, y: 1, clip: Rect(x: 0, y: 1, width: 3, height: 1))
        #expect(b.lines == ["   hello w", "cde"])
    }

    @Test func barUsesEighthBlocksAndATrack() {
        var b = CellBuffer(width: 8, height: 1)
        b.bar(0.5625, x: 0, y: 0, width: 8, style: .good)
        #expect(b.text == "████▌···")
    }

    @Test func diffReportsOnlyChangedRuns() {
        var a = CellBuffer(width: 10, height: 3)
        a.put("steady", x: 0, y: 0)
        var b = a
        #expect(b.diff(from: a).isEmpty)
        b.put("XY", x: 4, y: 1)
        b.put("Z", x: 9, y: 2)
        let runs = b.diff(from: a)
        #expect(runs.map { [$0.x, $0.y, $0.cells.count] } == [[4, 1, 2], [9, 2, 1]])
        #expect(String(runs[0].cells.map(\.character)) == "XY")
        // A style change alone is a change too.
        var c = b
        c.restyle(Rect(x: 0, y: 0, width: 1, height: 1)) { $0.bold = true }
        #expect(c.diff(from: b).map(\.x) == [0])
        // No previous frame, or another size: everything.
        #expect(b.diff(from: nil).count == 3)
        #expect(b.diff(from: CellBuffer(width: 5, height: 3)).count == 3)
    }

    @Test func tableAlignsColumnsAndClipsRows() {
        var b = CellBuffer(width: 20, height: 3)
        b.table(
            columns: [("name", 6), ("n", -4)],
            rows: [
                [("alpha", .text), ("7", .text)], [("beta", .text), ("1234", .text)],
                [("gamma", .text), ("1", .text)],
            ],
            in: Rect(x: 0, y: 0, width: 20, height: 3))
        #expect(b.lines == ["name      n", "alpha     7", "beta   1234"])
    }

    @Test func heatMapFoldsTwoRowsPerCellWithHalfBlocks() {
        var b = CellBuffer(width: 2, height: 1)
        b.heatMap(
            [[0, 1, 0, 0], [0, 0, 0, 1]], in: Rect(x: 0, y: 0, width: 2, height: 1), monochrome: false)
        #expect(b.text == "▀▀")
        // Folding keeps the maximum: the hot expert in column 1 colours cell 0's upper half.
        #expect(b[0, 0].style == Style(fg: .heat(1), bg: .heat(0)))
        #expect(b[1, 0].style == Style(fg: .heat(0), bg: .heat(1)))
        var mono = CellBuffer(width: 2, height: 1)
        mono.heatMap(
            [[0, 0.5, 0, 0], [0, 0, 0, 1]], in: Rect(x: 0, y: 0, width: 2, height: 1), monochrome: true)
        #expect(mono.text == "▒█")
    }
}
