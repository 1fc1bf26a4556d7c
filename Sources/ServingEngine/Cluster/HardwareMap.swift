/// The pod's hardware map, owned by ``ClusterManager``: which NPUs each TE holds (in the TE's
/// order: its k-th NPU carries its dies `k * diesPerNPU…`), which NPUs and dies each of its DP
/// groups holds, and an index answering "whose is this die?" in O(1).
///
/// TEs are numbered in the order they are laid out (the engine's `instances` indices), DP groups
/// by index within their TE. A TE keeps its number and its groups for life: a retired TE's
/// lists are empty, not removed, so ids held elsewhere stay valid.
///
/// The index answers exactly what a scan would: the owner of a die is the lowest-numbered TE
/// whose NPU list holds the die's NPU, and its group is the first group *of that TE* listing
/// the die (nil: an expert-only die, or one of the TE's NPUs no group uses). The two may
/// disagree with the groups' own lists for a while on purpose: a prefill TE killed to give
/// NPUs to a decode TE drops them from its NPU list at once, while its (out of service)
/// groups keep listing them. The index is extended when a TE is laid out and rebuilt on the
/// rare changes (an NPU swapped, NPUs given away, a TE released): O(NPUs + dies) each.
struct HardwareMap {
    /// Dies per NPU of the pod (die `d` sits on NPU `d / diesPerNPU`).
    let diesPerNPU: Int
    /// Each TE's NPUs, in its order.
    private(set) var teNPUs: [[Int]] = []
    /// Each TE's groups' NPUs (each in die order, no repeats).
    private(set) var groupNPUs: [[[Int]]] = []
    /// Each TE's groups' global die ids.
    private(set) var groupDies: [[[Int]]] = []
    /// By NPU: the lowest TE whose NPU list holds it (-1: none).
    private var npuOwner: [Int32] = []
    /// By die: the first group of its NPU's owner listing it (-1: none).
    private var dieGroup: [Int32] = []

    init(diesPerNPU: Int) {
        self.diesPerNPU = max(1, diesPerNPU)
    }

    var teCount: Int { teNPUs.count }

    // MARK: Changes

    /// Lays out a new TE (numbered `teCount`) on `npus`: `groups` DP groups of `tp` dies each,
    /// group g on the TE's dies `firstDie + g * tp ..< firstDie + (g + 1) * tp`, die k of the TE
    /// on its `k / diesPerNPU`-th NPU (`hardwareDiesPerNPU`: the TE's hardware's; a TE beyond
    /// its list counts on from its first NPU). No NPUs (a TE outside the pod): empty groups.
    /// Returns the TE's number.
    @discardableResult
    mutating func layOut(npus: [Int], groups: Int, tp: Int, firstDie: Int, hardwareDiesPerNPU: Int) -> Int {
        let perNPU = max(1, hardwareDiesPerNPU)
        var npusOfGroups: [[Int]] = []
        var diesOfGroups: [[Int]] = []
        for g in 0..<max(0, groups) {
            var groupNPUs: [Int] = []
            var groupDies: [Int] = []
            if !npus.isEmpty {
                for die in (firstDie + g * tp)..<(firstDie + (g + 1) * tp) {
                    // The TE's k-th NPU (the same as npus[0] + k for a deployment's contiguous
                    // ranges; a TE scaled onto spare NPUs may span separate nodes).
                    let k = die / perNPU
                    let npu = k < npus.count ? npus[k] : npus[0] + k
                    if groupNPUs.last != npu { groupNPUs.append(npu) }
                    groupDies.append(npu * perNPU + die % perNPU)
                }
            }
            npusOfGroups.append(groupNPUs)
            diesOfGroups.append(groupDies)
        }
        teNPUs.append(npus)
        groupNPUs.append(npusOfGroups)
        groupDies.append(diesOfGroups)
        let te = teNPUs.count - 1
        index(te)
        return te
    }

    /// TE `te` moves off NPU `dead` onto `spare`: the TE's list and every group on `dead` take
    /// the spare in its place, each die keeping its position on the NPU.
    mutating func replace(_ dead: Int, with spare: Int, in te: Int) {
        for k in teNPUs[te].indices where teNPUs[te][k] == dead { teNPUs[te][k] = spare }
        for g in groupNPUs[te].indices where groupNPUs[te][g].contains(dead) {
            groupNPUs[te][g] = groupNPUs[te][g].map { $0 == dead ? spare : $0 }
            groupDies[te][g] = groupDies[te][g].map { $0 / diesPerNPU == dead ? spare * diesPerNPU + $0 % diesPerNPU : $0 }
        }
        reindex()
    }

    /// TE `te` gives up `npus` (kill prefill to preserve decode): they leave its NPU list; its
    /// groups, out of service for good, keep theirs.
    mutating func remove(_ npus: [Int], from te: Int) {
        teNPUs[te].removeAll(where: npus.contains)
        reindex()
    }

    /// TE `te` gives up all its hardware (retired): its NPU list and its groups' lists empty.
    mutating func release(_ te: Int) {
        teNPUs[te] = []
        for g in groupNPUs[te].indices {
            groupNPUs[te][g] = []
            groupDies[te][g] = []
        }
        reindex()
    }

    // MARK: Queries

    /// The TE and group (nil: a die of the TE no group uses) that own `die`, if any.
    func locate(die: Int) -> (te: Int, group: Int?)? {
        let npu = die / diesPerNPU
        guard npu >= 0, npu < npuOwner.count else { return nil }
        let te = Int(npuOwner[npu])
        guard te >= 0 else { return nil }
        let g = die >= 0 && die < dieGroup.count ? Int(dieGroup[die]) : -1
        return (te, g >= 0 ? g : nil)
    }

    /// Whether some TE's NPU list holds `npu`.
    func isInUse(npu: Int) -> Bool {
        npu >= 0 && npu < npuOwner.count && npuOwner[npu] >= 0
    }

    // MARK: Index

    private mutating func reindex() {
        npuOwner.removeAll(keepingCapacity: true)
        dieGroup.removeAll(keepingCapacity: true)
        for te in teNPUs.indices { index(te) }
    }

    /// Adds TE `te` to the index, every lower TE being indexed already: it owns the NPUs no
    /// lower TE holds, and of their dies those its groups list.
    private mutating func index(_ te: Int) {
        let owner = Int32(te)
        for npu in teNPUs[te] where npu >= 0 {
            if npu >= npuOwner.count { npuOwner.append(contentsOf: repeatElement(-1, count: npu + 1 - npuOwner.count)) }
            if npuOwner[npu] < 0 { npuOwner[npu] = owner }
        }
        for g in groupDies[te].indices {
            for die in groupDies[te][g] where die >= 0 {
                let npu = die / diesPerNPU
                guard npu < npuOwner.count, npuOwner[npu] == owner else { continue }
                if die >= dieGroup.count { dieGroup.append(contentsOf: repeatElement(-1, count: die + 1 - dieGroup.count)) }
                if dieGroup[die] < 0 { dieGroup[die] = Int32(g) }
            }
        }
    }
}
