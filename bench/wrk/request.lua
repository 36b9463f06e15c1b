-- One fixed request: BENCH.method, BENCH.path, BENCH.headers, BENCH.body (GET or POST).
local req = nil
function request()
  if req == nil then
    req = wrk.format(BENCH.method, BENCH.path, BENCH.headers, BENCH.body)
  end
  return req
end
