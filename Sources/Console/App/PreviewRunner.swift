import Foundation
import ServingEngine
import Synchronization

/// Runs previews off the UI thread (a preview takes about a second; the screen keeps drawing)
/// and hands their progress and answer back as messages the UI loop takes each turn. A preview
/// the operator cancels (Esc) stops computing: the embedded engine checks its token every
/// simulated slice, a remote link hangs up its `POST /admin/preview` (the server then stops it).
final class PreviewRunner: Sendable {
    static let shared = PreviewRunner()
    private let inbox = Mutex<[ConsoleMessage]>([])
    /// The previews computing, by line; one line may be asked again while an earlier ask of it
    /// still winds down, hence a list.
    private let running = Mutex<[(line: String, cancellation: PreviewCancellation)]>([])

    func start(_ line: String, link: any EngineLink) {
        guard let previewer = link as? PreviewLink else {
            post(.preview(.finished(line: line, .failure(PreviewRefusal("this engine link cannot preview")))))
            return
        }
        let cancellation = PreviewCancellation()
        running.withLock { $0.append((line, cancellation)) }
        let thread = Thread { [self] in
            let answer = previewer.preview(commandLine: line, cancellation: cancellation) { share in
                self.post(.preview(.progress(line: line, share)))
            }
            running.withLock { list in list.removeAll { $0.cancellation === cancellation } }
            // A cancelled preview's refusal is for nobody: the overlay is gone (and a newer ask of
            // the same line must not show it).
            if !cancellation.isCancelled { post(.preview(.finished(line: line, answer))) }
        }
        thread.name = "xds-preview"
        thread.start()
    }

    /// Cancels every preview of `line` still computing; each stops within a slice.
    func cancel(_ line: String) {
        for entry in running.withLock({ $0.filter { $0.line == line } }) { entry.cancellation.cancel() }
    }

    /// Previews of `line` computing now (tests wait on it).
    func computing(_ line: String) -> Int { running.withLock { $0.filter { $0.line == line }.count } }

    func post(_ message: ConsoleMessage) {
        inbox.withLock { queue in
            // Only the newest progress of a preview matters.
            if case .preview(.progress(let line, _)) = message,
               case .preview(.progress(let previous, _))? = queue.last, previous == line {
                queue.removeLast()
            }
            queue.append(message)
        }
    }

    func take() -> [ConsoleMessage] { inbox.withLock { q in defer { q.removeAll() }; return q } }
}
