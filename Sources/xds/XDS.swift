import ArgumentParser
import PodModel

@main
struct XDS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "xds", abstract: "xDeepServe digital twin")
    func run() throws {
        let c = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        for f in [1.0, 2.0, 3.4] {
        for a in [0.7, 0.0] {
            var i = DecodeStepInput(requestsPerGroup: 96, contextTokens: 4096, mtpAcceptance: a, expertDies: 320, routedSlots: 288, sharedExpertDies: 32)
            i.moeLoadFactor = f
            let s = c.decodeStep(i)
            print("f=\(f) a=\(a) step \(s.stepSeconds*1e3) layer \(s.layerSeconds*1e3) tpot \(s.tpot*1e3) tps/die \(96*s.tokensPerStep/s.stepSeconds) bd att \(s.breakdown.attention/58*1e3) moe \(s.breakdown.moe/58*1e3) disp \(s.breakdown.dispatch/58*1e3) comb \(s.breakdown.combine/58*1e3) other \(s.breakdown.other*1e3)")
        }}
        for ep in [8, 16, 32, 64, 128, 256] {
            let d = c.messagesPerToken(sharedExpertDies: 0)
            print("EP\(ep) dispatch \(c.dispatch(tokensPerRank: 128, destinations: d, ep: ep)*1e6) combine \(c.combine(tokensPerRank: 128, destinations: d, ep: ep)*1e6)")
        }
        XDS.prefillProbe()
        let m = ModelSpec.deepSeekR1
        print(m.totalParameters/1e9, m.activeParameters/1e9, m.kvBytesPerTokenPerLayer, m.weightBytes/1e9)
    }
}
extension XDS {
    static func prefillProbe() {
        let c = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        for mb in [2, 1] {
            var i = PrefillBatchInput(tokensPerDie: 16384, promptTokens: 4096, attentionTP: 4, expertDies: 32, routedSlots: 288)
            i.microbatches = mb
            let p = c.prefillBatch(i)
            print("prefill mb\(mb) batch \(p.batchSeconds) tps/die \(p.tokensPerSecondPerDie) att \(p.breakdown.attention) moe \(p.breakdown.moe) disp \(p.breakdown.dispatch) comb \(p.breakdown.combine) other \(p.breakdown.other)")
        }
    }
}
