-- Make this node's connection counts exactly the given ones (after Redis lost them,
-- after the node was reaped during a pause, or after a release that could not reach
-- Redis).
-- KEYS[1] counted  set  the count keys this node (incarnation) has fields in
-- ARGV[1] incarnation, ARGV[2..] pairs: count key, open sockets
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('HDEL', key, ARGV[1])
end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', ARGV[i], ARGV[1], ARGV[i + 1])
  redis.call('SADD', KEYS[1], ARGV[i])
end
return 0
