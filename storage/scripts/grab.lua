-- Decide grabs atomically, in order: grab i is user ARGV[i] on the packet whose keys are
-- KEYS[3i-2] its meta hash (present while its slots are loaded),
-- KEYS[3i-1] the list of slot numbers still free,
-- KEYS[3i]   the hash user id -> slot number of everyone who took one.
-- Returns {outcome, slot, left} for each grab, one after another in one flat list: outcome -1
-- slots not loaded, 0 too slow, 1 won now, 2 this user already holds `slot`; `left` is how many
-- slots remain after that grab.
local results = {}
for i = 1, #ARGV do
  local meta, free, holders, user = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], ARGV[i]
  local outcome, slot = -1, 0
  if redis.call('EXISTS', meta) == 1 then
    local held = redis.call('HGET', holders, user)
    if held then
      outcome, slot = 2, tonumber(held)
    else
      local taken = redis.call('LPOP', free)
      if taken then
        redis.call('HSET', holders, user, taken)
        outcome, slot = 1, tonumber(taken)
      else
        outcome = 0
      end
    end
  end
  local left = 0
  if outcome > 0 then
    left = redis.call('LLEN', free)
  end
  results[#results + 1] = outcome
  results[#results + 1] = slot
  results[#results + 1] = left
end
return results
