-- Add (or replace) one connection's presence entry, atomically deciding whether it is
-- its user's first live connection in the workspace on any node.
-- KEYS[1] entries     hash  conn_id -> entry JSON
-- KEYS[2] expiries    zset  conn_id -> expiry (epoch seconds, Redis clock)
-- KEYS[3] workspaces  set   workspace ids that have entries
-- ARGV[1] conn_id, ARGV[2] entry JSON, ARGV[3] ttl seconds, ARGV[4] workspace_id
-- Returns 1 when the user had no live connection before (announce join), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local entry = cjson.decode(ARGV[2])
local first = 1
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')) do
  local json = redis.call('HGET', KEYS[1], conn)
  if json and cjson.decode(json).user_id == entry.user_id then
    first = 0
    break
  end
end
entry.updated = now
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
return first
