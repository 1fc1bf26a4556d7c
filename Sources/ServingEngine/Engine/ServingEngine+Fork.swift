import SimKit

/// `fork()`: a deep, independent copy of a running engine (engine-components.md §4), the base
/// of the what-if preview (ServingEngine+Preview).
///
/// Today's engine state is values (structs, arrays, dictionaries, `Deque`s, the event queue's
/// heap, `RandomStream`s), so assigning each stored property copies it (copy-on-write: a
/// buffer is duplicated by whichever side writes it next). The exceptions are handled here:
/// - the workload may hold a class (a trace's file handle): ``WorkloadSource/fork()`` gives the
///   copy its own handle at the same byte offset;
/// - per-instance state goes through ``InstanceState/forked()``, the one place to deep-copy it
///   once instances are a reference type;
/// - the components are classes, each deep-copied by its `copy()` (the JE, the cluster
///   manager with its scaling controller, the fault system, the expert system, the client streams, the KV cache store and
///   KV transfer in `init(forking:)`);
/// - random streams are copied where they stand, never re-derived from the seed (which would
///   restart them): the workload's, the external-lengths stream (in ``ClientStreams/copy()``,
///   taken in `init(forking:)`), and the per-TE expert routing streams (in ``ExpertSystem/copy()``);
/// - the event queue is copied whole, its sequence counter included, so equal-time events pop
///   in the same order on both sides; its payloads are ids and values.
/// Nothing reachable from the engine holds a closure over it (the EPLB planner is passed per
/// call; recovery policies are static functions of their arguments).
///
/// Call it on the engine's thread, between events.
extension ServingEngine {
    /// A deep, independent copy: running either never changes the other, and both run on
    /// from here exactly as the original would have. Throws only if a trace cannot be reopened.
    public func fork() throws -> ServingEngine {
        let copy = ServingEngine(forking: self, workload: try workload.fork())
        copy.queue = queue
        copy.arrivalPending = arrivalPending
        copy.requests = requests
        copy.instances = instances.map { $0.forked() }
        copy.speed = speed
        copy.paused = paused
        copy.commandsApplied = commandsApplied
        copy.telemetryTickEvent = telemetryTickEvent
        copy.heartbeatEvent = heartbeatEvent
        copy.noSkipBefore = noSkipBefore
        copy.idleSkipEnabled = idleSkipEnabled
        copy.skippedPeriodicEvents = skippedPeriodicEvents
        copy.eventsAtCurrentInstant = eventsAtCurrentInstant
        copy.arrivalsAtInstant = arrivalsAtInstant
        copy.lastArrivalAt = lastArrivalAt
        copy.scheduledArrival = scheduledArrival
        copy.parkedArrival = parkedArrival
        return copy
    }

    /// The objects a fork must not share with its original: the engine, its components, its
    /// TEs and their decode schedulers (a test checks the two sets are disjoint).
    func componentIdentities() -> Set<ObjectIdentifier> {
        var ids: Set<ObjectIdentifier> = [ObjectIdentifier(self), ObjectIdentifier(je), ObjectIdentifier(kvTransfer),
                                          ObjectIdentifier(cluster), ObjectIdentifier(cluster.scaling), ObjectIdentifier(faults),
                                          ObjectIdentifier(streams), ObjectIdentifier(kvStore), ObjectIdentifier(experts)]
        for te in instances {
            ids.insert(ObjectIdentifier(te))
            if let prefill = te.prefill { ids.insert(ObjectIdentifier(prefill)) }
            if let decode = te.decode { ids.insert(ObjectIdentifier(decode)) }
        }
        return ids
    }

    /// Every stored property of the engine, by name: ``fork()`` copies each (the lets and the
    /// clock in `init(forking:)`). A test compares this list with the engine's real stored
    /// properties, so a property added without a line in ``fork()`` fails it.
    static let forkedProperties: Set<String> = [
        "configuration", "model", "hardware", "topology", "cost", "tokensPerStep", "workload", "workloadIsSynthetic",
        "queue", "now",
        "arrivalPending", "requests", "instances", "kvTransfer", "telemetry", "cluster", "faults",
        "speed", "paused", "commandsApplied", "streams",
        "experts", "kvStore", "je",
        "telemetryTickEvent", "heartbeatEvent",
        "noSkipBefore", "idleSkipEnabled", "skippedPeriodicEvents", "eventsAtCurrentInstant", "arrivalsAtInstant",
        "lastArrivalAt", "scheduledArrival", "parkedArrival",
    ]
}
