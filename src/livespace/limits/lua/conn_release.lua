-- One connection admitted by conn_admit.lua ended.
-- KEYS[1] user hash, KEYS[2] workspace hash (incarnation -> open sockets)
-- ARGV[1] incarnation
for i = 1, 2 do
  if redis.call('HINCRBY', KEYS[i], ARGV[1], -1) <= 0 then
    redis.call('HDEL', KEYS[i], ARGV[1])
  end
end
return 0
