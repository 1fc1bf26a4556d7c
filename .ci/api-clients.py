"""Checks `xds serve` with clients nobody here wrote: the official `openai` package and
prometheus_client's text parser (issue 7). Usage: python3 .ci/api-clients.py PORT TOKEN"""
import json
import sys
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

text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
families = {f.name: f for f in text_string_to_metric_families(text)}
for name in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
             "vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds",
             "vllm:e2e_request_latency_seconds", "vllm:prompt_tokens", "vllm:generation_tokens",
             "vllm:request_success", "vllm:prefix_cache_queries", "vllm:prefix_cache_hits"]:
    check(f"/metrics has {name}", name in families, sorted(families)[:20])
success = sum(s.value for s in families["vllm:request_success"].samples if s.name.endswith("_total"))
check("request_success counts the two completions", success >= 2, success)

request = urllib.request.Request(f"{base}/admin/state", headers={"Authorization": f"Bearer {token}"})
state = json.load(urllib.request.urlopen(request, timeout=30))
check("admin state is a snapshot", state.get("modelName") == "deepseek-r1" and len(state.get("npus", [])) == 384)

# A bounded load test: 500 requests, 100 concurrent streams; nothing may be lost.
from concurrent.futures import ThreadPoolExecutor


def one_stream(i):
    body = json.dumps({"model": "deepseek-r1", "stream": True, "max_tokens": 16,
                       "messages": [{"role": "user", "content": f"request {i}: " + "word " * (i % 50)}]}).encode()
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            lines = [l.decode().strip() for l in resp if l.strip()]
        done = lines and lines[-1] == "data: [DONE]"
        finished = any('"finish_reason":"stop"' in l or '"finish_reason":"length"' in l for l in lines)
        errored = any('"error"' in l for l in lines)
        return "complete" if done and finished else ("error" if done and errored else "broken")
    except urllib.error.HTTPError as e:
        return "error" if e.code in (429, 503) else f"http {e.code}"
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

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
