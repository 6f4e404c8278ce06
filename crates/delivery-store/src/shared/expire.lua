-- Drops entries and dead letters older than the cutoff, at most 1000 entries per user and
-- call, and forgets users with nothing left. ARGV: prefix, cutoff ms. Returns the count of
-- dropped dead letters, then user, id, event, attempts per dropped entry.
local cutoff = ARGV[2]
local out, dead_dropped = {}, 0
for _, account in ipairs(redis.call('SMEMBERS', P .. 'accounts')) do
    local queue, dead = P .. 'queue:' .. account, P .. 'dead:' .. account
    for _, entry in ipairs(redis.call('XRANGE', queue, '-', '(' .. cutoff .. '-0', 'COUNT', 1000)) do
        local gone = remove(account, entry[1])
        if gone then
            table.insert(out, account)
            table.insert(out, entry[1])
            table.insert(out, gone[1])
            table.insert(out, tostring(gone[3]))
        end
    end
    dead_dropped = dead_dropped + redis.call('XTRIM', dead, 'MINID', cutoff)
    if redis.call('XLEN', queue) == 0 and redis.call('XLEN', dead) == 0 then
        redis.call('DEL', queue, dead, P .. 'tries:' .. account)
        redis.call('HDEL', P .. 'bytes', account)
        redis.call('SREM', P .. 'accounts', account)
    end
end
table.insert(out, 1, tostring(dead_dropped))
return out
