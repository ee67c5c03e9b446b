-- One node's liveness beat: its liveness key lives ARGV[2] ms more, and its deadline in
-- the node registry moves with it.
-- KEYS[1] alive  string  {prefix}:node:<incarnation>, value the node id, PX ttl
-- KEYS[2] nodes  zset    incarnation -> liveness deadline (epoch seconds, Redis clock)
-- ARGV[1] incarnation, ARGV[2] ttl milliseconds, ARGV[3] node id
-- Returns 1 when the key was missing (first beat, the node was declared dead and its
-- entries reaped, or Redis lost its data): the node then syncs its entries; else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local missing = redis.call('EXISTS', KEYS[1]) == 0
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]) / 1000, ARGV[1])
if missing then
  return 1
end
return 0
