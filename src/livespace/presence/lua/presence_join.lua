-- Add (or replace) one connection's presence entry, atomically deciding whether it is
-- its user's first connection in the workspace on any node.
-- KEYS[1] entries  hash  conn_id -> entry JSON
-- KEYS[2] users    hash  user_id -> number of entries
-- KEYS[3] owned    set   "<workspace_id>\n<conn_id>" of this node (incarnation)
-- KEYS[4] nodes    zset  incarnation -> liveness deadline (epoch seconds, Redis clock)
-- ARGV[1] conn_id, ARGV[2] entry JSON, ARGV[3] workspace_id, ARGV[4] incarnation,
-- ARGV[5] liveness ttl seconds (registers the node if it has not beaten yet)
-- Returns 1 when the user had no connection before (announce join), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local entry = cjson.decode(ARGV[2])
entry.updated = now
local known = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('SADD', KEYS[3], ARGV[3] .. '\n' .. ARGV[1])
redis.call('ZADD', KEYS[4], 'NX', now + tonumber(ARGV[5]), ARGV[4])
if known then
  return 0
end
if redis.call('HINCRBY', KEYS[2], entry.user_id, 1) == 1 then
  return 1
end
return 0
