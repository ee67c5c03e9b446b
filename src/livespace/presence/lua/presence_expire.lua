-- Remove one workspace's entries whose expiry passed (their node stopped refreshing).
-- Atomic, so concurrent callers on several nodes report each departure once.
-- KEYS[1] entries     hash  conn_id -> entry JSON
-- KEYS[2] expiries    zset  conn_id -> expiry (epoch seconds, Redis clock)
-- KEYS[3] workspaces  set   workspace ids that have entries
-- ARGV[1] workspace_id
-- Returns, for each user left with no connection, the JSON of their newest removed entry.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local gone = {}
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  local json = redis.call('HGET', KEYS[1], conn)
  redis.call('HDEL', KEYS[1], conn)
  redis.call('ZREM', KEYS[2], conn)
  if json then
    local entry = cjson.decode(json)
    local seen = gone[entry.user_id]
    if not seen or entry.updated > seen.updated then
      gone[entry.user_id] = {json = json, updated = entry.updated}
    end
  end
end
local all = redis.call('HGETALL', KEYS[1])
for i = 2, #all, 2 do
  gone[cjson.decode(all[i]).user_id] = nil
end
if #all == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[1])
end
local result = {}
for _, seen in pairs(gone) do
  result[#result + 1] = seen.json
end
return result
