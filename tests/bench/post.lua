-- post.lua - wrk script for the ingest benchmark (run.sh): POSTs one prebuilt body, read from
-- the file named by BENCH_BODY, with Content-Type BENCH_CTYPE and, if BENCH_TOKEN is set, a
-- bearer token, over keep-alive. The body is built once so wrk spends its CPU on sending, not
-- on Lua. done() prints one machine-readable BENCH line that run.sh parses.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f bytes=%d status_errors=%d " ..
      "socket_errors=%d timeouts=%d p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      summary.bytes, e.status, e.connect + e.read + e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
