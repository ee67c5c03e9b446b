-- Take up to ARGV[3] tokens from one cluster-wide token bucket (a user's frames or HTTP
-- requests over every node), refilled continuously with the Redis clock.
-- KEYS[1] bucket  hash  tokens, stamp (epoch seconds); expires once it would be full
-- ARGV[1] rate (tokens per second), ARGV[2] burst, ARGV[3] tokens wanted (a lease)
-- Returns {granted, wait_ms}: wait_ms > 0 (and granted 0) when not even one is there.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if not tokens then
  tokens, stamp = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
if granted > 0 then
  return {granted, 0}
end
return {0, math.ceil((1 - tokens) / rate * 1000)}
