"""A real load generator against `xds serve` (issue 14): NVIDIA's aiperf, with a tokenizer that
counts as xds does (.ci/make-tokenizer.py, no download), a bounded profile (REQUESTS requests,
CONCURRENCY at a time, fixed lengths with ignore_eos), then its figures beside /metrics:
output token counts must equal what was asked; TTFT, inter-token latency and end-to-end latency
must agree with the vllm: histograms within TOLERANCE. Means are compared (aiperf's avg against the histograms'
_sum/_count over the run): the vllm: buckets are too coarse for a p50 to mean anything (TTFT has
bounds at 0.1 and 0.25 s), while sum/count are exact.

Usage: python3 .ci/aiperf-check.py PORT [REQUESTS] [CONCURRENCY] [TOLERANCE] [SEED]"""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

port = sys.argv[1]
requests = int(sys.argv[2]) if len(sys.argv) > 2 else 40
concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 4
tolerance = float(sys.argv[4]) if len(sys.argv) > 4 else 0.10
# aiperf's prompt seed. A second run on the same server must use another: with the same prompts
# every one hits the prefix cache, TTFT halves (~0.1 s), and the client's fixed share doubles.
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 7
base = f"http://127.0.0.1:{port}"
work = tempfile.mkdtemp(prefix="xds-aiperf-")
# The tokenizer and aiperf's artifacts go when the check ends, however it ends.
atexit.register(shutil.rmtree, work, ignore_errors=True)
here = os.path.dirname(os.path.abspath(__file__))
subprocess.run([sys.executable, os.path.join(here, "make-tokenizer.py"), f"{work}/tokenizer"], check=True)


def scrape():
    totals = {}
    text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("vllm:"):
                totals[sample.name] = totals.get(sample.name, 0) + sample.value
    return totals


# Prompts long enough that TTFT (~0.45 s on superpod) dwarfs what the client adds outside the
# server's reach (its connect/send and its parsing of the first chunk, plus scheduling delays on a
# loaded 2-core machine: 15-25 ms, the same in its TTFT and end-to-end), which /metrics rightly
# does not count (vLLM's TTFT runs from arrival at the server too). Debug build: +12.1% TTFT with
# 2000 tokens; with 4000 (TTFT ~0.23 s) +4% to +17.5% over five CI and local runs, two of them
# failing; 8000 halves that share (see the closing note of 2026-12-03 for the figures).
ISL, OSL = 8000, 100


def quiet_server():
    """Whether the server serves nothing but this check: the vllm: series describe the whole
    engine, so a server with traffic of its own (`xds serve --rate 20`) mixed its requests into
    the comparison, and the check blamed the server (329 'aiperf' requests counted for 24, TTFT
    +140%). Waits up to 30 s for what is in flight to finish; then nothing may be running or
    waiting and no request may finish for 1 s."""
    import time
    for _ in range(30):
        first = scrape()
        time.sleep(1)
        now = scrape()
        busy = sum(now.get(f"vllm:num_requests_{state}", 0) for state in ("running", "waiting"))
        if busy == 0 and now.get("vllm:request_success_total", 0) == first.get("vllm:request_success_total", 0):
            return True
    return False


if not quiet_server():
    print("aiperf-check: the server has traffic besides this check (vllm:num_requests_running/waiting or "
          "vllm:request_success_total keep moving), and /metrics would mix it into the comparison; "
          "run it against a server with no other traffic (e.g. after the admin command 'rate 0')")
    sys.exit(2)
before = scrape()
subprocess.run(
    ["aiperf", "profile", "--model", "deepseek-r1", "--url", base, "--endpoint-type", "chat", "--streaming",
     "--tokenizer", f"{work}/tokenizer", "--synthetic-input-tokens-mean", str(ISL),
     "--synthetic-input-tokens-stddev", "0", "--output-tokens-mean", str(OSL), "--output-tokens-stddev", "0",
     "--extra-inputs", "ignore_eos:true", "--request-count", str(requests), "--concurrency", str(concurrency),
     "--random-seed", str(seed), "--artifact-dir", f"{work}/artifacts", "--ui", "none",
     # A light client on a 2-core machine: one worker, one record processor, no /metrics polling
     # of its own (this script scrapes before and after), so the client's own CPU use does not
     # delay what it measures.
     "--workers-max", "1", "--record-processors", "1", "--no-server-metrics"],
    check=True, timeout=600, stdout=subprocess.DEVNULL)
after = scrape()
report = json.load(open(f"{work}/artifacts/profile_export_aiperf.json"))


def mean_ms(name):
    count = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
    total = after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)
    return 1000 * total / count if count else float("nan"), count


failed = 0


def check(label, condition, detail):
    global failed
    print(("ok   " if condition else "FAIL ") + label + f"  ({detail})")
    failed += 0 if condition else 1


print(f"aiperf {requests} requests, concurrency {concurrency}, ISL {ISL}, OSL {OSL}")
for key in ["time_to_first_token", "inter_token_latency", "request_latency", "output_sequence_length",
            "input_sequence_length", "output_token_throughput"]:
    if key in report:
        print(f"  aiperf {key}: avg {report[key]['avg']:.2f} {report[key].get('unit', '')}")
for name in ["time_to_first_token_seconds", "inter_token_latency_seconds", "e2e_request_latency_seconds",
             "request_queue_time_seconds", "request_prefill_time_seconds", "request_decode_time_seconds"]:
    value, count = mean_ms(f"vllm:{name}")
    print(f"  /metrics vllm:{name}: mean {value:.2f} ms over {count:.0f}")

osl = report["output_sequence_length"]
check("every output has the asked length", osl["min"] == OSL and osl["max"] == OSL, osl)
served = after.get("vllm:request_success_total", 0) - before.get("vllm:request_success_total", 0)
check("/metrics counted every aiperf request", served == requests, served)
# Means on both sides (see above). The client's figures also hold what the server cannot see:
# aiperf's own connect/send and read/parse, and scheduling delays of either process on a loaded
# machine (one offset per request, in TTFT and end-to-end alike: printed, not subtracted).
for aiperf_key, metric in [("time_to_first_token", "vllm:time_to_first_token_seconds"),
                           ("inter_token_latency", "vllm:inter_token_latency_seconds"),
                           ("request_latency", "vllm:e2e_request_latency_seconds")]:
    client, (server, _) = report[aiperf_key]["avg"], mean_ms(metric)
    check(f"{aiperf_key} agrees with {metric} within {tolerance:.0%}", abs(client - server) <= tolerance * server,
          f"aiperf {client:.2f} ms, /metrics {server:.2f} ms, {(client - server) / server:+.1%}")
sys.exit(1 if failed else 0)
