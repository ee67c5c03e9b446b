-- Push the expiry of live connections forward; unknown connections are not added.
-- KEYS[1] expiries  zset  conn_id -> expiry (epoch seconds, Redis clock)
-- ARGV[1] ttl seconds, ARGV[2..] conn_ids
-- Returns the conn_ids that have no entry (expired, or lost with Redis's data): the
-- caller joins them again.
local t = redis.call('TIME')
local expiry = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
local unknown = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], expiry, ARGV[i])
  else
    unknown[#unknown + 1] = ARGV[i]
  end
end
return unknown
