-- One node's heartbeat on the roll of nodes, KEYS[1]: a sorted set of node id -> the Redis time
-- (ms) its last beat lapses. ARGV[1] is this node's id, ARGV[2] how long a beat lasts (ms).
-- Redis's own clock, so that nodes on machines whose clocks differ agree on who has lapsed.
-- Returns the ids of every node whose beat has not lapsed, this one's included.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lasts = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - 60000))
redis.call('ZADD', KEYS[1], now + lasts, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 60000 + lasts)
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
