-- Counts a failed attempt (ARGV[4] = 1: refused for good). ARGV: prefix, user, id, permanent.
-- Returns {attempts, permanent refusals}, or nil when the entry is gone.
local account, id = ARGV[2], ARGV[3]
if not redis.call('XRANGE', P .. 'queue:' .. account, id, id)[1] then
    return false
end
local tries = P .. 'tries:' .. account
local attempts = redis.call('HINCRBY', tries, id .. ':a', 1)
local permanent
if ARGV[4] == '1' then
    permanent = redis.call('HINCRBY', tries, id .. ':p', 1)
else
    permanent = tonumber(redis.call('HGET', tries, id .. ':p') or 0)
end
return {attempts, permanent}
