import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

/// Issue 7: a remote console attached to the server shows the same numbers as /admin/state, and
/// its commands reach the engine.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct RemoteLinkTests {

    @Test func remoteLinkMirrorsTheServerAndSendsCommands() async throws {
        let engineSide = RecordingEngineLink()
        engineSide.update {
            $0.simTime = 42.5
            $0.requests.arrived = 17
            $0.modelName = "deepseek-r1"
        }
        let server = APIServer(configuration: .init(adminToken: "tok", adminEventInterval: .milliseconds(50)),
                               link: engineSide, backend: FakeCompletionBackend())
        try await whileServing(server) { _, base in
            let remote = RemoteEngineLink(baseURL: base, token: "tok")
            remote.start()
            defer { remote.stop() }
            #expect(await eventually { remote.latestSnapshot() == engineSide.latestSnapshot() })
            #expect(remote.latestSnapshot().linkStatus == nil)
            let reply = try await offPool { remote.send(commandLine: "drain node 5") }
            #expect(reply.accepted)
            #expect(engineSide.receivedCommands == ["drain node 5"])
            let refused = try await offPool { remote.send(commandLine: "drain nod 5") }
            #expect(!refused.accepted)
            #expect(engineSide.receivedCommands == ["drain node 5"])
            let wrong = RemoteEngineLink(baseURL: base, token: "nope")
            wrong.start()
            defer { wrong.stop() }
            #expect(await eventually { wrong.latestSnapshot().linkStatus?.contains("wrong admin token") == true })
            let unauthorised = try await offPool { wrong.send(commandLine: "drain node 6") }
            #expect(!unauthorised.accepted)
            #expect(engineSide.receivedCommands == ["drain node 5"])
        }
    }
}
