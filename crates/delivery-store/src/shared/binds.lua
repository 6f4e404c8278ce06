-- Takes (ARGV[5] = 'take') or gives back ('release') one bind of a user on this instance.
-- Binds of instances whose liveness key is gone (killed) no longer count and are forgotten.
-- ARGV: prefix, user, this instance, most binds, take/release. Returns 1, or 0 when full.
local key, me = P .. 'binds:' .. ARGV[2], ARGV[3]
if ARGV[5] == 'release' then
    if redis.call('HINCRBY', key, me, -1) <= 0 then
        redis.call('HDEL', key, me)
    end
    return 1
end
local held, total = redis.call('HGETALL', key), 0
for i = 1, #held, 2 do
    if held[i] == me or redis.call('EXISTS', P .. 'alive:' .. held[i]) == 1 then
        total = total + tonumber(held[i + 1])
    else
        redis.call('HDEL', key, held[i])
    end
end
if total >= tonumber(ARGV[4]) then
    return 0
end
redis.call('HINCRBY', key, me, 1)
return 1
