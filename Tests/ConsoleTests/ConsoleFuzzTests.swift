import Foundation
import ServingEngine
import SimKit
import Testing
import XDSTestSupport

@testable import Console

/// A seeded, bounded fuzz of the console's whole input path: random keys (every binding, printable
/// and control characters, prompts opened and typed into, destructive keys answered both ways),
/// pastes, mouse clicks and wheels, resizes to any size (too small included), snapshot ticks and
/// the wall clock, each through ``ConsoleApp/dispatch(_:to:link:)`` against a fake engine and
/// each followed by a render. The frame must stay exactly the terminal's size, one inert
/// character per column, whatever came before; a trap fails the whole run (swift-testing cannot catch it, so the seed
/// and the message count are printed first when `XDS_FUZZ_VERBOSE` is set).
///
/// `XDS_FUZZ_SEED` (default 1) picks the sequences; `XDS_FUZZ_SECONDS` (default 2 s of wall
/// time) bounds the run, as the other fuzz targets.
@Suite(.cpuBound) struct ConsoleFuzzTests {
    static let sizes = [(80, 24), (120, 40), (200, 60), (300, 90), (79, 24), (80, 23), (40, 10), (1, 1), (81, 25)]

    /// Every key the console binds, and the keys around them.
    static let keys: [Key] =
        [.up, .down, .left, .right, .pageUp, .pageDown, .home, .end, .enter, .escape, .tab, .backspace, .controlC]
        + "123456?:/ +-=_tsSdufrhjklnyNYwvcpqQgGx<>[]{}\"'\\0789".map { Key.char($0) }

    /// What an operator might type at the prompt, whole or in pieces.
    static let words = [
        "rate 20", "drain node 3", "undrain node 3", "fault npu 5", "heal all", "rebalance", "speed 10",
        "preview drain node 20 10m", "pause", "scale decode +1", "rate -1", "rate 1e400", "drain node 99999",
        "节点 🚀", "\u{1b}[31m", "\t", String(repeating: "x", count: 300),
    ]

    @Test func randomInputNeverBreaksTheScreen() {
        let env = ProcessInfo.processInfo.environment
        let seed = env["XDS_FUZZ_SEED"].flatMap { UInt64($0) } ?? 1
        let budget = env["XDS_FUZZ_SECONDS"].flatMap { Double($0) } ?? 2
        let verbose = env["XDS_FUZZ_VERBOSE"] != nil
        var rng = RandomStreams(seed: seed).stream("console-fuzz")
        let started = Date()
        var sequences = 0, messages = 0, renders = 0, sent = 0
        var sizesSeen = Set<String>()
        while sequences < 2 || (Date().timeIntervalSince(started) < budget && sequences < 400) {
            let (w0, h0) = Self.sizes[rng.int(in: 0...(Self.sizes.count - 1))]
            var (width, height) = (w0, h0)
            let link = FakeEngineLink()
            var state = primedState(width: width, height: height)
            var wall = 100.0
            for step in 0..<150 {
                let burst = Self.messages(&rng, width: &width, height: &height, wall: &wall, link: link)
                if verbose { print("console-fuzz seed \(seed) sequence \(sequences) step \(step): \(burst)") }
                for message in burst { state = ConsoleApp.dispatch(message, to: state, link: link) }
                messages += 1
                let message = burst.last!
                // A quit ends the app; the fuzz carries on from a fresh screen of the same size.
                if state.quitting { state = primedState(width: width, height: height) }
                let frame = ConsoleScreen.render(state, link.latestSnapshot(), theme: .builtinDark,
                                                 width: width, height: height)
                renders += 1
                sizesSeen.insert("\(width)×\(height)")
                // The frame is the terminal's size, and every cell one column wide and inert: a
                // control or wide character copied to the terminal would shift or repaint the screen.
                let stray = frame.cells.first { CellBuffer.printable($0.character) != $0.character }
                guard frame.width == max(0, width), frame.height == max(0, height), stray == nil else {
                    let what = "seed \(seed) sequence \(sequences) step \(step) after \(message): frame "
                        + "\(frame.width)×\(frame.height) for \(width)×\(height), stray cell \(String(describing: stray))"
                    Issue.record(Comment(rawValue: what))
                    return
                }
            }
            sent += link.sentCommands.count
            sequences += 1
        }
        #expect(renders == messages)
        // Commands reached the engine: prompts were opened, typed into and sent.
        #expect(sent > 0)
        #expect(sizesSeen.count >= 3, "the run saw too few sizes: \(sizesSeen)")
        if verbose { print("console-fuzz: \(sequences) sequences, \(messages) messages, \(sent) commands sent, \(sizesSeen.count) sizes") }
    }

    /// One random message, or a whole command typed at the prompt and sent; a resize changes the
    /// size the render must fill.
    static func messages(_ rng: inout RandomStream, width: inout Int, height: inout Int, wall: inout Double,
                         link: FakeEngineLink) -> [ConsoleMessage] {
        switch rng.int(in: 0...99) {
        case 0..<10:
            // Typed whole: ":" (or "/" for a filter), the word, then Enter or Esc.
            let word = words[rng.int(in: 0...(words.count - 1))]
            let opener: Key = rng.int(in: 0...3) == 0 ? .char("/") : .char(":")
            let closer: Key = rng.int(in: 0...4) == 0 ? .escape : .enter
            return ([opener] + word.map { Key.char($0) } + [closer]).map { .key($0) }
        default:
            return [message(&rng, width: &width, height: &height, wall: &wall, link: link)]
        }
    }

    static func message(_ rng: inout RandomStream, width: inout Int, height: inout Int, wall: inout Double,
                        link: FakeEngineLink) -> ConsoleMessage {
        switch rng.int(in: 0...99) {
        case 0..<55:
            return .key(keys[rng.int(in: 0...(keys.count - 1))])
        case 55..<70:
            // A character of one of the words: prompts opened by chance get typed into.
            let word = words[rng.int(in: 0...(words.count - 1))]
            return .key(.char(word.randomElement(using: &rng) ?? "x"))
        case 70..<76:
            return .paste(words[rng.int(in: 0...(words.count - 1))])
        case 76..<82:
            let x = rng.int(in: -2...(width + 2)), y = rng.int(in: -2...(height + 2))
            switch rng.int(in: 0...2) {
            case 0: return .mouse(.click(x: x, y: y))
            case 1: return .mouse(.wheelUp(x: x, y: y))
            default: return .mouse(.wheelDown(x: x, y: y))
            }
        case 82..<86:
            if rng.int(in: 0...3) == 0 {
                (width, height) = (rng.int(in: 1...320), rng.int(in: 1...100))
            } else {
                (width, height) = sizes[rng.int(in: 0...(sizes.count - 1))]
            }
            return .resize(width: width, height: height)
        case 86..<94:
            link.advance(seconds: Double(rng.int(in: 0...30)))
            return .tick(link.latestSnapshot())
        default:
            wall += Double(rng.int(in: 0...40)) / 4
            return .clock(wallSeconds: wall)
        }
    }
}
