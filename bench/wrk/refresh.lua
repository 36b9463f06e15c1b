-- Refresh-token grant with rotation. Each chain (a refresh token and every token that
-- replaces it) is used by one request at a time: a thread keeps a pool of chains; request()
-- takes one, response() puts back the token the answer carries (the one the server just
-- issued). A failed answer ends its chain. Tokens come from BENCH.tokens_file, one a line,
-- split between threads; done() writes the tokens left in the pools to BENCH.tokens_out so the
-- next run continues the same chains.

function bench_setup(thread, index)
  thread:set("tokens_file", BENCH.tokens_file)
end

bench_pool = {}  -- global: done() reads it with thread:get()
local headers = nil
bad_responses = 0
bad_sample = ""

function init(args)
  local i, n = thread_index, BENCH.threads
  local k = 0
  for line in io.lines(BENCH.tokens_file) do
    if #line > 0 then
      if k % n == i - 1 then bench_pool[#bench_pool + 1] = line end
      k = k + 1
    end
  end
  headers = BENCH.headers
end

function request()
  local token = table.remove(bench_pool)
  if token == nil then token = "no-chain-left" end
  return wrk.format("POST", BENCH.path, headers,
    BENCH.body_prefix .. token)
end

function response(status, hdrs, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      bench_pool[#bench_pool + 1] = token
      return
    end
  end
  bad_responses = bad_responses + 1
  if bad_sample == "" then bad_sample = status .. " " .. body:sub(1, 200) end
end

function bench_done(threads)
  for _, t in ipairs(threads) do
    local sample = t:get("bad_sample")
    if sample and sample ~= "" then io.stderr:write("refresh: first bad answer: ", sample, "\n") end
  end
  local f = assert(io.open(BENCH.tokens_out, "w"))
  for _, t in ipairs(threads) do
    local left = t:get("bench_pool")
    for _, tok in ipairs(left or {}) do f:write(tok, "\n") end
  end
  f:close()
end
