-- Remove one connection's presence entry, atomically deciding whether it was its user's
-- last live connection. When it was, the user's expired entries (of dead nodes) go too,
-- so that presence_expire.lua does not announce the same user leaving again.
-- KEYS[1] entries     hash  conn_id -> entry JSON
-- KEYS[2] expiries    zset  conn_id -> expiry (epoch seconds, Redis clock)
-- KEYS[3] workspaces  set   workspace ids that have entries
-- ARGV[1] conn_id, ARGV[2] workspace_id
-- Returns the removed entry's JSON when the user has no live connection left
-- (announce leave), else nil (also for an unknown connection).
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return false
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local user_id = cjson.decode(json).user_id
local last, stale = true, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).user_id == user_id then
    local expiry = tonumber(redis.call('ZSCORE', KEYS[2], all[i]))
    if expiry and expiry > now then
      last = false
      break
    end
    stale[#stale + 1] = all[i]
  end
end
if last then
  for _, conn in ipairs(stale) do
    redis.call('HDEL', KEYS[1], conn)
    redis.call('ZREM', KEYS[2], conn)
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
end
if last then
  return json
end
return false
