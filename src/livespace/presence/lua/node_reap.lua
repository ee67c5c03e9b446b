-- (after lib_entries.lua) Remove what the nodes whose liveness deadline passed left behind: their presence
-- entries (reporting each user left with no connection, once) and their connection
-- counts. Atomic, so concurrent reapers on several nodes report each departure once.
-- Touches keys named from ARGV[1]: one Redis server (not Redis Cluster).
-- KEYS[1] nodes  zset  incarnation -> liveness deadline (epoch seconds, Redis clock)
-- ARGV[1] key prefix, ARGV[2] most nodes reaped by this call
-- Returns {workspace_id, entry JSON, ...}: for each user who left, their workspace and
-- the entry of their last connection.
local prefix = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local out = {}
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, node in ipairs(dead) do
  local owned = prefix .. ':presence-node:' .. node
  for _, member in ipairs(redis.call('SMEMBERS', owned)) do
    local ws, conn = split_member(member)
    remove_entry(prefix, ws, conn, out)
  end
  local counted = prefix .. ':limits-node:' .. node
  for _, key in ipairs(redis.call('SMEMBERS', counted)) do
    redis.call('HDEL', key, node)
  end
  redis.call('DEL', owned, counted, prefix .. ':node:' .. node)
  redis.call('ZREM', KEYS[1], node)
end
return out
