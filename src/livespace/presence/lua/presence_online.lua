-- The presence entries of one workspace (every one belongs to a live node: the entries
-- of a dead node are removed by node_reap.lua).
-- KEYS[1] entries  hash  conn_id -> entry JSON
-- Returns the JSON of every entry.
return redis.call('HVALS', KEYS[1])
