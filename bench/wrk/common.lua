-- Shared by every scenario script. bench/wrkrun.py writes a BENCH table of settings in front of
-- this file and the scenario's file, then runs: taskset -c 1 wrk ... -s <that script> <url>.
--
-- BENCH.rate: when set (requests/s for the whole run), requests are paced to that rate: each
--   thread hands out send slots 1/rate apart (an open-loop schedule; a slot missed because all
--   connections were busy is sent at once, so an overloaded server shows as latency).
-- BENCH.result_file: done() writes the summary there as JSON.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec[1]")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts[0].tv_sec) * 1000 + tonumber(ts[0].tv_nsec) / 1e6
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
  if bench_setup then bench_setup(thread, thread_count) end
end

local next_slot = nil
local interval = nil

if BENCH.rate and BENCH.rate > 0 then
  function delay()
    if interval == nil then
      interval = 1000.0 * BENCH.threads / BENCH.rate
    end
    local t = now_ms()
    if next_slot == nil or next_slot < t then next_slot = t end
    local slot = next_slot
    next_slot = next_slot + interval
    return math.floor(slot - t)
  end
end

function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%s": %.1f', tostring(q), latency:percentile(q))
  end
  local extra = {}
  for i, t in ipairs(threads) do
    local bad = t:get("bad_responses") or 0
    extra.bad = (extra.bad or 0) + bad
  end
  local out = string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "bad_body": %d}, ' ..
    '"latency_us": {"mean": %.1f, "max": %.1f, "stdev": %.1f, "percentiles": {%s}}}',
    summary.duration, summary.requests, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, extra.bad or 0,
    latency.mean, latency.max, latency.stdev, table.concat(p, ", "))
  if bench_done then bench_done(threads) end
  local f = assert(io.open(BENCH.result_file, "w"))
  f:write(out)
  f:close()
end
