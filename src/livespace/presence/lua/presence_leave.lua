-- Remove one connection's presence entry, atomically deciding whether it was its user's
-- last connection in the workspace.
-- KEYS[1] entries  hash  conn_id -> entry JSON
-- KEYS[2] users    hash  user_id -> number of entries
-- KEYS[3] owned    set   "<workspace_id>\n<conn_id>" of this node (incarnation)
-- ARGV[1] conn_id, ARGV[2] workspace_id
-- Returns the removed entry's JSON when the user has no connection left (announce
-- leave), else nil (also for an unknown connection: already removed by a reaper).
local json = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2] .. '\n' .. ARGV[1])
if not json then
  return false
end
redis.call('HDEL', KEYS[1], ARGV[1])
local user_id = cjson.decode(json).user_id
if redis.call('HINCRBY', KEYS[2], user_id, -1) <= 0 then
  redis.call('HDEL', KEYS[2], user_id)
  return json
end
return false
