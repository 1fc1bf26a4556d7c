import ServingEngine
import Testing

@testable import Console

/// A folded Events row cut at the panel's edge keeps its fold count: at 80 columns the demo's
/// "rate 54.7: synthetic arrival rate set to 54…" hid the "(×9)" after it, one row for nine steps.
@Suite struct EventFoldCountCutTests {
    @Test func aCutFoldedRowKeepsItsCount() {
        let event = EngineEvent(time: 255, kind: .command, message: "rate 54.7: synthetic arrival rate set to 54.7 requests/s")
        var b = CellBuffer(width: 60, height: 2)
        let inner = Rect(x: 0, y: 0, width: 60, height: 2)
        EventsView.drawRow(&b, (event, 9), y: 0, inner: inner, selected: false)
        EventsView.drawRow(&b, (event, 1), y: 1, inner: inner, selected: false)
        let folded = b.lines[0], single = b.lines[1]
        #expect(folded.hasSuffix("… (×9)"), "\(folded)")
        #expect(folded.contains("rate 54.7: synth"), "\(folded)")
        #expect(single.hasSuffix("…") && !single.contains("×"), "\(single)")
        #expect(folded.count <= 60 && single.count <= 60)
    }
}
