import Synchronization
import Testing

@testable import ServingEngine

/// The one reading of a preview line that every ``PreviewLink`` shares.
@Suite(.timeLimit(.minutes(10))) struct PreviewLinkTests {
    /// A link that records what it was asked and refuses it (no engine needed).
    final class RecordingLink: PreviewLink {
        let asked = Mutex<[PreviewRequest]>([])
        func preview(_ request: PreviewRequest, progress: @escaping @Sendable (Double) -> Void)
            -> Result<PreviewResult, PreviewRefusal>
        {
            asked.withLock { $0.append(request) }
            return .failure(PreviewRefusal("asked \(request)"))
        }
    }

    @Test func aLineIsParsedOnceForEveryLink() throws {
        let link = RecordingLink()
        guard case .failure(let refusal) = link.preview(commandLine: "preview drain node 2 for 5m") else {
            Issue.record("the recording link answered")
            return
        }
        #expect(refusal.message == "asked preview drain node 2 for 5m")
        #expect(link.asked.withLock { $0 } == [PreviewRequest(command: .drain(node: 2), duration: 300)])
        // The keyword may be left out; the default duration applies.
        _ = link.preview(commandLine: "fault npu 3")
        #expect(link.asked.withLock { $0.last } == PreviewRequest(command: .faultNPU(3)))
    }

    @Test func aLineThatDoesNotParseIsRefusedWithoutAskingTheLink() throws {
        let link = RecordingLink()
        for line in ["preview", "preview drain node 2 for", "preview pause", "preview preview rate 5"] {
            guard case .failure(let refusal) = link.preview(commandLine: line) else {
                Issue.record("\(line) was previewed")
                continue
            }
            guard case .failure(let error) = PreviewRequest.parse(line) else {
                Issue.record("\(line) parses")
                continue
            }
            #expect(refusal.message == error.message, "\(line)")
        }
        #expect(link.asked.withLock { $0 }.isEmpty)
    }
}
