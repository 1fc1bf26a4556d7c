import ArgumentParser
import Foundation
import SimKit

/// `xds bench events`: raw throughput of the SimKit event queue, the floor under every
/// simulation's events-per-second budget (architecture.md, performance budget).
///
/// ```
/// xds bench events --count 2000000 --json
/// ```
struct BenchEvents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Events per second through the SimKit event queue")

    @Option(parsing: .unconditional, help: "Number of events to schedule and pop, \(FlagLimits.eventCount.allowed).")
    var count: CLINumber = 2_000_000

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let count = try FlagLimits.eventCount.int(count)
        // A steady-state queue of ~1,000 pending events, like an engine with many timers:
        // every pop schedules one follow-up a random short delay later.
        var rng = RandomStream(seed: 1)
        var queue = EventQueue<Int>()
        let inFlight = min(1_000, count)
        for i in 0..<inFlight { queue.schedule(at: rng.uniform(), i) }
        var scheduled = inFlight
        var processed = 0
        var checksum = 0
        let start = DispatchTime.now().uptimeNanoseconds
        while let (time, payload) = queue.popNext() {
            processed += 1
            checksum &+= payload
            if scheduled < count {
                queue.schedule(at: time + rng.uniform(), scheduled)
                scheduled += 1
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let rate = Double(processed) / max(seconds, 1e-9)
        if json {
            try printJSON(["events": processed, "events_per_second": Int(rate.rounded())])
        } else {
            print("\(processed) events in \(String(format: "%.3f", seconds)) s: \(Int(rate)) events/s (checksum \(checksum))")
        }
    }
}
