-- Push the expiry of live connections forward; unknown connections are not added.
-- KEYS[1] expiries  zset  conn_id -> expiry (epoch seconds, Redis clock)
-- ARGV[1] ttl seconds, ARGV[2..] conn_ids
local t = redis.call('TIME')
local expiry = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
end
return #ARGV - 1
