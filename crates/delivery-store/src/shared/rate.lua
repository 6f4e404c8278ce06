-- Counts one message of a user in the current second. ARGV: prefix, user, unix second, most
-- per second. Returns 1 when it fits, else 0.
local key = P .. 'rate:' .. ARGV[2] .. ':' .. ARGV[3]
local count = redis.call('INCR', key)
if count == 1 then
    redis.call('PEXPIRE', key, 2000)
end
if count > tonumber(ARGV[4]) then
    return 0
end
return 1
