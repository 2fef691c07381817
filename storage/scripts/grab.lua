-- Decide one grab atomically.
-- KEYS[1] the packet's meta hash (present while its slots are loaded)
-- KEYS[2] the list of slot numbers still free
-- KEYS[3] the hash user id -> slot number of everyone who took one
-- ARGV[1] the grabbing user's id
-- Returns {outcome, slot, left}: outcome -1 slots not loaded, 0 too slow, 1 won now,
-- 2 this user already holds `slot`; `left` is how many slots remain after this grab.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0, 0}
end
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  return {2, tonumber(held), redis.call('LLEN', KEYS[2])}
end
local slot = redis.call('LPOP', KEYS[2])
if not slot then
  return {0, 0, 0}
end
redis.call('HSET', KEYS[3], ARGV[1], slot)
return {1, tonumber(slot), redis.call('LLEN', KEYS[2])}
