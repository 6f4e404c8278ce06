-- Stores the deliver_sm bodies of one webhook event, unless the event was stored within the
-- TTL or the queues are full, and wakes the instances. ARGV: prefix, user, event id, TTL ms,
-- max items, max bytes, bodies...
local account, event = ARGV[2], ARGV[3]
local ttl, max_items, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local seen = P .. 'seen:' .. account .. '|' .. event
if redis.call('EXISTS', seen) == 1 then
    return 'duplicate'
end
local count, bytes = #ARGV - 6, 0
for i = 7, #ARGV do
    bytes = bytes + #ARGV[i]
end
local size = P .. 'size'
local items = tonumber(redis.call('HGET', size, 'items') or 0)
local used = tonumber(redis.call('HGET', size, 'bytes') or 0)
if items + count > max_items or used + bytes > max_bytes then
    return 'full'
end
local queue = open_queue(account)
local first
for i = 7, #ARGV do
    local id = redis.call('XADD', queue, '*', 'event', event, 'body', ARGV[i])
    first = first or id
end
count_size(account, count, bytes)
redis.call('SET', seen, '1', 'PX', ttl)
redis.call('SADD', P .. 'accounts', account)
redis.call('PUBLISH', P .. 'wake', account)
return first
