-- wrk script: grant_type=refresh_token rotation (scenario r). Every request presents a
-- refresh token that an earlier answer returned, and each token is presented once:
-- presenting a spent one would revoke its whole login (reuse detection).
--
-- wrk does not tell a script which connection a response belongs to, so the chains are
-- kept per thread, not per connection: a thread holds a queue of live tokens; request()
-- takes one, response() puts back the successor the answer carries. A token is thus
-- never sent again before its answer came back. Each thread starts with
-- $BENCH_PER_THREAD tokens from $BENCH_TOKENS_FILE (one per line, from password
-- logins): one per connection plus one spare, because wrk calls request() once at
-- start-up to check the script (that token is never sent).
--
-- A non-200 answer ends its chain; a connection that then finds its queue empty sends
-- a token that does not exist ("starved"), answered 400. Both are counted: a correct
-- run has bad = 0 and starved = 0.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local file = os.getenv("BENCH_TOKENS_FILE")
local per_thread = tonumber(os.getenv("BENCH_PER_THREAD") or "0")
local all, taken = nil, 0
local threads = {}

function setup(thread)
  if all == nil then
    all = {}
    for line in io.lines(file) do
      if line ~= "" then table.insert(all, line) end
    end
  end
  local mine = {}
  for _ = 1, per_thread do
    taken = taken + 1
    if all[taken] then table.insert(mine, all[taken]) end
  end
  thread:set("initial", table.concat(mine, " "))
  table.insert(threads, thread)
end

function init(args)
  queue = {}
  for t in string.gmatch(initial, "%S+") do table.insert(queue, t) end
  ok, bad, starved = 0, 0, 0
end

function request()
  local t = table.remove(queue)
  if t == nil then
    starved = starved + 1
    t = "starved"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. t)
end

function response(status, headers, body)
  local t = status == 200 and string.match(body, '"refresh_token":"([^"]+)"')
  if t then
    ok = ok + 1
    table.insert(queue, t)
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total, starved_total = 0, 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
    starved_total = starved_total + (t:get("starved") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"ok":%d,"bad":%d,"starved":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    ok_total, bad_total, starved_total))
end
