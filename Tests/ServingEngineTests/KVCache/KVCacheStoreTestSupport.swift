@testable import ServingEngine

/// Test reads of the KV store's group managers: copies, for checks (the engine itself never
/// copies a manager; it reads numbers or borrows them through ``KVCacheStore/withGroups(of:_:)``).
extension KVCacheStore {
    /// A copy of group `g` of TE `te`'s manager.
    subscript(te: Int, g: Int) -> KVBlockManager { self[GroupRef(te: te, group: g)] }

    /// A copy of group `g`'s manager.
    subscript(g: GroupRef) -> KVBlockManager { withGroup(g) { copy $0 } }

    /// A new TE of one group of `blocks` blocks: that group.
    func addGroup(blocks: Int) -> GroupRef { GroupRef(te: addTE(groups: 1, blocksEach: blocks)!, group: 0) }

    /// Copies of TE `te`'s managers, by group.
    func groupManagers(of te: Int) -> [KVBlockManager] { withGroups(of: te) { Array($0) } }

    /// A store of one TE (index 0) of `groups` groups of `blocks` blocks, without a pool.
    static func oneTE(groups: Int, blocks: Int, blockTokens: Int) -> KVCacheStore {
        let store = KVCacheStore(blockTokens: blockTokens, kvBytesPerToken: 1, poolCapacityBytes: 0)
        store.addTE(groups: groups, blocksEach: blocks)
        return store
    }
}
