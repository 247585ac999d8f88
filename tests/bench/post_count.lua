-- post_count.lua - wrk script for the forwarder benchmark (forward.sh): fills the outbox by
-- POSTing one prebuilt body (file BENCH_BODY, Content-Type BENCH_CTYPE, bearer BENCH_TOKEN) over
-- keep-alive, like post.lua, but each wrk thread stops after BENCH_PER_THREAD answers with status
-- 201, so a run stores a known number of inferences (plus at most the requests still in flight
-- on the thread's connections). wrk itself sleeps for its -d duration whatever the threads do:
-- forward.sh ends it with SIGINT once the relay holds enough rows. done() prints one BENCH line.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()
local ctype = os.getenv("BENCH_CTYPE") or "application/json"
local token = os.getenv("BENCH_TOKEN")
local quota = tonumber(os.getenv("BENCH_PER_THREAD") or "0")

wrk.body = body
wrk.method = "POST"
wrk.headers["Content-Type"] = ctype
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

local created = 0

function response(status, headers, resp_body)
   if status == 201 then
      created = created + 1
      if quota > 0 and created >= quota then
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f status_errors=%d socket_errors=%d timeouts=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      e.status, e.connect + e.read + e.write, e.timeout))
end
