import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The views on deployments other than the superpod: a GPU cluster of PD-colocated replicas of
/// a dense model, at TP4. Labels that hold on the superpod (2 dies per chip, one DP group per
/// die, prefill TEs named `prefill-N`, an expert imbalance) must not be claimed here.
@Suite struct OtherDeploymentRenderTests {
    static let snapshot = try! SnapshotFixtures.live("colocated:2:llama-3-70b:nvidia-a100:tp4", rate: 4, until: 20)

    /// The superpod as the engine names it (the shared fixture uses display names, which name no
    /// hardware profile, so it shows no dies-per-chip claim at all).
    static let superpod = try! SnapshotFixtures.live(.superpod, rate: 20, until: 5)

    static func render(_ view: ConsoleView, _ s: Snapshot = snapshot, width: Int = 120, height: Int = 36) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test func podTitleCountsTheHardwaresDiesPerChip() {
        let gpu = Self.render(.pod).joined(separator: "\n")
        #expect(gpu.contains("Pod · 1 node × 8 GPUs (chips, 1 die each)"), "\(gpu)")
        #expect(!gpu.contains("2 dies each"))
        let pod = Self.render(.pod, Self.superpod).joined(separator: "\n")
        #expect(pod.contains("× 8 NPUs (chips, 2 dies each)"))
    }

    /// The device noun follows the hardware: an A100 deployment's Pod view, detail panel,
    /// Instances table and fault menu said "NPU" throughout. The `:` language keeps `fault npu N`.
    @Test func gpuDeploymentSaysGPUWhereTheSuperpodSaysNPU() {
        for width in [80, 120] {
            let gpu = Self.render(.pod, width: width, height: width == 80 ? 24 : 36)
            let text = gpu.joined(separator: "\n")
            #expect(text.contains("× 8 GPUs"), "\(text)")
            #expect(gpu.contains { $0.contains("┌ GPU 0 · node 0 ") }, "\(text)")
            #expect(!text.contains("NPU"), "\(text)")
        }
        let instances = Self.render(.pod).first { $0.contains("instance ") && $0.contains("queued") }
        #expect(instances?.contains(" GPUs ") == true, "\(instances ?? "no header")")
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(Self.snapshot)).0
        state = ConsoleUpdate.update(state, .key(.char("f"))).0
        let menu = ConsoleScreen.render(state, Self.snapshot, theme: .builtinDark, width: 80, height: 24).lines
        #expect(menu.contains { $0.contains("Fault · GPU 0 · node 0") }, "\(menu.joined(separator: "\n"))")
        #expect(menu.contains { $0.contains("1  fail GPU 0") })
        #expect(state.faultMenu?.items[0].command == "fault npu 0")
        // The help's Pod line too.
        state = ConsoleUpdate.update(ConsoleUpdate.update(state, .key(.escape)).0, .key(.char("?"))).0
        let help = ConsoleScreen.render(state, Self.snapshot, theme: .builtinDark, width: 80, height: 24).lines
        #expect(help.contains { $0.contains(" Pod       GPUs by node; letter = role") }, "\(help.joined(separator: "\n"))")
        // The superpod keeps its NPUs.
        let pod = Self.render(.pod, Self.superpod)
        #expect(pod.contains { $0.contains("┌ NPU 0 · node 0 ") })
        #expect(pod.contains { $0.contains("instance") && $0.contains(" NPUs ") })
    }

    /// At 120 columns the Instances panel had room for one letter of the state ("s"): it now
    /// drops the kind column (the name says the role) and shows the state whole.
    @Test func instancesPanelShowsTheStateWhole() {
        let lines = Self.render(.pod)
        let header = try? #require(lines.first { $0.contains("instance ") && $0.contains("queued") })
        #expect(header?.contains("state") == true && header?.contains("kind") == false, "\(lines.joined(separator: "\n"))")
        #expect(lines.contains { $0.contains("colocated-0 ") && $0.contains(" serving") })
        // A TE that has not stepped shows no step time ("–", not "0.0ms").
        var idle = Self.snapshot
        idle.instances[1].stepMs = 0
        let idleRow = Self.render(.pod, idle).first { $0.contains("│ \(idle.instances[1].name) ") }
        #expect(idleRow?.contains(" – serving") == true && idleRow?.contains("0.0ms") == false, "\(idleRow ?? "no row")")
        let wide = Self.render(.pod, width: 200, height: 60)
        #expect(wide.contains { $0.contains("instance     kind       GPUs") && $0.contains("state") })
    }

    @Test func kvViewSizesGroupsAndNamesTheTEsThatPrefill() {
        let lines = Self.render(.kvCache)
        let text = lines.joined(separator: "\n")
        // TP4 on one-die GPUs: a DP group spans 4 GPUs (it said "4 dies each"; a die is the GPU
        // there, GPUUnitWordingTests).
        #expect(text.contains("Colocated DP groups · 2 (4 GPUs each) · KV held + reserved"), "\(text)")
        #expect(!text.contains("one per die") && !text.contains("dies each"))
        // The colocated TEs by their own names, never as prefill-N.
        #expect(text.contains("TEs that prefill · KV held"))
        #expect(lines.contains { $0.contains("│ colocated-0 ") } && lines.contains { $0.contains("│ colocated-1 ") })
        #expect(!text.contains("prefill-0"))
        // Both scopes are named on the same line, each with its own figure.
        // The KV sparkline says its scale.
        #expect(lines.contains { $0.contains("KV trend 0…100% ") }, "\(text)")
        let written = Format.percent(Self.snapshot.kv.decodeUsage)
        #expect(lines.contains { $0.contains("now: mean ") && $0.contains("tokens written, all groups: now \(written)") })
    }

    @Test func superpodKVViewStillSaysOnePerDie() {
        let text = Self.render(.kvCache, Self.superpod).joined(separator: "\n")
        #expect(text.contains("(one per die) · KV held + reserved"), "\(text)")
        #expect(text.contains("Prefill TEs · KV held"))
    }

    /// Before any request has a first token or has completed, the header's percentiles and SLO
    /// attainment are unknown: "–", not "0/2000ms" and a red "SLO 0%".
    @Test func headerBeforeTheFirstSampleShowsDashes() throws {
        let d = try Deployment.resolve("colocated:2:llama-3-70b:nvidia-a100:tp4")
        let fresh = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1)).snapshot()
        for width in [80, 160] {
            let header = Self.render(.pod, fresh, width: width, height: 30)[1]
            #expect(header.contains("TTFT") && header.contains("–/2"), "\(header)")
            #expect(header.contains("–/35ms") && header.contains("SLO –"), "\(header)")
        }
        let later = Self.render(.pod, width: 160)[1]
        #expect(!later.contains("SLO –") && !later.contains("–/35ms"), "\(later)")
    }

    /// The Latency view before any sample: percentiles "–", not "0.0ms" coloured as met; and
    /// the trend's range covers the live value printed beside its line.
    @Test func latencyViewBeforeTheFirstSampleAndTrendRanges() throws {
        let d = try Deployment.resolve("colocated:2:llama-3-70b:nvidia-a100:tp4")
        let fresh = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1)).snapshot()
        let text = Self.render(.latency, fresh).joined(separator: "\n")
        #expect(text.contains("no samples yet") && text.contains("p50 –  p90 –") && text.contains("p99 –"), "\(text)")
        #expect(!text.contains("0.0ms"), "\(text)")
        // Samples before the first TTFT are 0 in the series: not part of the line's range.
        let ttft = try #require(Self.render(.latency).first { $0.contains("│ TTFT p99 ") })
        #expect(Self.snapshot.series.ttftP99Ms.contains(0) && !ttft.contains(" 0.0ms…"), "\(ttft)")
        // …as gaps (marked ⋅, TrendGapTests): every line's newest point is in the same column
        // ("newest right").
        let sparks = Set("▁▂▃▄▅▆▇█⋅")
        func lastSpark(_ row: String) -> Int? { Array(row).lastIndex { sparks.contains($0) } }
        let tokens = try #require(Self.render(.latency).first { $0.contains("│ tok/s ") })
        #expect(lastSpark(ttft) != nil && lastSpark(ttft) == lastSpark(tokens), "\(ttft)\n\(tokens)")
        var s = Self.snapshot
        s.requests.running = 9_999
        let running = try #require(Self.render(.latency, s).first { $0.contains("│ running ") })
        #expect(running.contains("9999") && running.contains("…9999"), "\(running)")
    }

    /// With several decode TEs (MoE colocated replicas) the die loads are the first TE's, and
    /// the title says so; one fold is "1 die per column".
    @Test func dieLoadNamesItsTEAmongSeveral() throws {
        let engine = try SnapshotFixtures.liveEngine("colocated:4:qwen3-235b-a22b:nvidia-h100:tp8", rate: 4, until: 5)
        let text = Self.render(.experts, engine.snapshot()).joined(separator: "\n")
        // An H100 is one die: the panel counts GPUs (GPUUnitWordingTests).
        #expect(text.contains("GPU load · 8 expert GPUs of colocated-0 (1 of 4 colocated TEs)"), "\(text)")
        #expect(text.contains("(1 GPU per column)"))
        // The NPU detail keeps "MoE load" on its line: 16 experts per GPU are shortened.
        let detail = Self.render(.pod, engine.snapshot()).first { $0.contains("experts ") && $0.contains("DP ") }
        #expect(detail?.contains(", … (16)  MoE load ") == true, "\(detail ?? "no detail line")")
        let pod = Self.render(.experts, Self.superpod).joined(separator: "\n")
        #expect(pod.contains("Die load · 288 expert dies ─"), "one decode TE: no TE named")
    }

    /// The fault menu's die is the selected NPU's own: NPU 3 is die 3 on a one-die GPU, die 6 on an
    /// Ascend 910C (the menu offered "fault die 6", another GPU, on every deployment).
    @Test func faultMenuTargetsTheSelectedNPUsDie() {
        for (snapshot, die) in [(Self.snapshot, 3), (Self.superpod, 6)] {
            var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 36), .tick(snapshot)).0
            state.selectedNPU = 3
            state = ConsoleUpdate.update(state, .key(.char("f"))).0
            let commands = state.faultMenu?.items.map(\.command) ?? []
            // On a one-die GPU "fault die 3" is "fault npu 3" and is offered once (SingleDieFaultMenuTests).
            #expect(commands.contains("fault die \(die)") == (die == 6) && commands.contains("fault npu 3"), "\(commands)")
            #expect(commands.contains("fault hbm die \(die)"))
            #expect(commands.contains("fault straggler die \(die) slowdown 2"))
        }
    }

    /// A die fault marks the GPU it is on: on one-die GPUs die D is GPU D. The grid took every die
    /// as half an Ascend chip, so "fault straggler die 3" drew ↓ on GPU 1 and left GPU 3 plain.
    @Test func dieFaultsMarkTheirOwnGPU() throws {
        let engine = try SnapshotFixtures.liveEngine("colocated:2:llama-3-70b:nvidia-a100:tp4", rate: 4, until: 5)
        for line in ["fault straggler die 3", "fault hbm die 6"] {
            let reply = engine.apply(try OperatorCommand.parse(line).get())
            #expect(reply.accepted, "\(line): \(reply.message)")
        }
        engine.run(until: 10)
        let s = engine.snapshot()
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 36), .tick(s)).0
        state.selectedNPU = 7
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 36)
        func cell(_ gpu: Int) -> Character { Self.gridCell(b, npu: gpu, width: 120, height: 36).character }
        #expect(cell(3) == "↓" && cell(6) == "#", "\(b.text)")
        #expect(cell(1) == "C", "die 3 is not half of GPU 1: \(b.text)")
        // The detail panel of a faulted GPU says what is wrong with it.
        state.selectedNPU = 3
        let detail = ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 36).text
        #expect(detail.contains("↓ straggler (slow)  role colocated"), "\(detail)")
    }

    /// A node whose only fault is a straggler die is "slow", not "faulted" (the node line said
    /// "node N faulted" of a node that only had a slow die); a dead NPU still makes it "faulted".
    @Test func nodeLineNamesItsFaultHonestly() throws {
        let engine = try SnapshotFixtures.liveEngine(.superpod, rate: 20, until: 2)
        #expect(engine.apply(try OperatorCommand.parse("fault straggler die 330 slowdown 3").get()).accepted)
        engine.run(until: 4)
        let slow = engine.snapshot()
        func nodeLine(_ s: Snapshot, npu: Int) -> String {
            var state = ConsoleUpdate.update(ConsoleState(width: 160, height: 45), .tick(s)).0
            state.selectedNPU = npu
            let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 45).lines
            return lines.first { $0.contains("│ node \(npu / 8) ") } ?? lines.joined(separator: "\n")
        }
        let line = nodeLine(slow, npu: 165)
        #expect(line.contains("│ node 20 slow  util "), "\(line)")
        #expect(!line.contains("faulted"))
        #expect(engine.apply(try OperatorCommand.parse("fault npu 166").get()).accepted)
        engine.run(until: 6)
        #expect(nodeLine(engine.snapshot(), npu: 165).contains("│ node 20 faulted  util "))
    }

    /// The NPU detail's DP groups: a GPU replica is one group, said as such ("DP groups 0" read
    /// as a count of zero); a superpod decode NPU names its two groups out of the TE's 320.
    @Test func dpGroupsSayWhatTheLayoutIs() throws {
        func detail(_ s: Snapshot, npu: Int) -> String {
            var state = ConsoleUpdate.update(ConsoleState(width: 160, height: 45), .tick(s)).0
            state.selectedNPU = npu
            let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 45).lines
            return lines.first { $0.contains("experts ") && $0.contains("MoE load") } ?? lines.joined(separator: "\n")
        }
        let gpu = detail(Self.snapshot, npu: 5)
        #expect(gpu.contains("│ DP group 0 of 1 · TP4  experts –"), "\(gpu)")
        let one = try SnapshotFixtures.live("colocated:2:llama-2-7b:nvidia-a100:tp1", rate: 2, until: 3)
        #expect(detail(one, npu: 1).contains("│ DP group 0 of 1 · TP1  experts –"))
        let decode = try #require(Self.superpod.npus.first { $0.role == .decode })
        let pod = detail(Self.superpod, npu: decode.id)
        let groups = decode.dpGroups.map(String.init).joined(separator: ", ")
        #expect(pod.contains("│ DP groups \(groups) of 320  experts "), "\(pod)")
    }

    /// xdeepserve-ma's expert dies run every step, 100 % busy even at 1 req/s: judged by busy
    /// share, the whole expert half of the pod was red ("crit") in the healthy steady state. They
    /// are judged by their MoE load against the Experts view's thresholds, and the title and
    /// legend name what colours the roles on the grid (no prefill or decode dies there).
    @Test func expertDiesAreColouredByMoELoadNotBusyShare() throws {
        var s = try SnapshotFixtures.live("xdeepserve-ma", rate: 1, until: 3)
        let experts = s.npus.indices.filter { s.npus[$0].role == .expert }
        #expect(!experts.isEmpty && experts.allSatisfy { s.npus[$0].utilization > 0.9 }, "busy by design")
        let hot = try #require(experts.last)
        s.npus[hot].expertLoad = ExpertsView.imbalanceAlarm + 0.5
        var state = ConsoleUpdate.update(ConsoleState(width: 160, height: 45), .tick(s)).0
        state.selectedNPU = 0
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 45)
        func cell(_ npu: Int) -> Cell { Self.gridCell(b, npu: npu, width: 160, height: 45) }
        let calm = experts.filter { $0 != 0 && $0 != hot && s.npus[$0].expertLoad < ExpertsView.imbalanceWarn }
        #expect(!calm.isEmpty && calm.allSatisfy { cell($0).style == Style(fg: .good) }, "\(calm.map { cell($0).style })")
        #expect(cell(hot).style == NPULoad.style(.critical))
        let text = b.text
        #expect(text.contains("colour = load (attention KV held, expert MoE load)"), "\(text)")
        #expect(text.contains("(attention: KV held · expert: MoE load, high ≥4×, crit ≥6× mean)"), "\(text)")
        // The superpod keeps its words.
        let pod = Self.render(.pod, Self.superpod, width: 160, height: 45).joined(separator: "\n")
        #expect(pod.contains("colour = load (prefill groups busy, decode KV held)")
                && pod.contains("(prefill: share of its TE's DP groups with a prompt · decode: KV held)"))
    }

    /// A trace replay sets no synthetic rate (the snapshot's `arrivalRate` is 0): the header said
    /// "0.0 req/s" beside hundreds of running requests. It shows the measured arrival rate, marked
    /// "≈", and "–" until there is a measurement; a synthetic rate is shown as set.
    @Test func headerMeasuresTheArrivalRateOfATrace() {
        var s = SnapshotFixtures.superpod
        s.arrivalRate = 0
        s.simTime = 100
        s.requests.arrived = 1_000
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 36), .tick(s)).0
        func header() -> String { ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 36).lines[0] }
        #expect(header().contains(" – req/s"), "\(header())")
        s.simTime = 110
        s.requests.arrived = 1_125
        state = ConsoleUpdate.update(state, .tick(s)).0
        #expect(header().contains(" ≈12.5 req/s"), "\(header())")
        #expect(!header().contains(" 0.00 req/s") && !header().contains(" 0.0 req/s"))  // a zero in either form
        s.arrivalRate = 40
        #expect(header().contains(" 40.0 req/s"), "\(header())")
    }

    @Test func expertsViewOfADenseModelShowsNoBalancing() {
        let text = Self.render(.experts).joined(separator: "\n")
        #expect(text.contains("none: llama-3-70b is a dense model (no experts, no EPLB)"), "\(text)")
        #expect(!text.contains("imbalance (max/mean)") && !text.contains("r rebalance now"))
        // Nor does its title count expert dies (it said "0 expert dies of colocated-0 (1 of 2 decode TEs)").
        // An A100 is one die: the panel is "GPU load" there (GPUUnitWordingTests).
        #expect(text.contains("┌ GPU load ─") && !text.contains("expert dies") && !text.contains("expert GPUs"), "\(text)")
    }

    /// The Pod view's cell for an NPU (8 per node row) on a screen of that size.
    static func gridCell(_ b: CellBuffer, npu: Int, width: Int, height: Int) -> Cell {
        let layout = PodLayout(width: width, height: height)
        let (x, y) = layout.origin(ofNode: npu / 8)
        return b[x + layout.labelWidth + (npu % 8) * layout.cellWidth, y]
    }
}
