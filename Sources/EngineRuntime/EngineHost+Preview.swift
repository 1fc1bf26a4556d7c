import Foundation
import ServingEngine
import SimKit
import Synchronization

/// A core that can fork itself for a preview (``ServingEngine``).
public protocol PreviewableCore: AnyObject {
    /// Forks the core for `request` (on the engine thread, between events), with the scenario
    /// steps the host has still to apply; see ``ServingEngine/startPreview(_:scheduled:)``.
    func startPreview(_ request: PreviewRequest, scheduled: [Scenario.Step]) throws(PreviewRefusal) -> PreviewRun
}

extension ServingEngine: PreviewableCore {}

/// A preview waiting for the engine thread to fork the engine.
final class PendingPreview: Sendable {
    enum State: Sendable {
        case queued
        case withdrawn
        case forked(Result<PreviewRun, PreviewRefusal>)
    }
    let request: PreviewRequest
    let state = Mutex<State>(.queued)
    let done = DispatchSemaphore(value: 0)
    init(request: PreviewRequest) { self.request = request }
}

/// The what-if preview on a hosted engine: the engine thread only forks (between events, in
/// its loop, like a command); the forks run on the caller's thread, so the live engine keeps
/// its pace meanwhile and its state, clock, event log and command log never see the preview.
extension EngineHost: PreviewLink {
    public func preview(_ request: PreviewRequest, progress: @escaping @Sendable (Double) -> Void = { _ in })
        -> Result<PreviewResult, PreviewRefusal>
    {
        preview(request, cancellation: PreviewCancellation(), progress: progress)
    }

    /// Stops computing once `cancellation` is cancelled (or the host stops), within one slice of
    /// simulated time per side; its place among ``Bounds/previews`` is free when this returns.
    public func preview(_ request: PreviewRequest, cancellation: PreviewCancellation,
                        progress: @escaping @Sendable (Double) -> Void = { _ in }) -> Result<PreviewResult, PreviewRefusal>
    {
        if let problem = Self.hostProblem(request.command) { return .failure(PreviewRefusal(problem)) }
        guard core is PreviewableCore else { return .failure(PreviewRefusal("this engine cannot preview")) }
        guard isRunning else { return .failure(PreviewRefusal("engine is not running")) }
        guard previewsRunning.add(1, ordering: .acquiringAndReleasing).newValue <= bounds.previews else {
            previewsRunning.subtract(1, ordering: .acquiringAndReleasing)
            return .failure(PreviewRefusal(Self.previewsBusy(bounds.previews)))
        }
        defer { previewsRunning.subtract(1, ordering: .acquiringAndReleasing) }
        // Registered before the fork is queued, so a stop from here on cancels it (``stop(timeout:)``).
        let key = ObjectIdentifier(cancellation)
        previewCancellations.withLock { $0[key] = cancellation }
        defer { previewCancellations.withLock { _ = $0.removeValue(forKey: key) } }
        if !isRunning { cancellation.cancel() }
        // Nobody waits already: not worth forking the engine for.
        if cancellation.isCancelled { return .failure(Self.cancelledRefusal(hostRunning: isRunning)) }
        let pending = PendingPreview(request: request)
        previewInbox.withLock { $0.append(pending) }
        wakeEngine()
        if pending.done.wait(timeout: .now() + bounds.command) == .timedOut {
            let withdrawn: Bool = pending.state.withLock {
                guard case .queued = $0 else { return false }
                $0 = .withdrawn
                return true
            }
            if withdrawn {
                return .failure(PreviewRefusal(Self.notApplied(bounds.command) + "\(request) (withdrawn)"))
            }
            pending.done.wait()
        }
        guard case .forked(let forked) = pending.state.withLock({ $0 }) else {
            return .failure(PreviewRefusal("engine stopped"))
        }
        switch forked {
        case .failure(let refusal): return .failure(refusal)
        case .success(let run):
            let began = DispatchTime.now().uptimeNanoseconds
            let budget = bounds.previewWall
            let timeUp = DispatchWorkItem {
                cancellation.stop(reason: "it used up its \(Pacer.format(budget)) s wall-clock budget")
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + budget, execute: timeUp)
            defer { timeUp.cancel() }
            guard var result = run.run(progress: progress, cancellation: cancellation) else {
                return .failure(Self.cancelledRefusal(hostRunning: isRunning))
            }
            result.wallSeconds = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
            return .success(result)
        }
    }

    /// The refusal when ``Bounds/previews`` previews are computing (an "engine" message: 503).
    static func previewsBusy(_ limit: Int) -> String {
        "engine busy: \(limit) preview\(limit == 1 ? " is" : "s are") already computing (at most \(limit) at a time); "
            + "try again when one finishes"
    }

    /// The refusal of a preview cancelled while the engine runs on (its client left).
    static let previewCancelled = "preview cancelled: nobody is waiting for it"

    /// A stopped host's starts with "engine" (the admin API's 503).
    static func cancelledRefusal(hostRunning: Bool) -> PreviewRefusal {
        PreviewRefusal(hostRunning ? previewCancelled : "engine stopped: preview cancelled")
    }

    /// Engine stopping: previews computing stop at their next slice.
    func cancelRunningPreviews() {
        for cancellation in previewCancellations.withLock({ Array($0.values) }) { cancellation.cancel() }
    }

    /// Engine thread: forks the engine for every queued preview.
    func forkPendingPreviews() {
        let batch = previewInbox.withLock { q in defer { q.removeAll() }; return q }
        guard !batch.isEmpty, let core = core as? PreviewableCore else { return }
        for pending in batch {
            let claimed: Bool = pending.state.withLock {
                guard case .queued = $0 else { return false }
                do throws(PreviewRefusal) {
                    // The steps still to come go with the forks: the window's traffic and events
                    // include them, as the live run's will (a copy: the live list is untouched).
                    $0 = .forked(.success(try core.startPreview(pending.request, scheduled: Array(scenarioSteps))))
                } catch {
                    $0 = .forked(.failure(error))
                }
                return true
            }
            if claimed { pending.done.signal() }
        }
    }

    /// Engine stopping: previews still queued are answered.
    func refusePendingPreviews() {
        let batch = previewInbox.withLock { q in defer { q.removeAll() }; return q }
        for pending in batch {
            let claimed: Bool = pending.state.withLock {
                guard case .queued = $0 else { return false }
                $0 = .forked(.failure(PreviewRefusal("engine stopped")))
                return true
            }
            if claimed { pending.done.signal() }
        }
    }
}
