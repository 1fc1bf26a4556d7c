/// A backend that knows how long before the engine's own arrival stamp each request reached the
/// server (``EngineHost`` does: the wait for the engine thread to take it in). With it the
/// `vllm:` TTFT, end-to-end and queue-time series run from the request's arrival at the server,
/// as vLLM's do, rather than from the moment the engine's clock took it in.
public protocol ArrivalStamping: Sendable {
    /// Simulated seconds to add to the engine's timings of `requestID`, once (nil: none known).
    func takeArrivalLead(requestID: Int) -> Double?
    /// The same without taking it (the first token's TTFT reads it; the finish takes it).
    func arrivalLead(requestID: Int) -> Double?
}
