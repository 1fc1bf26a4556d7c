import ServingEngine

/// The request detail box from the engine's own record (``RequestDetail``): each stage with the
/// simulated times the engine stamped, to the millisecond, and how long it took.
enum RequestDetailView {
    /// h:mm:ss.mmm (simulated).
    static func stamp(_ t: Double) -> String {
        let fraction = t.isFinite ? t - t.rounded(.down) : 0
        let millis = min(999, max(0, Int((fraction * 1000 + 1e-6).rounded(.down))))
        return Format.clock(t) + "." + (millis < 10 ? "00" : millis < 100 ? "0" : "") + "\(millis)"
    }

    /// "  queued     0:01:23.400 → 0:01:23.612   212ms  on prefill-2/dp5".
    static func span(_ name: String, _ from: Double?, _ to: Double?, _ now: Double, _ note: String) -> String? {
        guard let from else { return nil }
        let end = to.map(stamp) ?? "now         "
        let length = Format.ms(max(0, (to ?? now) - from) * 1000) + (to == nil ? " so far" : "")
        return "  " + Format.left(name, 10) + stamp(from) + " → " + end + "  " + Format.right(length, 13)
            + (note.isEmpty ? "" : "  " + note)
    }

    static func lines(_ d: RequestDetail) -> [(String, Style)] {
        var lines: [(String, Style)] = []
        let prefill = d.prefillInstance.map { "\($0)" + (d.prefillGroup.map { "/dp\($0)" } ?? "") }
        let decode = d.decodeInstance.map { "\($0)" + (d.decodeGroup.map { "/dp\($0)" } ?? "") }
        lines.append(("stage      \(d.stage.rawValue)" + (d.reason.map { " · \($0)" } ?? ""), RequestsView.stageStyle(d.stage)))
        lines.append(("tokens     prompt \(d.promptTokens) (\(d.cachedPromptTokens) from the prefix cache) · output \(d.generatedTokens) of \(d.outputTokens)", .text))
        let end = d.finishedAt ?? d.simTime
        var latency = "\(d.finishedAt == nil ? "age" : "E2E") " + Format.ms(max(0, end - d.arrivedAt) * 1000)
        if let first = d.firstTokenAt {
            latency += " · TTFT " + Format.ms((first - d.arrivedAt) * 1000)
            if let done = d.finishedAt, d.generatedTokens > 1 {
                latency += " · TPOT " + Format.ms((done - first) * 1000 / Double(d.generatedTokens - 1)) + " (mean after the first token)"
            }
        }
        lines.append(("latency    " + latency, .text))
        if d.reprefills > 0 {
            lines.append(("re-prefill ×\(d.reprefills): a fault took it off its hardware; the stages below are its current attempt", .warn))
        }
        lines.append(("", .text))
        lines.append(("Timeline (engine-recorded, simulated time)", Style(fg: .title, bold: true)))
        lines.append(("  arrived   " + stamp(d.arrivedAt), .text))
        let queuedFrom = d.requeuedAt ?? d.arrivedAt
        let queueEnd = d.prefillStartedAt ?? (d.finishedAt ?? nil)
        if let l = span(d.requeuedAt == nil ? "queued" : "re-queued", queuedFrom, queueEnd, d.simTime,
                        prefill.map { "for \($0)" } ?? "") {
            lines.append((l, RequestsView.stageStyle(.queued)))
        }
        if let l = span("prefill", d.prefillStartedAt, d.prefillEndedAt ?? (d.prefillStartedAt != nil ? d.finishedAt : nil),
                        d.simTime, prefill ?? "") {
            lines.append((l, RequestsView.stageStyle(.prefill)))
        }
        if let ended = d.prefillEndedAt, decode != nil, d.transferStartedAt.map({ $0 > ended + 1e-9 }) ?? (d.decodeJoinedAt == nil && d.finishedAt == nil) {
            // Between prefill and transfer it waits for room in a decode DP group (back-pressure).
            if let l = span("KV wait", ended, d.transferStartedAt, d.simTime, "for room on \(d.decodeInstance ?? "decode")") {
                lines.append((l, RequestsView.stageStyle(.transfer)))
            }
        }
        if let l = span("KV xfer", d.transferStartedAt, d.transferEndedAt ?? (d.transferStartedAt != nil ? d.finishedAt : nil),
                        d.simTime, decode.map { "to \($0)" } ?? "") {
            lines.append((l, RequestsView.stageStyle(.transfer)))
        }
        if let joined = d.decodeJoinedAt {
            let first = d.firstTokenAt.map { " · 1st token " + stamp($0) } ?? ""
            lines.append(("  decode    " + stamp(joined) + " joined the batch on \(decode ?? "–")" + first
                + " · \(d.generatedTokens) tokens", RequestsView.stageStyle(.decode)))
        }
        if let done = d.finishedAt {
            let what = d.stage == .completed ? "finished" : d.stage.rawValue
            lines.append(("  " + Format.left(what, 10) + stamp(done) + (d.reason.map { " · \($0)" } ?? ""),
                          RequestsView.stageStyle(d.stage)))
        } else {
            lines.append(("  now       " + stamp(d.simTime) + " · \(d.stage.rawValue)", .dim))
        }
        return lines
    }
}
