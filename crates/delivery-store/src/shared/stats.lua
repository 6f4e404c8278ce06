-- Per user with entries or dead letters: user, items, oldest id, bytes, dead letters.
-- ARGV: prefix.
local out = {}
for _, account in ipairs(redis.call('SMEMBERS', P .. 'accounts')) do
    local queue = P .. 'queue:' .. account
    local items, dead = redis.call('XLEN', queue), redis.call('XLEN', P .. 'dead:' .. account)
    if items > 0 or dead > 0 then
        local first = redis.call('XRANGE', queue, '-', '+', 'COUNT', 1)[1]
        table.insert(out, account)
        table.insert(out, tostring(items))
        table.insert(out, first and first[1] or '')
        table.insert(out, tostring(redis.call('HGET', P .. 'bytes', account) or 0))
        table.insert(out, tostring(dead))
    end
end
return out
