-- wrk script: requests rotating over N origins (https://oI.loadtest.example) and P paths.
--   wrk -s origins.lua URL -- ORIGINS PATHS PATH_PREFIX [get|preflight|miss]
-- get: GETs with Origin. preflight: CORS preflights (OPTIONS with Access-Control-Request-*).
-- miss: GETs to a path never asked before (every request a cache miss).
-- At the end it prints one line `result {json}` with the request count, duration, latency
-- percentiles (µs) and error counts, for benches/compare/run.sh.
local origins, paths, prefix, mode = 10, 10, "/o/1k", "get"
local n = 0
local run_id = 0

function init(args)
  origins = tonumber(args[1]) or origins
  paths = tonumber(args[2]) or paths
  prefix = args[3] or prefix
  mode = args[4] or mode
  -- Threads start at different points of the rotation; misses never repeat across runs.
  math.randomseed(os.time() + math.random(1, 1000000))
  n = math.random(0, origins * paths)
  run_id = math.random(1, 1000000000)
end

function request()
  n = n + 1
  local origin = "https://o" .. (n % origins) .. ".loadtest.example"
  if mode == "miss" then
    return wrk.format("GET", prefix .. "/m" .. run_id .. "-" .. n, { ["Origin"] = origin })
  end
  local path = prefix .. "/" .. (math.floor(n / origins) % paths)
  if mode == "preflight" then
    return wrk.format("OPTIONS", path, {
      ["Origin"] = origin,
      ["Access-Control-Request-Method"] = "PUT",
      ["Access-Control-Request-Headers"] = "content-type",
    })
  end
  return wrk.format("GET", path, { ["Origin"] = origin })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'result {"requests":%d,"duration_us":%d,"bytes":%d,"p50":%d,"p99":%d,"p999":%d,'
      .. '"max":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
