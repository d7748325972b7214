-- wrk script for bench/bench_serve.sh: POST /predict with a 784-byte body
-- (a 28x28 image, one byte per pixel: a vertical bar of ink), and one
-- parseable line at the end: requests/s, latency percentiles, errors.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local rows = {}
for r = 1, 28 do
  rows[r] = string.rep(string.char(0), 12) .. string.rep(string.char(255), 4) ..
            string.rep(string.char(0), 12)
end
wrk.body = table.concat(rows)
assert(#wrk.body == 784)

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "connect_err=%d read_err=%d write_err=%d timeouts=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, e.status))
end
