"""Checks `xds serve` with clients nobody here wrote: the official `openai` package and
prometheus_client's text parser (issue 7). Usage: python3 .ci/api-clients.py PORT TOKEN"""
import json
import sys
import time
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families

port, token = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)
passed = failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


models = client.models.list()
check("models lists deepseek-r1", any(m.id == "deepseek-r1" for m in models.data), models)

whole = client.chat.completions.create(model="deepseek-r1", max_tokens=12,
                                       messages=[{"role": "user", "content": "Tell me about SuperPods."}])
check("chat completion has content", bool(whole.choices[0].message.content), whole)
check("usage is filled", whole.usage.completion_tokens >= 1 and whole.usage.prompt_tokens >= 1, whole.usage)
check("finish reason", whole.choices[0].finish_reason in ("stop", "length"), whole.choices[0].finish_reason)

chunks = list(client.chat.completions.create(model="deepseek-r1", max_tokens=8, stream=True,
                                             messages=[{"role": "user", "content": "Stream, please."}]))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("streaming yields chunks", len(chunks) >= 2 and text != "", len(chunks))
check("stream ends with a finish reason", chunks[-1].choices[0].finish_reason in ("stop", "length"), chunks[-1])

# Benchmark semantics (issue 14): fixed-length requests come back with exactly max_tokens tokens.
for asked in (1, 50, 300):
    fixed = client.chat.completions.create(model="deepseek-r1", max_tokens=asked, extra_body={"ignore_eos": True},
                                           messages=[{"role": "user", "content": "Count to many."}])
    check(f"ignore_eos gives exactly {asked} tokens", fixed.usage.completion_tokens == asked, fixed.usage)
fixed_chunks = list(client.chat.completions.create(
    model="deepseek-r1", max_completion_tokens=77, stream=True, stream_options={"include_usage": True},
    extra_body={"ignore_eos": True}, messages=[{"role": "user", "content": "Stream a fixed length."}]))
usage = next((c.usage for c in fixed_chunks if c.usage), None)
check("streamed ignore_eos with include_usage gives exactly 77", usage is not None and usage.completion_tokens == 77, usage)
floor = client.chat.completions.create(model="deepseek-r1", max_tokens=200, extra_body={"min_tokens": 150},
                                       messages=[{"role": "user", "content": "At least this long."}])
check("min_tokens holds", 150 <= floor.usage.completion_tokens <= 200, floor.usage)
stopped = client.chat.completions.create(model="deepseek-r1", max_tokens=200, stop=["."],
                                         extra_body={"ignore_eos": True},
                                         messages=[{"role": "user", "content": "Stop at a full stop."}])
check("stop string ends the reply", stopped.choices[0].finish_reason == "stop"
      and "." not in (stopped.choices[0].message.content or ""), stopped.choices[0])
raw = client.chat.completions.with_raw_response.create(
    model="deepseek-r1", max_tokens=2, messages=[{"role": "user", "content": "id?"}],
    extra_headers={"X-Request-Id": "ci-request-1"})
check("X-Request-Id is echoed", raw.headers.get("x-request-id") == "ci-request-1", dict(raw.headers))
version = json.loads(urllib.request.urlopen(f"{base}/version", timeout=30).read())
check("/version answers", isinstance(version.get("version"), str), version)
tokenize = urllib.request.Request(f"{base}/tokenize", data=json.dumps({"prompt": "Hello, world!"}).encode(),
                                  headers={"Content-Type": "application/json"})
tokens = json.loads(urllib.request.urlopen(tokenize, timeout=30).read())
check("/tokenize counts", tokens.get("count") == 6 and len(tokens.get("tokens", [])) == 6, tokens)

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    check("unknown model is 404", False)
except openai.NotFoundError as e:
    check("unknown model is 404", e.status_code == 404)

try:
    client.chat.completions.create(model="deepseek-r1", messages=[{"role": "user", "content": "x"}], n=3)
    check("n=3 is 400", False)
except openai.BadRequestError as e:
    check("n=3 is 400", e.status_code == 400)

# Options a placeholder reply cannot hold are refused by name (never answered as if honoured);
# their harmless values still work; legacy echo starts the reply with the prompt.
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
refusals = [
    ("logprobs", lambda: client.chat.completions.create(
        model="deepseek-r1", max_tokens=2, logprobs=True, top_logprobs=3, messages=[{"role": "user", "content": "x"}])),
    ("response_format", lambda: client.chat.completions.create(
        model="deepseek-r1", max_tokens=2, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Answer in JSON."}])),
    ("tool_choice", lambda: client.chat.completions.create(
        model="deepseek-r1", max_tokens=2, tools=tools, tool_choice="required",
        messages=[{"role": "user", "content": "Weather?"}])),
    ("logprobs", lambda: client.completions.create(model="deepseek-r1", prompt="x", max_tokens=2, logprobs=1)),
    ("suffix", lambda: client.completions.create(model="deepseek-r1", prompt="x", max_tokens=2, suffix="end")),
]
for param, call in refusals:
    try:
        call()
        check(f"{param} is refused by name", False, "answered 200")
    except openai.BadRequestError as e:
        check(f"{param} is refused by name", e.status_code == 400 and (e.body or {}).get("param") == param, e.body)
served = client.chat.completions.create(model="deepseek-r1", max_tokens=2, tools=tools, tool_choice="auto", seed=1,
                                        response_format={"type": "text"}, logprobs=False, user="ci",
                                        messages=[{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
check("harmless option values are served", served.choices[0].finish_reason in ("stop", "length"), served)
echoed = client.completions.create(model="deepseek-r1", prompt="Say this", max_tokens=3, echo=True)
check("echo starts the reply with the prompt", echoed.choices[0].text.startswith("Say this")
      and len(echoed.choices[0].text) > len("Say this"), echoed.choices[0])
try:
    client.models.retrieve("no-such-model")
    check("models.retrieve of an unknown model is 404", False)
except openai.NotFoundError as e:
    check("models.retrieve of an unknown model is 404", (e.body or {}).get("code") == "model_not_found", e.body)
check("models.retrieve of the served model", client.models.retrieve("deepseek-r1").id == "deepseek-r1")

# HEAD on GET routes (curl -I, uptime probes) and curl's 'Expect: 100-continue' (any body over 1 KiB).
import http.client
for path in ("/metrics", "/v1/models", "/health"):
    probe = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    probe.request("HEAD", path)
    head = probe.getresponse()
    check(f"HEAD {path} is 200 without a body", head.status == 200 and head.read() == b"", head.status)
    probe.close()
import socket
long_prompt = json.dumps({"prompt": "word " * 2000, "max_tokens": 2}).encode()
with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as sock:
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(long_prompt)}\r\nExpect: 100-continue\r\n\r\n".encode())
    started = time.time()
    try:
        interim = sock.recv(64)
    except socket.timeout:
        interim = b""
    check("Expect: 100-continue is answered at once", interim.startswith(b"HTTP/1.1 100 Continue")
          and time.time() - started < 0.9, (interim, round(time.time() - started, 2)))

# HTTP/1.1 keep-alive: two completions (whole, then streamed) on one connection.
import http.client
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
sockets = []
for stream in (False, True, False):
    conn.request("POST", "/v1/completions", body=json.dumps({"prompt": "again", "max_tokens": 4, "stream": stream}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    sockets.append((id(conn.sock), resp.status, resp.will_close))
check("keep-alive: three completions reuse one connection",
      len({s for s, _, _ in sockets}) == 1 and all(st == 200 and not wc for _, st, wc in sockets), sockets)
conn.close()


def admin_state():
    req = urllib.request.Request(f"{base}/admin/state", headers={"Authorization": f"Bearer {token}"})
    return json.load(urllib.request.urlopen(req, timeout=30))


def settled_requests():
    """The request counts once a snapshot taken after everything before has finished shows them
    (snapshots are built off the engine thread and may trail it by a build's time)."""
    last = admin_state()
    for _ in range(50):
        time.sleep(0.3)
        now = admin_state()
        if now["simTime"] > last["simTime"] and now["requests"]["completed"] == last["requests"]["completed"]:
            return now["requests"]
        last = now
    return last["requests"]


def admin_command(line):
    body = json.dumps({"command": line}).encode()
    req = urllib.request.Request(f"{base}/admin/commands", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    started = time.time()
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    return status, text, time.time() - started



def quiesce():
    """Stops the server's own arrivals (synthetic or trace traffic beside this script's) and waits,
    sped up, until nothing is in flight, then paces it as before: the engine-wide counters the
    next checks compare then move only with this script's requests. Against a server started with
    --rate they counted the background's completions too (1,475 'served' for 500 streams)."""
    speed = admin_state().get("speed", 1)
    admin_command("rate 0")
    admin_command("speed 200")
    quiet = False
    for _ in range(600):
        if admin_state()["requests"]["inFlight"] == 0:
            quiet = True
            break
        time.sleep(0.2)
    admin_command(f"speed {speed}")
    for _ in range(50):  # a snapshot may trail the command by a build
        if admin_state().get("speed") == speed:
            break
        time.sleep(0.1)
    return quiet


check("the server's own traffic stops and drains before counters are compared", quiesce(),
      admin_state()["requests"])

# A reply cut by a stop string is a success for the engine too, not a cancelled failure.
import time
before_stop = settled_requests()
client.completions.create(model="deepseek-r1", prompt="Go on.", max_tokens=300, stop=["."],
                          extra_body={"ignore_eos": True})
for _ in range(50):
    after_stop = admin_state()["requests"]
    if after_stop["completed"] > before_stop["completed"]:
        break
    time.sleep(0.1)
check("stop string: the engine counts a completion, not a failure",
      after_stop["completed"] == before_stop["completed"] + 1 and after_stop["failed"] == before_stop["failed"],
      (before_stop, after_stop))

text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
families = {f.name: f for f in text_string_to_metric_families(text)}
# Names as prometheus_client reports them (counters without _total), interfaces.md "Additions".
listed = ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
          "vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds",
          "vllm:inter_token_latency_seconds", "vllm:request_queue_time_seconds",
          "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
          "vllm:e2e_request_latency_seconds", "vllm:prompt_tokens", "vllm:generation_tokens",
          "vllm:request_success", "vllm:prefix_cache_queries", "vllm:prefix_cache_hits",
          "vllm:num_preemptions", "vllm:spec_decode_num_accepted_tokens"]
for name in listed:
    check(f"/metrics has {name}", name in families, sorted(families)[:20])
unlabelled = [s.name for f in families.values() if f.name.startswith("vllm:") for s in f.samples
              if s.labels.get("model_name") != "deepseek-r1" or s.labels.get("engine") != "0"]
check("every vllm: sample has model_name and engine labels", not unlabelled, unlabelled[:5])
success = sum(s.value for s in families["vllm:request_success"].samples if s.name.endswith("_total"))
check("request_success counts the completions", success >= 2, success)

request = urllib.request.Request(f"{base}/admin/state", headers={"Authorization": f"Bearer {token}"})
state = json.load(urllib.request.urlopen(request, timeout=30))
check("admin state is a snapshot", state.get("modelName") == "deepseek-r1" and len(state.get("npus", [])) == 384)

# A bounded load test: 500 requests, 100 concurrent streams; nothing may be lost.
from concurrent.futures import ThreadPoolExecutor


def one_stream(i):
    # Read with the openai package's stream reader (the one SSE client on the Python side).
    try:
        stream = client.chat.completions.create(
            model="deepseek-r1", stream=True, max_tokens=16, timeout=120,
            messages=[{"role": "user", "content": f"request {i}: " + "word " * (i % 50)}])
        reasons = [choice.finish_reason for chunk in stream for choice in chunk.choices if choice.finish_reason]
        return "complete" if reasons in (["stop"], ["length"]) else f"broken: finish reasons {reasons}"
    except openai.APIStatusError as e:  # refused before the stream started
        return "error" if e.status_code in (429, 503) else f"http {e.status_code}"
    except openai.APIError as e:  # an error chunk inside the stream (OpenAI's error shape)
        return "error" if e.body else f"lost: {e}"
    except Exception as e:  # noqa: BLE001 - any other failure is a lost request
        return f"lost: {e}"


state_req = urllib.request.Request(f"{base}/admin/state", headers={"Authorization": f"Bearer {token}"})
import time
time.sleep(1)  # let the earlier requests settle into a published snapshot
before = json.load(urllib.request.urlopen(state_req, timeout=30))["requests"]
with ThreadPoolExecutor(max_workers=100) as pool:
    outcomes = list(pool.map(one_stream, range(500)))
complete = outcomes.count("complete")
errors = outcomes.count("error")
check("load: every request completes or gets an error", complete + errors == 500,
      [o for o in outcomes if o not in ("complete", "error")][:5])
import time
for _ in range(50):  # the engine publishes snapshots a few times per second
    after = json.load(urllib.request.urlopen(state_req, timeout=30))["requests"]
    if after["completed"] - before["completed"] >= complete:
        break
    time.sleep(0.1)
served = after["completed"] - before["completed"]
refused = (after["rejected"] + after["failed"]) - (before["rejected"] + before["failed"])
check("load: engine counts match the clients'", served == complete and refused == errors,
      f"engine completed {served} refused {refused}; clients complete {complete} errors {errors}")

# Hostile operator commands (issue 10): each is answered in bounded time, and afterwards the
# engine still advances simulated time, serves completions and /ready tells the truth.
hostile = ["", " ", "x" * 5000, "\x00\x01\x7f", "\x1b[2J", "rate 1e308", "rate 1e9", "rate -1", "rate nan",
           "speed 1e-300", "speed 1e300", "speed 0", "speed inf", "fault link 0-1 degrade 1e300",
           "fault straggler die 0 slowdown 1e308", "fault npu 99999999999999999999", "fault npu 9223372036854775807",
           "drain node 9223372036854775807", "heal 9223372036854775807", "fault link 1-1", "rebalance now",
           "heal all", "resume", "speed 1", "rate 0"]
answers = [(line, *admin_command(line)) for line in hostile]
slow = [(l[:30], round(t, 1)) for l, _, _, t in answers if t > 7]
check("hostile commands: each answered within 7 s", not slow, slow)
odd = [(l[:30], s, x[:120]) for l, s, x, _ in answers if s not in (200, 400) or "Swift." in x or "Error(" in x]
check("hostile commands: 200 or 400 with a clear message", not odd, odd)
t0 = json.load(urllib.request.urlopen(state_req, timeout=30))["simTime"]
time.sleep(1.5)
t1 = json.load(urllib.request.urlopen(state_req, timeout=30))["simTime"]
check("after hostile commands simulated time advances", t1 > t0 + 0.5, (t0, t1))
after_hostile = client.chat.completions.create(model="deepseek-r1", max_tokens=4,
                                               messages=[{"role": "user", "content": "Still serving?"}])
check("after hostile commands a completion is served", bool(after_hostile.choices[0].message.content), after_hostile)
try:
    ready = json.load(urllib.request.urlopen(f"{base}/ready", timeout=30))
except urllib.error.HTTPError as e:
    ready = json.load(e)
check("after hostile commands /ready is truthful", ready.get("status") in ("ready", "degraded") and "reason" in ready, ready)

# A known path with a method it does not take is 405 with Allow; OPTIONS on it is 204 with Allow;
# an unknown path stays 404.
def raw_request(method, path):
    probe = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    probe.request(method, path)
    answer = probe.getresponse()
    body = answer.read()
    probe.close()
    return answer.status, answer.getheader("Allow"), body


status, allow, body = raw_request("GET", "/v1/chat/completions")
check("GET on a POST route is 405 with Allow", status == 405 and allow == "POST, OPTIONS"
      and json.loads(body)["error"]["code"] == "method_not_allowed", (status, allow, body[:200]))
status, allow, _ = raw_request("DELETE", "/metrics")
check("DELETE /metrics is 405 with Allow", status == 405 and allow == "GET, HEAD, OPTIONS", (status, allow))
status, allow, body = raw_request("OPTIONS", "/v1/completions")
check("OPTIONS on a route is 204 with Allow", status == 204 and allow == "POST, OPTIONS" and body == b"", (status, allow))
status, allow, _ = raw_request("OPTIONS", "/no/such/route")
check("OPTIONS on an unknown path is 404", status == 404 and allow is None, (status, allow))

# Every metric family has its HELP text (Hummingbird's hb_* and http_server_* had none).
families = {f.name: f for f in text_string_to_metric_families(urllib.request.urlopen(f"{base}/metrics", timeout=30)
                                                              .read().decode())}
undocumented = sorted(name for name, f in families.items() if not f.documentation)
check("every metric family has HELP", not undocumented, undocumented)

# Once the engine has drained, vllm:generation_tokens_total is the tokens the requests produced
# (the sum of vllm:request_generation_tokens): a decode step credited 1 + MTP acceptance per
# request on average, its last step included, and the counter ran ahead (34 for 20 one-token replies).
admin_command("rate 0")
admin_command("speed 200")
for _ in range(300):
    if admin_state()["requests"]["inFlight"] == 0:
        break
    time.sleep(0.2)
time.sleep(1)
families = {f.name: f for f in text_string_to_metric_families(urllib.request.urlopen(f"{base}/metrics", timeout=30)
                                                              .read().decode())}
counted = sum(s.value for s in families["vllm:generation_tokens"].samples if s.name.endswith("_total"))
produced = sum(s.value for s in families["vllm:request_generation_tokens"].samples if s.name.endswith("_sum"))
# A reply a stop string cuts during its own last step keeps that step's average (under 2 tokens).
check("generation_tokens_total is the tokens produced", produced > 0 and abs(counted - produced) < 3,
      (counted, produced))
# Back to real time: the next client (.ci/e2e's aiperf check) times the same server against its
# own clock, and at 200× its latencies were 1/70 of what /metrics recorded.
admin_command("speed 1")
for _ in range(50):  # a snapshot may trail the command by a build
    if admin_state().get("speed") == 1:
        break
    time.sleep(0.1)
check("the server is paced at 1× again", admin_state().get("speed") == 1, admin_state().get("speed"))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
