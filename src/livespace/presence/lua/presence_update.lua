-- Change one connection's status and/or viewing; it becomes its user's newest
-- connection (the one whose status and viewing the user shows).
-- KEYS[1] entries  hash  conn_id -> entry JSON
-- ARGV[1] conn_id, ARGV[2] changes JSON ({"status"?: str, "viewing"?: str|null})
-- Returns {entry JSON before, entry JSON after, the user's other entries' JSON...},
-- or nil when the connection is unknown.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local entry = cjson.decode(old)
local result, newest = {old, ''}, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    local other = cjson.decode(all[i + 1])
    if other.user_id == entry.user_id then
      result[#result + 1] = all[i + 1]
      newest = math.max(newest, other.updated)
    end
  end
end
for key, value in pairs(cjson.decode(ARGV[2])) do
  entry[key] = value
end
-- strictly newest even within the clock's resolution (JSON keeps ~0.1 ms)
entry.updated = math.max(now, newest + 0.001)
result[2] = cjson.encode(entry)
redis.call('HSET', KEYS[1], ARGV[1], result[2])
return result
