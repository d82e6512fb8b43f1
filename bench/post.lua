-- wrk script: one fixed form POST with "Authorization: $BENCH_AUTH" and body
-- $BENCH_BODY (scenario i: POST /introspect with client_secret_basic; scenario k:
-- grant_type=client_credentials on /token). No response() hook, so wrk stays on its
-- fast path; non-2xx answers are counted by wrk itself. done() prints one
-- machine-readable line for bench/run.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
wrk.body = os.getenv("BENCH_BODY") or ""

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
