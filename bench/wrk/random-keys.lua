-- Garbage-key flood with a fresh random key on every request: `Authorization: Bearer
-- tr_prod_<24 random [0-9A-Za-z]>`, upstream's key format, so the server cannot reject it by
-- shape and must treat each as an unknown key (a negative-cache miss, then a lookup).
--
--   wrk ... -s random-keys.lua http://127.0.0.1:PORT/api/v1/auth/credential -- SEED
--
-- SEED (any integer) varies the keys between runs; each wrk thread mixes in its own number so
-- the threads do not generate the same sequence.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local next_id = 1
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local chars = {}

function init(args)
  local seed = tonumber(args[1]) or os.time()
  math.randomseed(seed * 1000 + (thread_id or 0))
  -- LuaJIT's first values after seeding are poorly mixed; discard a few.
  for _ = 1, 10 do math.random() end
end

function request()
  for i = 1, 24 do
    local n = math.random(1, 62)
    chars[i] = alphabet:sub(n, n)
  end
  wrk.headers["Authorization"] = "Bearer tr_prod_" .. table.concat(chars)
  return wrk.format()
end
