-- Admit one connection against the cluster-wide caps: a user's open sockets and a
-- workspace's, summed over the nodes that hold them.
-- KEYS[1] user       hash  incarnation -> open sockets of this user on that node
-- KEYS[2] workspace  hash  incarnation -> open sockets of this workspace on that node
-- KEYS[3] counted    set   the count keys this node (incarnation) has fields in
-- ARGV[1] incarnation, ARGV[2] per-user cap, ARGV[3] per-workspace cap
-- Returns 0 when admitted (counted), 1 when the user is at its cap, 2 the workspace.
local function total(key)
  local sum = 0
  for _, n in ipairs(redis.call('HVALS', key)) do
    sum = sum + tonumber(n)
  end
  return sum
end
if total(KEYS[1]) >= tonumber(ARGV[2]) then
  return 1
end
if total(KEYS[2]) >= tonumber(ARGV[3]) then
  return 2
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('SADD', KEYS[3], KEYS[1], KEYS[2])
return 0
