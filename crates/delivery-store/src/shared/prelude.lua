-- Shared by every script: ARGV[1] is the key prefix. Keys (P = prefix, A = SMPP user):
--   P queue:A    stream of deliver_sm bodies, consumer group "deliver", one consumer per instance
--   P tries:A    hash "<id>:a" attempts, "<id>:p" permanent refusals of queued entries
--   P dead:A     stream of dead letters
--   P seen:A|E   webhook event E already stored (expires with the TTL)
--   P size       hash: items, bytes of every queue;  P bytes: hash A -> bytes of A's queue
--   P accounts   set of users with a queue or dead letters
--   P present:A  hash instance -> lease end (ms) of its receivers of A
--   P here:S     hash instance -> lease end (ms) of its receivers of SMSGate account S
--   P users:S    hash user -> "sim|seen ms|device" of the users that bound as receivers of S
--   P alive:I    instance I runs (expires with its lease)
--   P binds:A    hash instance -> binds of A there;  P rate:A:T  messages of A in second T
local P = ARGV[1]

local function field(fields, name)
    for i = 1, #fields, 2 do
        if fields[i] == name then
            return fields[i + 1]
        end
    end
end

-- The user's queue, created with its consumer group on first use.
local function open_queue(account)
    local queue = P .. 'queue:' .. account
    if redis.call('EXISTS', queue) == 0 then
        redis.call('XGROUP', 'CREATE', queue, 'deliver', '0', 'MKSTREAM')
    end
    return queue
end

-- Adds to the item and byte counts of every queue together and of the user's (negative when
-- entries leave), which push weighs against the bounds.
local function count_size(account, items, bytes)
    redis.call('HINCRBY', P .. 'size', 'items', items)
    redis.call('HINCRBY', P .. 'size', 'bytes', bytes)
    redis.call('HINCRBY', P .. 'bytes', account, bytes)
end

-- Removes a queued entry and its bookkeeping; returns {event, body, attempts}, or nil when it
-- is gone already.
local function remove(account, id)
    local queue = P .. 'queue:' .. account
    local entry = redis.call('XRANGE', queue, id, id)[1]
    if not entry then
        return nil
    end
    redis.call('XACK', queue, 'deliver', id)
    redis.call('XDEL', queue, id)
    local tries = P .. 'tries:' .. account
    local attempts = tonumber(redis.call('HGET', tries, id .. ':a') or 0)
    redis.call('HDEL', tries, id .. ':a', id .. ':p')
    local event, body = field(entry[2], 'event'), field(entry[2], 'body')
    count_size(account, -1, -#body)
    return {event, body, attempts}
end
