-- The live (not expired) presence entries of one workspace.
-- KEYS[1] entries     hash  conn_id -> entry JSON
-- KEYS[2] expiries    zset  conn_id -> expiry (epoch seconds, Redis clock)
-- Returns the JSON of every live entry.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local entries = {}
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')) do
  local json = redis.call('HGET', KEYS[1], conn)
  if json then
    entries[#entries + 1] = json
  end
end
return entries
