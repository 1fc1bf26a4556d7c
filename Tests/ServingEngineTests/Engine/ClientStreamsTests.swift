import SimKit
import Testing

@testable import ServingEngine

/// ``ClientStreams`` through its own API: ids, output lengths from their own stream, the updates
/// each event produces for open streams (and none for others), closing, `take()`, and `copy()`.
@Suite(.timeLimit(.minutes(10))) struct ClientStreamsTests {
    /// The natural lengths the component must draw: the chat distribution on the seed's
    /// "external-lengths" stream (the stream the engine has always used, so replays stay in step).
    private func naturalLengths(seed: UInt64, count: Int) -> [Int] {
        var stream = RandomStreams(seed: seed).stream("external-lengths")
        return (0..<count).map { _ in
            Int(saturating: SyntheticWorkload.TrafficClass.chat.outputTokens.sample(using: &stream).rounded())
        }
    }

    @Test func idsCountUpFromTheExternalBaseAndStreamsOpenAtZeroTokens() {
        let streams = ClientStreams(seed: 1)
        #expect(!streams.hasOpenStreams)
        let a = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: false)
        let b = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: false)
        #expect(a.id == ClientStreams.firstID && b.id == ClientStreams.firstID + 1)
        #expect(ClientStreams.firstID > 1 << 32, "far above any workload id")
        #expect(streams.isWatched(a.id) && streams.isWatched(b.id) && !streams.isWatched(7))
        #expect(streams.tokensSoFar(a.id) == 0 && streams.tokensSoFar(7) == nil)
        #expect(streams.hasOpenStreams)
        #expect(streams.take().isEmpty, "opening says nothing: admission does")
    }

    @Test func lengthsAreDrawnOncePerRequestWhateverTheFlags() {
        let natural = naturalLengths(seed: 5, count: 4)
        let streams = ClientStreams(seed: 5)
        let huge = 1_000_000
        // ignoreEOS: exactly maxTokens, but the draw still happens.
        #expect(streams.open(maxTokens: 17, minTokens: 0, ignoreEOS: true).outputTokens == 17)
        // The natural length, uncapped.
        #expect(streams.open(maxTokens: huge, minTokens: 0, ignoreEOS: false).outputTokens == max(1, natural[1]))
        // Raised to minTokens, capped at maxTokens.
        #expect(streams.open(maxTokens: huge, minTokens: natural[2] + 50, ignoreEOS: false).outputTokens == natural[2] + 50)
        #expect(streams.open(maxTokens: 1, minTokens: 0, ignoreEOS: false).outputTokens == 1)
        // A fresh component with other flags draws the same numbers for the same requests.
        let other = ClientStreams(seed: 5)
        let lengths = (0..<4).map { _ in other.open(maxTokens: huge, minTokens: 0, ignoreEOS: false).outputTokens }
        #expect(lengths == natural.map { max(1, $0) })
        let reseeded = ClientStreams(seed: 6)
        #expect((0..<4).map { _ in reseeded.open(maxTokens: huge, minTokens: 0, ignoreEOS: false).outputTokens } != lengths,
                "the seed picks the stream")
    }

    @Test func aMaxTokensBelowOneStillGivesOneToken() {
        let streams = ClientStreams(seed: 1)
        #expect(streams.open(maxTokens: 0, minTokens: 0, ignoreEOS: true).outputTokens == 1)
        #expect(streams.open(maxTokens: -3, minTokens: 50, ignoreEOS: false).outputTokens == 1)
    }

    @Test func progressReportsIncreasesWithTheCachedPromptFirst() {
        let streams = ClientStreams(seed: 1)
        let id = streams.open(maxTokens: 100, minTokens: 0, ignoreEOS: false).id
        streams.accepted(id)
        streams.progress(id, tokensSoFar: 0, cachedPromptTokens: 128)   // nothing produced yet
        streams.progress(id, tokensSoFar: 2, cachedPromptTokens: 128)
        streams.progress(id, tokensSoFar: 2, cachedPromptTokens: 128)   // no change
        streams.progress(id, tokensSoFar: 1, cachedPromptTokens: 128)   // never backwards
        streams.progress(id, tokensSoFar: 5, cachedPromptTokens: 128)   // cached prompt only once
        #expect(streams.tokensSoFar(id) == 5)
        #expect(streams.take() == [
            StreamUpdate(id: id, kind: .accepted),
            StreamUpdate(id: id, kind: .cachedPrompt(128)),
            StreamUpdate(id: id, kind: .tokens(2)),
            StreamUpdate(id: id, kind: .tokens(3)),
        ])
        #expect(streams.take().isEmpty, "take empties")
        let noHit = streams.open(maxTokens: 100, minTokens: 0, ignoreEOS: false).id
        streams.progress(noHit, tokensSoFar: 1, cachedPromptTokens: 0)
        #expect(streams.take() == [StreamUpdate(id: noHit, kind: .tokens(1))])
    }

    @Test func finishedSendsTheRestThenClosesTheStream() {
        let streams = ClientStreams(seed: 1)
        let id = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: true).id
        streams.progress(id, tokensSoFar: 4, cachedPromptTokens: 0)
        streams.finished(id, outputTokens: 10, lengthCapped: true)
        #expect(!streams.isWatched(id) && !streams.hasOpenStreams)
        streams.finished(id, outputTokens: 10, lengthCapped: true)      // closed: ignored
        streams.progress(id, tokensSoFar: 12, cachedPromptTokens: 0)
        #expect(streams.take() == [
            StreamUpdate(id: id, kind: .tokens(4)),
            StreamUpdate(id: id, kind: .tokens(6)),
            StreamUpdate(id: id, kind: .finished(lengthCapped: true)),
        ])
        // Everything already reported: only the end.
        let done = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: false).id
        streams.progress(done, tokensSoFar: 3, cachedPromptTokens: 0)
        streams.finished(done, outputTokens: 3, lengthCapped: false)
        #expect(streams.take() == [StreamUpdate(id: done, kind: .tokens(3)),
                                   StreamUpdate(id: done, kind: .finished(lengthCapped: false))])
    }

    @Test func failuresCloseWithReasonAndStatusAndOtherIdsAreIgnored() {
        let streams = ClientStreams(seed: 1)
        let rejected = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: false).id
        let lost = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: false).id
        streams.failed(rejected, reason: "queue full", status: 429)
        streams.accepted(lost)
        streams.failed(lost, reason: "NPU lost", status: 503)
        streams.failed(lost, reason: "again", status: 503)             // closed: ignored
        // Workload requests have no stream: every call is a no-op for them.
        streams.accepted(3)
        streams.progress(3, tokensSoFar: 9, cachedPromptTokens: 16)
        streams.finished(3, outputTokens: 9, lengthCapped: false)
        streams.failed(3, reason: "x", status: 503)
        #expect(streams.take() == [
            StreamUpdate(id: rejected, kind: .failed(reason: "queue full", status: 429)),
            StreamUpdate(id: lost, kind: .accepted),
            StreamUpdate(id: lost, kind: .failed(reason: "NPU lost", status: 503)),
        ])
        #expect(!streams.hasOpenStreams)
    }

    @Test func closingIsSilentAndTellsWhatWasReported() {
        let streams = ClientStreams(seed: 1)
        let id = streams.open(maxTokens: 10, minTokens: 0, ignoreEOS: false).id
        streams.progress(id, tokensSoFar: 6, cachedPromptTokens: 0)
        _ = streams.take()
        #expect(streams.close(id) == 6)
        #expect(streams.close(id) == nil, "already closed")
        streams.finished(id, outputTokens: 10, lengthCapped: false)
        #expect(streams.take().isEmpty, "a closed stream gets no more updates")
    }

    @Test func aCopyIsIndependentAndDrawsTheSameLengths() {
        let streams = ClientStreams(seed: 3)
        let open = streams.open(maxTokens: 1_000_000, minTokens: 0, ignoreEOS: false).id
        streams.progress(open, tokensSoFar: 2, cachedPromptTokens: 0)
        let copy = streams.copy()
        #expect(copy !== streams)
        #expect(copy.tokensSoFar(open) == 2 && copy.updates == streams.updates, "open streams and pending updates travel")
        // The length stream is copied where it stands, not re-seeded: both draw the original's next number.
        let next = naturalLengths(seed: 3, count: 2)[1]
        let a = streams.open(maxTokens: 1_000_000, minTokens: 0, ignoreEOS: false)
        let b = copy.open(maxTokens: 1_000_000, minTokens: 0, ignoreEOS: false)
        #expect(a.id == b.id && a.outputTokens == max(1, next) && b.outputTokens == a.outputTokens)
        // Writes on one side never reach the other.
        copy.finished(open, outputTokens: 5, lengthCapped: false)
        #expect(streams.isWatched(open) && !copy.isWatched(open))
        #expect(streams.take() == [StreamUpdate(id: open, kind: .tokens(2))])
        #expect(copy.take() == [StreamUpdate(id: open, kind: .tokens(2)), StreamUpdate(id: open, kind: .tokens(3)),
                                StreamUpdate(id: open, kind: .finished(lengthCapped: false))])
    }
}
