-- Shared by node_reap.lua and node_sync.lua: presence/redis.py puts this before them
-- when it registers them (Redis scripts cannot include one another).
-- member: "<workspace_id>\n<conn_id>", as a node's owned set holds them.
local function split_member(member)
  local cut = string.find(member, '\n', 1, true)
  return string.sub(member, 1, cut - 1), string.sub(member, cut + 1)
end

-- Remove connection conn's entry in workspace ws; when it was its user's last one,
-- append ws and the entry's JSON to out (the user left).
local function remove_entry(prefix, ws, conn, out)
  local entries = prefix .. ':presence:' .. ws
  local json = redis.call('HGET', entries, conn)
  if json then
    redis.call('HDEL', entries, conn)
    local users = prefix .. ':presence-users:' .. ws
    local user_id = cjson.decode(json).user_id
    if redis.call('HINCRBY', users, user_id, -1) <= 0 then
      redis.call('HDEL', users, user_id)
      out[#out + 1] = ws
      out[#out + 1] = json
    end
  end
end

