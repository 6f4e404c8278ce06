-- Moves the user's dead letters, oldest first, to the end of its queue as new entries: no
-- attempts yet, and a new id, from which the TTL runs. One that would take the queues past their
-- bounds stays a dead letter. Wakes the instances as a push does. ARGV: prefix, user, max items,
-- max bytes. Returns how many moved.
local account, max_items, max_bytes = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local dead = P .. 'dead:' .. account
local items = tonumber(redis.call('HGET', P .. 'size', 'items') or 0)
local used = tonumber(redis.call('HGET', P .. 'size', 'bytes') or 0)
local moved, bytes = 0, 0
for _, entry in ipairs(redis.call('XRANGE', dead, '-', '+')) do
    local event, body = field(entry[2], 'event'), field(entry[2], 'body')
    -- Each is weighed on its own, like a push: a smaller one after may still fit.
    if items + moved + 1 <= max_items and used + bytes + #body <= max_bytes then
        redis.call('XADD', open_queue(account), '*', 'event', event, 'body', body)
        redis.call('XDEL', dead, entry[1])
        moved, bytes = moved + 1, bytes + #body
    end
end
if moved > 0 then
    count_size(account, moved, bytes)
    redis.call('SADD', P .. 'accounts', account)
    redis.call('PUBLISH', P .. 'wake', account)
end
return moved
