import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Esc cancels a preview still computing (it used to run to the end, holding one of the engine's
/// preview places, so the next preview was refused as busy): the overlay closes, the footer says
/// so, and the forks stop, on the embedded engine and through a remote console's link.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct PreviewCancelTests {
    /// An hour at 300 requests/s: over 40 s of work in a debug build, were it run to the end.
    static let long = "preview rate 300 for 1h"

    @Test func escapeWhileComputingCancelsAndSaysSo() {
        var (s, _) = PreviewOverlayTests.open(Self.long)
        let computing = ConsoleScreen.render(s, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24)
            .lines.joined(separator: "\n")
        #expect(computing.contains("Esc cancels the preview"), "\(computing)")
        var effects: [ConsoleEffect]
        (s, effects) = ConsoleUpdate.update(s, .key(.escape))
        #expect(effects == [.cancelPreview(commandLine: "preview rate 300 for 1h")])
        #expect(s.preview == nil)
        let after = ConsoleScreen.render(s, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).lines
        #expect(after.contains { $0.contains("preview cancelled: rate 300") }, "\(after.joined(separator: "\n"))")
        // A preview already answered has nothing left to cancel: Esc only closes it.
        (s, _) = PreviewOverlayTests.open("preview drain node 20")
        (s, _) = ConsoleUpdate.update(
            s, .preview(.finished(line: "preview drain node 20 for 10m", .success(PreviewOverlayTests.result()))))
        (s, effects) = ConsoleUpdate.update(s, .key(.escape))
        #expect(effects.isEmpty && s.preview == nil)
        // The help's command page says so.
        var help = primedState()
        help.showHelp = true
        help.helpPage = 1
        let page = ConsoleScreen.render(help, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).lines
        #expect(page.contains { $0.contains("preview COMMAND [for DURATION]") && $0.contains("Esc cancels") })
    }

    static func host() throws -> EngineHost {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 3, syntheticRate: 8)
        config.expertSkew = false
        let host = EngineHost(core: try ServingEngine(configuration: config), speed: 20, publishInterval: 0.05,
                              bounds: EngineHost.Bounds(previews: 1))
        host.start()
        return host
    }

    /// Opens `:preview` through the whole loop against `link`, waits until it computes, presses Esc
    /// and waits (at most `seconds`) until its thread is done; true if it was.
    static func startAndCancel(link: any EngineLink, seconds: Double) async throws -> Bool {
        var s = primedState()
        s.wallNow = 0
        for key in [Key.char(":")] + typed(long) + [.enter] { s = ConsoleApp.dispatch(.key(key), to: s, link: link) }
        let line = "preview rate 300 for 1h"
        #expect(s.preview?.line == line && PreviewRunner.shared.computing(line) == 1)
        try await Task.sleep(for: .milliseconds(500))
        s = ConsoleApp.dispatch(.key(.escape), to: s, link: link)
        #expect(s.preview == nil && s.status?.text == "preview cancelled: rate 300")
        let deadline = ContinuousClock.now + .seconds(seconds)
        while PreviewRunner.shared.computing(line) > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        // A cancelled preview's answer reaches nobody.
        let answers = PreviewRunner.shared.take().filter {
            if case .preview(.finished(let finished, _)) = $0 { finished == line } else { false }
        }
        #expect(answers.isEmpty)
        return PreviewRunner.shared.computing(line) == 0
    }

    /// Embedded: the fork stops within a slice, and its place is free for the next preview.
    @Test func escapeStopsTheEmbeddedEnginesPreview() async throws {
        let host = try Self.host()
        defer { _ = host.stop() }
        #expect(try await Self.startAndCancel(link: host, seconds: 20), "the preview ran on after Esc")
        let next = try await offPool { host.preview(commandLine: "drain node 1 for 30s") }
        guard case .success = next else { Issue.record("the next preview was refused: \(next)"); return }
    }

    /// `--connect`: the link hangs up its request; the server stops the preview and frees its place.
    @Test func escapeStopsARemotePreview() async throws {
        let host = try Self.host()
        defer { _ = host.stop() }
        let server = APIServer(configuration: .init(adminToken: "tok", adminEventInterval: .milliseconds(50)),
                               link: host, backend: host)
        try await whileServing(server) { _, base in
            let remote = RemoteEngineLink(baseURL: base, token: "tok")
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await Self.startAndCancel(link: remote, seconds: 5), "the link still waits after Esc")
            // The server notices the hang-up and stops the fork within a slice: a place again.
            var answer: Result<PreviewResult, PreviewRefusal> = .failure(PreviewRefusal("not asked"))
            for _ in 0..<100 {
                answer = try await offPool { remote.preview(commandLine: "drain node 1 for 30s") }
                if case .success = answer { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            if case .failure(let refusal) = answer { Issue.record("the place was never freed: \(refusal.message)") }
        }
    }
}
