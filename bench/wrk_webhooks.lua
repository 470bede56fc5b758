-- bench/wrk_webhooks.lua: wrk sends the signed webhooks bench/loadgen --dump wrote (whole
-- HTTP/1.1 requests, each followed by a NUL byte), every request once: thread t of T sends
-- requests t, t + T, t + 2T, ... of the file named by $WRK_REQUESTS ($WRK_THREADS is T, as
-- given to -t: each thread reads the file alone and needs it). A thread that runs out
-- sends nothing more and says so. done() prints one JSON line like bench/loadgen's.
-- usage: WRK_REQUESTS=FILE WRK_THREADS=T wrk -t T -c C -d Ss -s bench/wrk_webhooks.lua http://127.0.0.1:P/

local threads = {}
local nthreads = 0

function setup(thread)
   thread:set("id", nthreads)
   nthreads = nthreads + 1
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("WRK_REQUESTS")
   local f = assert(io.open(path, "rb"), "WRK_REQUESTS: cannot open " .. tostring(path))
   local total = assert(tonumber(os.getenv("WRK_THREADS")), "WRK_THREADS: not a number")
   local all = f:read("*a")
   f:close()
   mine = {}
   local k, at = 0, 1
   while true do
      local stop = string.find(all, "\0", at, true)
      if stop == nil then break end
      if k % total == id then
         mine[#mine + 1] = string.sub(all, at, stop - 1)
      end
      k = k + 1
      at = stop + 1
   end
   next_req = 1
   exhausted = 0
end

function request()
   local r = mine[next_req]
   if r == nil then
      exhausted = exhausted + 1
      wrk.thread:stop()
      return wrk.format("GET", "/healthz")
   end
   next_req = next_req + 1
   return r
end

function done(summary, latency, requests)
   local short = 0
   for _, t in ipairs(threads) do
      short = short + (t:get("exhausted") or 0)
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   local ok = summary.requests - e.status
   io.write(string.format(
      '{"client":"wrk","requests":%d,"ok":%d,"non200":%d,"transport_errors":%d,' ..
      '"seconds":%.3f,"webhooks_per_s":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
      '"exhausted":%d}\n',
      summary.requests, ok, e.status, e.connect + e.read + e.write + e.timeout, secs,
      ok / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, short))
end
