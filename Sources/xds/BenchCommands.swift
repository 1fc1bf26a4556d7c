import ArgumentParser
import Foundation
import PodModel
import ServingEngine

struct BenchGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Fixed-batch operating points and speed benchmarks.",
        subcommands: [BenchDecode.self, BenchPrefill.self, BenchEvents.self, BenchConsole.self, BenchReplay.self, BenchSnapshot.self,
                      BenchPreview.self])
}

struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "One decode step at a fixed batch and context (ignore-EOS), as the papers measure.")
    @OptionGroup var deployment: DeploymentOption
    @Option(parsing: .unconditional, help: "Requests per die (per DP group at TP1), \(FlagLimits.batchPerDie.allowed).")
    var batchPerDie: CLINumber = 96
    @Option(parsing: .unconditional, help: "KV length of every request, in tokens: at least 1 (a decode request holds its prompt's KV), at most the model's context window.")
    var context: CLINumber = 4096
    @Option(parsing: .unconditional,
            help: "MTP acceptance rate (0 disables MTP), \(FlagLimits.mtpAcceptance.allowed) (default: 0.7 on a model with an MTP module).")
    var mtpAcceptance: CLINumber?
    @Option(parsing: .unconditional,
            help: "Microbatches per step, 1 or 2 (default: whichever is faster, as the scheduler picks).")
    var microbatches: CLINumber?
    @Option(parsing: .unconditional,
            help: "Spread of the KV lengths in a DP group's batch (an attention die's, in a MoE–attention layout), as a coefficient of variation, \(FlagLimits.contextCV.allowed) (default 0.29: uniform ±50% around --context, a fixed-batch benchmark; a live run's decode_batch_at_end.context_cv gives its own).")
    var contextCV: CLINumber?
    @Option(parsing: .unconditional,
            help: "The hottest expert die's load over the mean to price, from 1 (perfect balance) to the routed expert dies' count: one factor (the layers keep the skew draw's shape), or a comma-separated list, one per equal group of MoE layers (default: what --eplb plans on a fresh draw of the skew; a live run's decode_batch_at_end.moe_load_factors give its own, EPLB's plan as stale as it was).")
    var moeLoadFactor: CLINumber?
    @OptionGroup var experts: ExpertBenchOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        // Every number against its range (FlagLimits); the context window needs the model.
        let batchPerDie = try FlagLimits.batchPerDie.value(batchPerDie)
        let mtpAcceptance = try FlagLimits.mtpAcceptance.value(self.mtpAcceptance ?? 0.7)
        let microbatches = try self.microbatches.map(FlagLimits.microbatches.int)
        let contextCV = try self.contextCV.map(FlagLimits.contextCV.value)
        // One factor or a comma-separated list; their range is the deployment's (up to its routed
        // expert dies), checked by the bench.
        let moeLoadFactor = try self.moeLoadFactor.map { n in
            try n.text.split(separator: ",", omittingEmptySubsequences: false).map { part in
                guard let x = CLINumber(argument: String(part)).number else {
                    throw ConfigError("--moe-load-factor must be a number from 1 (perfect balance) to the deployment's "
                        + "routed expert dies, or a comma-separated list of them, got \(n.quoted)")
                }
                return x
            }
        }
        let seed = try experts.checkedSeed()
        let d = try deployment.resolve()
        try experts.refuseOnDense(d.modelSpec())
        let context = try FlagLimits.context(d.modelSpec()).value(context)
        // A model without an MTP module makes one token a step whatever the rate: an acceptance
        // asked for was taken and ignored (tokens_per_step 1).
        if self.mtpAcceptance != nil, mtpAcceptance > 0, try d.modelSpec().mtpModules == 0 {
            throw ConfigError("--mtp-acceptance: \(d.model) has no MTP module, so no draft token is accepted; "
                + "leave --mtp-acceptance out (or give 0)")
        }
        let r = try Bench.decode(deployment: d, batchPerDie: batchPerDie, context: context,
                                 mtpAcceptance: mtpAcceptance, eplb: experts.eplb, routing: experts.routing,
                                 microbatches: microbatches, seed: seed, contextCV: contextCV, moeLoadFactor: moeLoadFactor)
        if json { return try printJSON(r) }
        // A dense model has no experts: no EPLB, routing or load factor to show, and every layer
        // is priced as one dense block (the breakdown's `other`), so the text says that instead of
        // printing "attention 0.0 ms  moe 0.0".
        let dense = try !d.modelSpec().isMoE
        let experts = dense ? "dense model, no experts" : "eplb \(r.eplb?.rawValue ?? "-"), routing \(r.routing?.rawValue ?? "-")"
        let spread = r.contextCV > 0 ? " (spread cv \(fmt(r.contextCV, 2)))" : ""
        let die = try d.hardwareProfile().dieWord
        print("decode on \(r.deployment.terminalSafe): batch \(Bench.batchPerDieText(r.batchPerDie))/\(die), context \(fmt(r.context))\(spread), \(experts)")
        print("  step \(fmt(r.stepMs, 2)) ms   layer \(fmt(r.layerMs, 3)) ms   TPOT \(fmt(r.tpotMs, 2)) ms   \(fmt(r.tokensPerStep, 2)) tokens/step")
        let loadFactor = dense ? "" : "   MoE load factor \(fmt(r.moeLoadFactor, 2))"
        print("  \(try throughputScopes(r.tokensPerSecondPerNPU, perChip: r.tokensPerSecondPerChip, d))\(loadFactor)   "
              + "\(r.microbatches) microbatch(es)")
        // MoE–attention disaggregation: the batch is per attention die, the throughput per die of
        // the whole layout (expert dies too); both scopes written out, side by side.
        if let ma = d.moeAttention {
            let all = ma.attentionDies + ma.expertDies
            let perAttention = r.tokensPerSecondPerNPU * Double(all) / Double(max(1, ma.attentionDies))
            print("  per die above = over all \(all) dies (\(ma.attentionDies) attention + \(ma.expertDies) expert); "
                  + "\(fmt(perAttention)) tokens/s per attention die, the dies the batch is counted on")
        }
        let b = r.breakdownMs
        // With two microbatches the attention and MoE streams run at once on their own cores, so
        // the parts are busy times that add up to more than the step; say so beside them.
        let overlap = b.attention + b.moe + b.dispatch + b.combine + b.other > r.stepMs * 1.01
            ? " (busy time per stream; the streams overlap, so the parts add up to more than the step)" : ""
        print("  per step: " + breakdownText(b, dense: dense) + overlap)
        // EPLB with nothing to move (one expert per routed die, no redundant slot): "eplb on"
        // with the same load factor as off read as a planner that failed. Said, with the fix.
        if !dense, r.eplb == .on,
           let off = try? Bench.decode(deployment: d, batchPerDie: batchPerDie, context: context, mtpAcceptance: mtpAcceptance,
                                       eplb: .off, routing: self.experts.routing, microbatches: microbatches, seed: seed,
                                       contextCV: contextCV),
           off.moeLoadFactor == r.moeLoadFactor, r.moeLoadFactor > 1 {
            let room = d.moeAttention == nil ? "redundant_experts in a deployment TOML gives it room"
                : "a MoE–attention layout has no redundant slots"
            print("  note: EPLB changes nothing on this layout: one expert per routed die and no redundant slot, so "
                  + "moving experts between dies leaves each die's load as it was (\(room))")
        }
        // An operating point the engine cannot reach: priced all the same (what-if), and said.
        if let limit = Bench.decodeBatchLimitPerDie(d), batchPerDie > limit {
            print("  note: past \(d.name.terminalSafe)'s batch limit of \(Bench.batchPerDieText(limit)) requests per \(die); its engine never "
                  + "batches this many")
        }
    }
}

struct BenchPrefill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefill", abstract: "One prefill batch at a fixed prompt length and tokens per NPU.")
    @OptionGroup var deployment: DeploymentOption
    @Option(parsing: .unconditional, help: "Prompt length in tokens (at most the model's context window).")
    var promptLen: CLINumber = 4096
    @Option(parsing: .unconditional, help: "Prompt tokens per NPU (die) in the batch, \(FlagLimits.tokensPerNPU.allowed); the batch (this × the prefill instance's dies) must hold at least one --prompt-len prompt.")
    var tokensPerNpu: CLINumber = 16384
    @OptionGroup var experts: ExpertBenchOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let tokensPerNPU = try FlagLimits.tokensPerNPU.value(tokensPerNpu)
        let seed = try experts.checkedSeed()
        let d = try deployment.resolve()
        try experts.refuseOnDense(d.modelSpec())
        let promptLen = try FlagLimits.promptLen(d.modelSpec()).value(promptLen)
        let r = try Bench.prefill(deployment: d, promptLen: promptLen, tokensPerNPU: tokensPerNPU,
                                  eplb: experts.eplb, routing: experts.routing, seed: seed)
        if json { return try printJSON(r) }
        let dense = try !d.modelSpec().isMoE
        let experts = dense ? "dense model, no experts" : "eplb \(r.eplb?.rawValue ?? "-")"
        print("prefill on \(r.deployment.terminalSafe): \(fmt(r.promptLen))-token prompts, \(fmt(r.tokensPerNPU)) tokens per "
              + "\(try d.hardwareProfile().dieWord), \(experts)")
        print("  batch \(fmt(r.batchMs, 1)) ms   \(try throughputScopes(r.tokensPerSecondPerNPU, perChip: r.tokensPerSecondPerChip, d))")
        print("  " + breakdownText(r.breakdownMs, dense: dense))
    }
}

/// A bench's tokens/s in both scopes, "1937 tokens/s per NPU (die)   3874 per chip" on Ascend. A
/// one-die GPU is its die and its chip: "per NPU (die) … per chip" named two parts it does not
/// have with the same figure twice, so it says "per GPU" once (as `xds run` does).
func throughputScopes(_ perDie: Double, perChip: Double, _ d: Deployment) throws -> String {
    let die = try d.hardwareProfile().dieWord
    return die == "die" ? "\(fmt(perDie)) tokens/s per NPU (die)   \(fmt(perChip)) per chip" : "\(fmt(perDie)) tokens/s per \(die)"
}

/// A bench's time split, in ms. A dense model's layers are priced as whole dense blocks, which
/// the breakdown files under `other`, so its line says so rather than show zero attention.
private func breakdownText(_ b: Bench.Breakdown, dense: Bool) -> String {
    dense ? "all layers, LM head, sampling and host overheads \(fmt(b.other, 1)) ms (a dense layer is not split further)"
        : "attention \(fmt(b.attention, 1)) ms  moe \(fmt(b.moe, 1))  dispatch \(fmt(b.dispatch, 1))  combine \(fmt(b.combine, 1))  other \(fmt(b.other, 1))"
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "The published calibration points beside the simulated values; exits 1 if any is out of tolerance.",
        // There is no --model: the published points are the papers' own models. Another model is
        // looked at through a sweep of a deployment that serves it, which --help had left unsaid.
        discussion: "The published points are of the papers' own models and deployments. To look at another model, "
            + "sweep a deployment that serves it: xds validate --sweep --deployment colocated:N:MODEL:PROFILE:tpK "
            + "(e.g. \(Validate.otherModelExample)), or a .toml file naming the model.")
    /// The spec `--help` shows for another model; a test runs it.
    static let otherModelExample = "colocated:1:llama-2-7b:ascend-910c:tp1"
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print the decode step time against batch (8…128) and context (1K…16K) instead.") var sweep = false
    @Option(help: "Deployment of --sweep (preset, colocated:N:MODEL:PROFILE:tpK spec or .toml file; default: cloudmatrix-infer).")
    var deployment: String?

    func run() throws {
        // The published points are of their own deployments: a --deployment there was ignored.
        if !sweep, deployment != nil {
            throw ConfigError("--deployment applies to --sweep; the published points are checked on the papers' own deployments")
        }
        if sweep {
            // Read as every other command reads a deployment (``DeploymentOption/resolve()``): a
            // file's misspelt `[policies]` name was refused by run and bench but passed here.
            var option = DeploymentOption()
            option.deployment = self.deployment ?? "cloudmatrix-infer"
            option.model = nil
            let d = try option.resolve()
            let rows = try Validation.sweep(deployment: d)
            if json { return try printJSON(rows) }
            let spec = try d.modelSpec()
            // What `bench decode` assumes by default (Validation.sweep calls it so) for an MoE model,
            // the barrier's spread of KV lengths included: a cell is not a batch of equal contexts.
            let routing = spec.isMoE
                ? ", EPLB on, skewed routing, KV lengths spread with cv \(fmt(CostConstants.default.contextSpread, 2)) around the context"
                : ""
            print(Validation.sweepTable(rows, mtp: spec.mtpModules > 0, setup: "\(d.name) · \(d.model)\(routing)",
                                        batchLimit: Bench.decodeBatchLimitPerDie(d), dieWord: try d.hardwareProfile().dieWord))
            return
        }
        let points = try Validation.run()
        let failed = points.filter { $0.enforced && !$0.withinTolerance }
        if json {
            struct Out: Encodable { var points: [Validation.Point]; var ok: Bool }
            try printJSON(Out(points: points, ok: failed.isEmpty))
        } else {
            // Each column as wide as its widest cell: names were cut at 52 characters, mid-phrase
            // ("decode throughput per die (system.md's per NPU; same"), and a range such as
            // "116.000–152.000 µs" pushed the columns after it out of line. --json is the
            // machine-read form; the status stays last on the line.
            let rows = points.map { p -> (name: String, published: String, simulated: String, error: String, rest: String) in
                let published = p.publishedHigh.map { "\(fmt(p.published, 3))–\(fmt($0, 3))" } ?? fmt(p.published, 3)
                let status = !p.enforced ? (p.withinTolerance ? "info" : "info, outside") : (p.withinTolerance ? "ok" : "OUT")
                let error = p.absolute ? "\(fmt(p.error, 1))pt" : "\(fmt(p.error * 100, 1))%"
                let tolerance = p.absolute ? "±\(fmt(p.tolerance, 0))pt" : "±\(fmt(p.tolerance * 100, 0))%"
                return (p.name, "\(published) \(p.unit)", fmt(p.simulated, 3), error, "  \(tolerance) \(status)")
            }
            let nameWidth = max(52, (rows.map(\.name.count).max() ?? 0) + 1)
            let publishedWidth = max(16, (rows.map(\.published.count).max() ?? 0) + 1)
            let simulatedWidth = max(12, (rows.map(\.simulated.count).max() ?? 0) + 1)
            let errorWidth = max(9, (rows.map(\.error.count).max() ?? 0) + 1)
            print("point".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "published".leftPad(publishedWidth)
                  + "simulated".leftPad(simulatedWidth) + "error".leftPad(errorWidth) + "  tol")
            for row in rows {
                print(row.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + row.published.leftPad(publishedWidth)
                      + row.simulated.leftPad(simulatedWidth) + row.error.leftPad(errorWidth) + row.rest)
            }
            // The informative rows are published figures too: one the model misses is said here,
            // not only in its row (the headline read as "every published point holds").
            let infoOut = points.filter { !$0.enforced && !$0.withinTolerance }.count
            let infoNote = infoOut == 0 ? "" : "; \(infoOut) informative point\(infoOut == 1 ? "" : "s") (info) outside "
                + "\(infoOut == 1 ? "its" : "their") tolerance"
            print((failed.isEmpty ? "all \(points.filter(\.enforced).count) enforced points within tolerance"
                                  : "\(failed.count) point(s) out of tolerance") + infoNote)
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

func fmt(_ x: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", x) }

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// How a bench routes tokens to experts (shared by decode and prefill). Optional, so a setting
/// given for a dense model (no experts) is refused rather than taken and ignored.
struct ExpertBenchOptions: ParsableArguments {
    @Option(name: .customLong("eplb"), help: "Expert load balancing: off, on (default) or perfect.")
    var eplbGiven: EPLBMode?
    @Option(name: .customLong("routing"),
            help: "Expert routing skew: skewed (system.md's measured DeepSeek-R1 distribution, default) or balanced (idealised).")
    var routingGiven: RoutingSkew?
    @Option(name: .customLong("seed"), parsing: .unconditional,
            help: "Seed of the skewed routing draw, default 1 (with --eplb on or perfect the placement evens it out, so the seed barely shows).")
    var seedGiven: CLINumber?

    var eplb: EPLBMode { eplbGiven ?? .on }
    var routing: RoutingSkew { routingGiven ?? .skewed }
    func checkedSeed() throws -> UInt64 { try FlagLimits.seed(seedGiven ?? 1) }

    /// A dense model has no experts to balance or route: `--eplb perfect` on one was taken, and
    /// the figures were the same as without it.
    func refuseOnDense(_ model: ModelSpec) throws {
        guard !model.isMoE else { return }
        let given = [eplbGiven.map { _ in "--eplb" }, routingGiven.map { _ in "--routing" }, seedGiven.map { _ in "--seed" }]
            .compactMap { $0 }
        guard let flag = given.first else { return }
        throw ConfigError("\(flag): \(model.name) is a dense model with no experts to balance or route; "
            + "leave \(given.joined(separator: ", ")) out")
    }
}
