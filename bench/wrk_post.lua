-- POSTs one JSON body to wrk's URL for bench/http_bench.py.
-- BENCH_BODY: a file holding the body. With BENCH_NONCE set, its text inside the body is
-- replaced on every request by "<BENCH_RUN>-<thread>-<counter>", so no two requests are the
-- same, in this run or any other (the driver gives each run its own BENCH_RUN).
-- done() prints one line "BENCH_RESULT {json}" with the figures the driver reads.

local body_file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = body_file:read("*a")
body_file:close()
local nonce = os.getenv("BENCH_NONCE")
local run_id = os.getenv("BENCH_RUN") or ""
local head, tail = body, nil
if nonce and nonce ~= "" then
  local at = assert(string.find(body, nonce, 1, true), "BENCH_NONCE not in the body")
  head, tail = string.sub(body, 1, at - 1), string.sub(body, at + #nonce)
end

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function request()
  if tail == nil then
    return wrk.format("POST", nil, headers, body)
  end
  counter = counter + 1
  return wrk.format("POST", nil, headers, head .. run_id .. "-" .. thread_id .. "-" .. counter .. tail)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d,"non_2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max, errors.status,
    errors.connect, errors.read, errors.write, errors.timeout))
end
