-- Renews this instance's liveness and its lease on its receivers, and forgets ended leases of
-- others. ARGV: prefix, this instance, lease end ms, now ms, TTL ms, then per user: SMSGate
-- account, user, SIM slot ('' for any), device ('' for any).
local me, lease_end, now, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('SET', P .. 'alive:' .. me, '1', 'PX', tonumber(lease_end) - now)
local function renew(key)
    local leases = redis.call('HGETALL', key)
    for i = 1, #leases, 2 do
        if tonumber(leases[i + 1]) < now then
            redis.call('HDEL', key, leases[i])
        end
    end
    redis.call('HSET', key, me, lease_end)
    redis.call('PEXPIRE', key, ttl)
end
for i = 6, #ARGV, 4 do
    local smsgate, user, sim, device = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    renew(P .. 'present:' .. user)
    renew(P .. 'here:' .. smsgate)
    local users = P .. 'users:' .. smsgate
    redis.call('HSET', users, user, sim .. '|' .. now .. '|' .. device)
    redis.call('PEXPIRE', users, ttl)
end
return 1
