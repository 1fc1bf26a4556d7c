import Foundation
import ServingEngine
import Synchronization

/// Runs previews off the UI thread (a preview takes about a second; the screen keeps drawing)
/// and hands their progress and answer back as messages the UI loop takes each turn.
final class PreviewRunner: Sendable {
    static let shared = PreviewRunner()
    private let inbox = Mutex<[ConsoleMessage]>([])

    func start(_ line: String, link: any EngineLink) {
        guard let previewer = link as? PreviewLink else {
            post(.preview(.finished(line: line, .failure(PreviewRefusal("this engine link cannot preview")))))
            return
        }
        let thread = Thread { [self] in
            let answer = previewer.preview(commandLine: line) { share in
                self.post(.preview(.progress(line: line, share)))
            }
            post(.preview(.finished(line: line, answer)))
        }
        thread.name = "xds-preview"
        thread.start()
    }

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
