-- This instance holds no receiver of the user (nor of the SMSGate account, when given) any
-- more: its lease ends now, and the other instances are woken to take over its entries.
-- ARGV: prefix, this instance, user, SMSGate account or ''.
redis.call('HDEL', P .. 'present:' .. ARGV[3], ARGV[2])
if ARGV[4] ~= '' then
    redis.call('HDEL', P .. 'here:' .. ARGV[4], ARGV[2])
end
redis.call('PUBLISH', P .. 'wake', ARGV[3])
return 1
