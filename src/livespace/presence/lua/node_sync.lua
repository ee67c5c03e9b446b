-- (after lib_entries.lua) Make one node's presence entries exactly the given ones: after Redis lost its data,
-- after this node was declared dead (a pause past the bound) and came back, or after
-- calls that could not reach Redis (a leave or join that was skipped).
-- Touches keys named from ARGV[1]: one Redis server (not Redis Cluster).
-- KEYS[1] owned  set   "<workspace_id>\n<conn_id>" of this node (incarnation)
-- KEYS[2] nodes  zset  incarnation -> liveness deadline (epoch seconds, Redis clock)
-- ARGV[1] key prefix, ARGV[2] incarnation, ARGV[3] liveness ttl seconds,
-- ARGV[4..] triplets: workspace_id, conn_id, entry JSON
-- Returns {joined, left}: each a list {workspace_id, entry JSON, ...} of the users whose
-- first connection was added (announce join) or whose last one was removed (leave).
local prefix = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wanted, joined, left = {}, {}, {}
for i = 4, #ARGV, 3 do
  wanted[ARGV[i] .. '\n' .. ARGV[i + 1]] = true
end
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not wanted[member] then
    redis.call('SREM', KEYS[1], member)
    local ws, conn = split_member(member)
    remove_entry(prefix, ws, conn, left)
  end
end
for i = 4, #ARGV, 3 do
  local ws, conn = ARGV[i], ARGV[i + 1]
  local entries = prefix .. ':presence:' .. ws
  redis.call('SADD', KEYS[1], ws .. '\n' .. conn)
  if redis.call('HEXISTS', entries, conn) == 0 then
    local entry = cjson.decode(ARGV[i + 2])
    entry.updated = now
    local json = cjson.encode(entry)
    redis.call('HSET', entries, conn, json)
    if redis.call('HINCRBY', prefix .. ':presence-users:' .. ws, entry.user_id, 1) == 1 then
      joined[#joined + 1] = ws
      joined[#joined + 1] = json
    end
  end
end
redis.call('ZADD', KEYS[2], 'NX', now + tonumber(ARGV[3]), ARGV[2])
return {joined, left}
