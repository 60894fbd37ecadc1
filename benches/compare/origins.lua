-- wrk script: GETs rotating over N origins (https://oI.loadtest.example) and P paths.
--   wrk -s origins.lua URL -- ORIGINS PATHS PATH_PREFIX [preflight]
-- With "preflight" it sends CORS preflights (OPTIONS with Access-Control-Request-Method).
local origins, paths, prefix, preflight = 10, 10, "/o/1k", false
local n = 0

function init(args)
  origins = tonumber(args[1]) or origins
  paths = tonumber(args[2]) or paths
  prefix = args[3] or prefix
  preflight = args[4] == "preflight"
  -- Threads start at different points of the rotation.
  n = math.random(0, origins * paths)
end

function request()
  n = n + 1
  local origin = "https://o" .. (n % origins) .. ".loadtest.example"
  local path = prefix .. "/" .. (math.floor(n / origins) % paths)
  if preflight then
    return wrk.format("OPTIONS", path, {
      ["Origin"] = origin,
      ["Access-Control-Request-Method"] = "PUT",
      ["Access-Control-Request-Headers"] = "content-type",
    })
  end
  return wrk.format("GET", path, { ["Origin"] = origin })
end
