import Metrics
import Prometheus

/// swift-metrics' factory for what other libraries record (Hummingbird's ``MetricsMiddleware``):
/// swift-prometheus's own, except that the series we know get a `# HELP` line. swift-prometheus's
/// factory registers every swift-metrics series with empty help, so `hb_requests` and its kin came
/// out with `# TYPE` alone, and dashboards' and exporters' metadata (and promtool's lint) had no
/// description for them.
struct DescribedMetricsFactory: MetricsFactory {
    let base: PrometheusMetricsFactory
    var registry: PrometheusCollectorRegistry { base.registry }

    init(registry: PrometheusCollectorRegistry) { base = PrometheusMetricsFactory(registry: registry) }

    /// Hummingbird 2's metric labels (swift-metrics names; the registry writes `.` as `_`).
    static let help: [String: String] = [
        "hb.requests": "HTTP requests answered, by route, method and status code.",
        "hb.request.errors": "HTTP requests that ended in an error, by route, method and error type (the status code).",
        "http.server.request.duration": "Seconds from an HTTP request's arrival to its response, by route, method and status code.",
        "http.server.active_requests": "HTTP requests being handled now, by method.",
    ]

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let help = Self.help[label] else { return base.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: .named(label, help: help), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let help = Self.help[label] else {
            return base.makeFloatingPointCounter(label: label, dimensions: dimensions)
        }
        return registry.makeCounter(descriptor: .named(label, help: help), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let help = Self.help[label], !aggregate else {
            return base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        return registry.makeGauge(descriptor: .named(label, help: help), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let help = Self.help[label] else { return base.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: .named(label, help: help), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let help = Self.help[label] else { return base.makeTimer(label: label, dimensions: dimensions) }
        return registry.makeDurationHistogram(
            descriptor: .named(label, help: help), labels: dimensions,
            buckets: base.durationHistogramBuckets[label] ?? base.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}
