import Testing
@testable import ServingEngine

/// The greedy planner's sorts skip checking that the last plan's orders are permutations of the
/// experts when the planner itself wrote them (issue 12). Orders set from outside must be checked
/// again; plans are the reference plans either way.
@Suite struct PlanningOrdersTests {
    static func isPermutation(_ order: [Int32], of n: Int) -> Bool {
        order.count == n && Set(order.map(Int.init)) == Set(0..<n)
    }

    @Test func onlyOrdersThePlannerWroteAreTrusted() {
        let pops = EPLBPlannerEquivalenceTests.populations()
        var orders = PlanningOrders()
        #expect(orders.fromPlanner)  // nothing to trust yet: every layer's hint is of the wrong length
        for pop in pops {
            let reference = pop.layers.map { ReferencePlanners.greedyLayer(load: $0, dies: 32, slotsPerDie: 9) }
            let plan = ExpertPlacement.greedy(popularity: pop, dies: 32, slotsPerDie: 9, orders: &orders)
            #expect(plan.layers == reference)
            #expect(orders.fromPlanner)
            #expect(zip(orders.layers, pop.layers).allSatisfy { Self.isPermutation($0, of: $1.count) })
        }
        // A layer set from outside (here: not a permutation) is no longer trusted, and is ignored.
        let pop = pops[1]
        orders.layers[0] = Array(repeating: 2, count: pop.experts)
        #expect(!orders.fromPlanner)
        let reference = pop.layers.map { ReferencePlanners.greedyLayer(load: $0, dies: 32, slotsPerDie: 9) }
        #expect(ExpertPlacement.greedy(popularity: pop, dies: 32, slotsPerDie: 9, orders: &orders).layers == reference)
        // The plan rewrote every layer: trusted again.
        #expect(orders.fromPlanner)
        #expect(Self.isPermutation(orders.layers[0], of: pop.experts))
        orders.layers = []
        #expect(!orders.fromPlanner)
    }
}
