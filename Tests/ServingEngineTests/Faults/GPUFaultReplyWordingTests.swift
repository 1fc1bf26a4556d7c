import PodModel
import Testing
@testable import ServingEngine

/// A GPU deployment's fault replies (the console's footer, `POST /admin/commands`, the event log)
/// named NPUs and a UB link, the Ascend superpod's words, while the console, help and fault menu
/// of that deployment say GPU: `fault npu 8` on an 8-GPU cluster answered "NPU 8 does not exist;
/// the pod has NPUs 0…7". They now name the device the hardware has; the `:` language is
/// unchanged (`fault npu N` takes a GPU's number), and the superpod keeps its words.
@Suite struct GPUFaultReplyWordingTests {
    static func reply(_ spec: String, _ line: String) throws -> CommandReply {
        let d = try Deployment.resolve(spec)
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1, syntheticRate: 1))
        engine.run(until: 1)
        return engine.apply(try OperatorCommand.parse(line).get())
    }

    static let gpu = "colocated:2:llama-2-7b:nvidia-a100:tp1"

    @Test func gpuRepliesNameGPUs() throws {
        #expect(try Self.reply(Self.gpu, "fault npu 8").message == "GPU 8 does not exist; the pod has GPUs 0…7")
        #expect(try Self.reply(Self.gpu, "fault link 0-9").message == "GPU 9 does not exist; the pod has GPUs 0…7")
        let link = try Self.reply(Self.gpu, "fault link 0-1")
        #expect(link.accepted && link.message.hasPrefix("fault 1: link GPU 0 ↔ GPU 1 down"), "\(link.message)")
        let node = try Self.reply(Self.gpu, "fault node 0")
        #expect(node.message.hasPrefix("fault 1: node 0 (GPUs 0–7) dead"), "\(node.message)")
        let one = try Self.reply(Self.gpu, "fault npu 3")
        #expect(one.message.hasPrefix("fault 1: GPU 3 dead; "), "\(one.message)")
        for reply in [link, node, one] { #expect(!reply.message.contains("NPU"), "\(reply.message)") }
    }

    @Test func superpodRepliesAreUnchanged() throws {
        #expect(try Self.reply("superpod", "fault npu 400").message == "NPU 400 does not exist; the pod has NPUs 0…383")
        #expect(try Self.reply("superpod", "fault link 0-200").message.hasPrefix("fault 1: UB link NPU 0 ↔ NPU 200 down"))
        #expect(try Self.reply("superpod", "fault node 3").message.hasPrefix("fault 1: node 3 (NPUs 24–31) dead"))
        #expect(try Self.reply("superpod", "fault npu 5").message.hasPrefix("fault 1: NPU 5 (dies 10–11) dead"))
    }
}
