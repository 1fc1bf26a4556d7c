import APIServer
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

/// `/metrics` (vLLM names, counters that agree with what was sent) and the health probes.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct MetricsAndHealthTests {
    @Test func metricsCountWhatWasServedAndShowTheEngine() async throws {
        let backend = FakeCompletionBackend(outputTokens: 10, prefixHitShare: 0.5)
        try await LiveServer.with(backend: backend) { server in
            var promptTokens = 0, completionTokens = 0
            for (stream, maxTokens) in [(false, 4), (false, 100), (true, 100)] {
                var body: [String: Any] = ["prompt": "Count these eight tokens, please", "stream": stream, "max_tokens": maxTokens]
                // Stream options only with a stream (OpenAI refuses them otherwise).
                if stream { body["stream_options"] = ["include_usage": true] }
                let reply = try await server.post("/v1/completions", json: body)
                #expect(reply.status == 200)
                let usage: [String: Any]?
                if stream {
                    usage = try parseCompletionStream(reply.text, chat: false).usage
                } else {
                    usage = try reply.json()["usage"] as? [String: Any]
                }
                promptTokens += try #require(usage?["prompt_tokens"] as? Int)
                completionTokens += try #require(usage?["completion_tokens"] as? Int)
            }
            #expect(completionTokens == 4 + 10 + 10)

            // Six requests in flight: one queued for prefill, one in a prefill batch, one waiting
            // for its KV transfer, three in the decode batch. The engine's own split (the console
            // header's) counts the one being prefilled as waiting; vLLM's running batch holds it.
            server.link.update { s in
                s.instances[0].queued = 1
                s.instances[0].running = 1
                s.instances[1].queued = 1
                s.instances[1].running = 3
                s.requests.inFlight = 6
                s.requests.running = 3
                s.requests.waiting = 3
            }
            let reply = try await server.get("/metrics")
            #expect(reply.status == 200)
            #expect(reply.headers["content-type"]?.hasPrefix("text/plain") == true)
            let m = PrometheusText(reply.text)
            let model = #"model_name="deepseek-r1""#
            #expect(m.sum("vllm:request_success_total", containing: [model]) == 3)
            #expect(m.sum("vllm:request_success_total", containing: [#"finished_reason="length""#]) == 1)
            #expect(m.sum("vllm:request_success_total", containing: [#"finished_reason="stop""#]) == 2)
            #expect(m.sum("vllm:prompt_tokens_total") == Double(promptTokens))
            #expect(m.sum("vllm:generation_tokens_total") == Double(completionTokens))
            #expect(m.sum("vllm:prefix_cache_queries_total") == Double(promptTokens))
            #expect(m.sum("vllm:prefix_cache_hits_total") == Double(3 * (promptTokens / 3 / 2)))
            for histogram in [
                "vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds",
                "vllm:time_per_output_token_seconds",
            ] {
                #expect(m.types[histogram] == "histogram")
                #expect(m.sum(histogram + "_count") == 3)
                #expect(m.samples[histogram + #"_bucket{model_name="deepseek-r1",engine="0",le="+Inf"}"#] == 3)
                #expect(m.sum(histogram + "_sum") > 0)
            }
            // Gauges are the engine's, from the snapshot at scrape time, with vLLM's meaning:
            // running = in a prefill or decode batch; waiting = the rest of the requests in flight.
            #expect(m.sum("vllm:num_requests_running") == 4)
            #expect(m.sum("vllm:num_requests_waiting") == 2)
            #expect(m.sum("vllm:kv_cache_usage_perc") == 0.42)
            #expect(m.types["vllm:num_requests_running"] == "gauge")
            #expect(m.types["vllm:prompt_tokens_total"] == "counter")
            #expect(m.samples[#"xds_npu_utilization{npu="5"}"#] == 0.5)
            #expect(m.sum("xds_npu_utilization") > 0)
            #expect(m.sum("xds_expert_imbalance") == 1.25)

            server.link.update { s in
                s.activeFaults = [FaultStatus(id: 1, description: "npu 3 down", injectedAt: 1)]
                s.drainedNodes = [1]
                s.npus.removeLast()
            }
            let after = PrometheusText(try await server.get("/metrics").text)
            #expect(after.sum("xds_faults_active") == 1)
            #expect(after.sum("xds_nodes_drained") == 1)
            #expect(after.samples[#"xds_npu_utilization{npu="7"}"#] == nil)
        }
    }

    /// The only test that touches the process-wide MetricsSystem (it can be bootstrapped once).
    @Test func hummingbirdHTTPMetricsJoinOnceBootstrapped() async throws {
        // A slow backend: a whole-response completion is still computing when its client leaves.
        let backend = FakeCompletionBackend(outputTokens: 2_000, tokenInterval: .milliseconds(2))
        try await LiveServer.with(backend: backend) { server in
            #expect(server.api.bootstrapMetricsSystem())
            #expect(!server.api.bootstrapMetricsSystem())
            #expect(try await server.get("/v1/models").status == 200)
            let m = PrometheusText(try await server.get("/metrics").text)
            #expect(m.sum("hb_requests", containing: ["/v1/models"]) == 1)
            #expect(m.sum("vllm:request_success_total") == 0)
            // Client errors are counted under the status the client got, not as 500s.
            #expect(try await server.get("/no/such/route").status == 404)
            #expect(try await server.post("/v1/chat/completions", json: ["model": "nope", "messages": [["role": "user", "content": "hi"]]]).status == 404)
            #expect(try await server.post("/v1/completions", json: ["prompt": "hi", "n": 2]).status == 400)
            let errors = PrometheusText(try await server.get("/metrics").text)
            // (Other suites' servers run in parallel and record into the same global MetricsSystem.)
            #expect(errors.sum("hb_requests", containing: [#"status_code="404""#]) >= 2, "\(errors.samples.keys.filter { $0.hasPrefix("hb_") })")
            #expect(errors.sum("hb_requests", containing: [#"status_code="400""#]) >= 1)
            #expect(errors.sum("hb_requests", containing: [#"status_code="500""#]) == 0)
            #expect(errors.sum("hb_errors") == 0)
            // The error counter counts those answers under their status; it held a zero series per
            // answer (`error_type="200"`) and never moved, since no error got past the error middleware.
            #expect(errors.sum("hb_request_errors", containing: [#"http_route="NotFound""#, #"error_type="404""#]) >= 1)
            #expect(errors.sum("hb_request_errors", containing: [#"http_route="/v1/chat/completions""#, #"error_type="404""#]) >= 1)
            #expect(errors.sum("hb_request_errors", containing: [#"http_route="/v1/completions""#, #"error_type="400""#]) >= 1)
            let errorTypes = Set(errors.samples.keys.filter { $0.hasPrefix("hb_request_errors{") }
                .compactMap { $0.firstMatch(of: #/error_type="([0-9]+)"/#).map { String($0.1) } })
            #expect(!errorTypes.isEmpty && errorTypes.allSatisfy { Int($0).map { $0 >= 400 } == true }, "\(errorTypes)")
            // A known path asked with another method is labelled with its route, not NotFound.
            #expect(try await server.request("OPTIONS", "/v1/chat/completions").status == 204)
            #expect(try await server.get("/v1/chat/completions").status == 405)
            let chatRoute = #"http_route="/v1/chat/completions""#
            // Counted once the answer's body is written, which may end after the client read it.
            var labelled = PrometheusText(try await server.get("/metrics").text)
            // Waits up to a deadline, not a count of tries: a loaded machine is slow.
            let labelledBy = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < labelledBy, labelled.sum("hb_requests", containing: [chatRoute, #"method="GET""#]) < 1 {
                try await Task.sleep(for: .milliseconds(20))
                labelled = PrometheusText(try await server.get("/metrics").text)
            }
            #expect(labelled.sum("hb_requests", containing: [chatRoute, #"method="OPTIONS""#, #"status_code="204""#]) >= 1)
            #expect(labelled.sum("hb_requests", containing: [chatRoute, #"method="GET""#, #"status_code="405""#]) >= 1)
            #expect(labelled.sum("hb_request_errors", containing: [chatRoute, #"method="GET""#, #"error_type="405""#]) >= 1)
            #expect(labelled.sum("hb_request_errors", containing: [chatRoute, #"method="OPTIONS""#]) == 0)
            // `OPTIONS *` (the server as a whole) is served, and labelled with its target, not
            // `NotFound` beside the unknown paths; `GET *` is the 400 it is, under the same route.
            let asterisk = try RawConnection(port: server.port, readTimeout: 15)
            asterisk.write(raw: "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            _ = await asterisk.read(until: "HTTP/1.1 200")
            asterisk.close()
            let star = #"http_route="*""#
            var starred = PrometheusText(try await server.get("/metrics").text)
            let starredBy = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < starredBy, starred.sum("hb_requests", containing: [star, #"method="GET""#]) < 1 {
                try await Task.sleep(for: .milliseconds(20))
                starred = PrometheusText(try await server.get("/metrics").text)
            }
            #expect(starred.sum("hb_requests", containing: [star, #"method="OPTIONS""#, #"status_code="204""#]) >= 1,
                    "\(starred.samples.keys.filter { $0.contains("OPTIONS") })")
            #expect(starred.sum("hb_requests", containing: [star, #"method="GET""#, #"status_code="400""#]) >= 1)
            #expect(starred.sum("hb_requests", containing: [#"http_route="NotFound""#, #"method="OPTIONS""#]) == 0)
            // Every family has its HELP line, Hummingbird's too (they came with TYPE alone).
            let lines = try await server.get("/metrics").text.split(separator: "\n")
            func names(_ prefix: String) -> Set<Substring> {
                Set(lines.filter { $0.hasPrefix(prefix) }.compactMap { $0.split(separator: " ").dropFirst(2).first })
            }
            let typed = names("# TYPE "), described = names("# HELP ")
            #expect(typed.isSuperset(of: ["hb_requests", "http_server_request_duration", "http_server_active_requests"]),
                    "\(typed.sorted())")
            #expect(typed.subtracting(described).isEmpty, "no HELP for \(typed.subtracting(described).sorted())")
            // A client that hangs up is counted as 499 (client closed request), not as a 500.
            let leaving = try RawConnection(port: server.port)
            leaving.post("/v1/completions", json: #"{"prompt": "hi", "max_tokens": 2000}"#)
            #expect(await eventually { backend.inFlightCount == 1 })
            leaving.close()
            #expect(await eventually { backend.cancelledIDs.count == 1 })
            var closed = 0.0
            let closedBy = ContinuousClock.now + .seconds(30)
            while closed < 1, ContinuousClock.now < closedBy {
                let m = PrometheusText(try await server.get("/metrics").text)
                closed = m.sum("hb_requests", containing: ["/v1/completions", #"status_code="499""#])
                if closed < 1 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(closed >= 1, "the hang-up was not counted as 499")
            #expect(PrometheusText(try await server.get("/metrics").text)
                .sum("hb_request_errors", containing: ["/v1/completions", #"error_type="499""#]) >= 1)
            let after = PrometheusText(try await server.get("/metrics").text)
            #expect(after.sum("hb_requests", containing: [#"status_code="500""#]) == 0)
            // A client that resets (a killed process) before the whole answer is ready: the answer's
            // head could not be written, so its body never ran, and neither did the bookkeeping
            // hung on it: no 499 was counted and the active gauge stayed one higher for good.
            let reset499 = ["/v1/completions", #"status_code="499""#]
            let activePOST = [#"method="POST""#]
            let beforeReset = PrometheusText(try await server.get("/metrics").text)
            let resetting = try RawConnection(port: server.port)
            resetting.post("/v1/completions", json: #"{"prompt": "hi", "max_tokens": 2000}"#)
            #expect(await eventually { backend.inFlightCount == 1 })
            resetting.reset()
            #expect(await eventually { backend.cancelledIDs.count == 2 })
            var recounted = beforeReset
            let recountedBy = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < recountedBy, recounted.sum("hb_requests", containing: reset499)
                < beforeReset.sum("hb_requests", containing: reset499) + 1
                || recounted.sum("http_server_active_requests", containing: activePOST)
                > beforeReset.sum("http_server_active_requests", containing: activePOST) {
                try await Task.sleep(for: .milliseconds(50))
                recounted = PrometheusText(try await server.get("/metrics").text)
            }
            #expect(recounted.sum("hb_requests", containing: reset499) >= beforeReset.sum("hb_requests", containing: reset499) + 1,
                    "the reset was not counted as 499")
            #expect(recounted.sum("http_server_active_requests", containing: activePOST)
                <= beforeReset.sum("http_server_active_requests", containing: activePOST), "the active gauge stayed up")
            // HEAD has no body written, so the library's after-write bookkeeping never ran: each
            // `curl -I` raised the active gauge for good and was never counted. Now it is counted
            // and the gauge comes back down.
            for _ in 0..<3 { #expect(try await server.request("HEAD", "/health").status == 200) }
            #expect(try await server.request("HEAD", "/no/such/route").status == 404)
            var settled = false
            let settledBy = ContinuousClock.now + .seconds(30)
            while !settled, ContinuousClock.now < settledBy {
                let m = PrometheusText(try await server.get("/metrics").text)
                settled = m.sum("http_server_active_requests", containing: [#"method="HEAD""#]) == 0
                    && m.sum("hb_requests", containing: ["/health", #"method="HEAD""#, #"status_code="200""#]) >= 3
                    && m.sum("hb_requests", containing: [#"method="HEAD""#, #"status_code="404""#]) >= 1
                if !settled { try await Task.sleep(for: .milliseconds(20)) }
            }
            let headLines = try await server.get("/metrics").text.split(separator: "\n").filter { $0.contains("HEAD") }
            #expect(settled, "\(headLines)")
            // A head that does not parse is answered before any route runs, and was never counted.
            let malformed = [#"http_route="MalformedRequest""#, #"method="_OTHER""#]
            let before = PrometheusText(try await server.get("/metrics").text)
            let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
            defer { connection.close() }
            connection.write(raw: "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n{}")
            #expect(await connection.readUntilClosed().text.hasPrefix("HTTP/1.1 400"))
            let counted = PrometheusText(try await server.get("/metrics").text)
            #expect(counted.sum("hb_requests", containing: malformed + [#"status_code="400""#])
                >= before.sum("hb_requests", containing: malformed + [#"status_code="400""#]) + 1,
                "\(counted.samples.keys.filter { $0.contains("Malformed") })")
            #expect(counted.sum("hb_request_errors", containing: malformed + [#"error_type="400""#])
                >= before.sum("hb_request_errors", containing: malformed + [#"error_type="400""#]) + 1)
            // A connection past the cap is answered 503 before any request of its is read: no
            // series counted it. (The process-wide MetricsSystem is this server's registry, so a
            // second server capped at one connection counts its refusal here.)
            let refusedRoute = [#"http_route="TooManyConnections""#, #"method="_OTHER""#]
            let beforeRefusal = PrometheusText(try await server.get("/metrics").text)
            try await LiveServer.with(maxConnections: 1) { capped in
                let first = try RawConnection(port: capped.port, readTimeout: 15)
                defer { first.close() }
                first.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                #expect(await first.read(until: #""status":"ok"}"#).hasPrefix("HTTP/1.1 200"))
                let second = try RawConnection(port: capped.port, readTimeout: 15)
                defer { second.close() }
                #expect(await second.readUntilClosed().text.hasPrefix("HTTP/1.1 503"))
            }
            let refusals = PrometheusText(try await server.get("/metrics").text)
            #expect(refusals.sum("hb_requests", containing: refusedRoute + [#"status_code="503""#])
                >= beforeRefusal.sum("hb_requests", containing: refusedRoute + [#"status_code="503""#]) + 1,
                "\(refusals.samples.keys.filter { $0.contains("TooMany") })")
            #expect(refusals.sum("hb_request_errors", containing: refusedRoute + [#"error_type="503""#])
                >= beforeRefusal.sum("hb_request_errors", containing: refusedRoute + [#"error_type="503""#]) + 1)
        }
    }

    @Test func healthAndReadiness() async throws {
        try await LiveServer.with { server in
            #expect(try await server.get("/health").status == 200)
            // HEAD answers like GET, without a body (it used to be 404).
            let head = try await server.request("HEAD", "/health")
            #expect(head.status == 200 && head.body.isEmpty)
            #expect(head.headers["content-type"] == "application/json")
            #expect(try await server.request("HEAD", "/ready").status == 200)
            let ready = try await server.get("/ready")
            #expect(ready.status == 200)
            #expect(try ready.json()["ready"] as? Bool == true)

            server.link.update { $0.paused = true }
            let paused = try await server.get("/ready")
            #expect(paused.status == 503)
            #expect(try paused.json()["reason"] as? String == "the engine is paused")
            #expect(try await server.request("HEAD", "/ready").status == 503)
            #expect(try await server.get("/health").status == 200)

            server.link.update { s in
                s.paused = false
                for index in s.npus.indices where s.npus[index].role == .decode {
                    s.npus[index].faulted = true
                }
            }
            #expect(try await server.get("/ready").status == 503)
            server.link.update { s in
                for index in s.npus.indices { s.npus[index].faulted = false }
                for index in s.npus.indices where s.npus[index].role == .prefill {
                    s.npus[index].drained = true
                }
            }
            #expect(try await server.get("/ready").status == 503)
            server.link.update { s in for index in s.npus.indices { s.npus[index].drained = false } }
            #expect(try await server.get("/ready").status == 200)
        }
    }
}
