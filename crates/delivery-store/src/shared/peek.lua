-- Hands this instance the user's oldest entries: first those it holds already, then new ones.
-- With claim set, entries held by instances whose lease on receivers of the user has ended
-- (it died, or its receivers left) become this instance's first. ARGV: prefix, user, this
-- instance, limit, claim (1/0), now ms. Returns id, event, body, attempts per entry.
local account, me, limit, claim, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1',
    tonumber(ARGV[6])
local queue = P .. 'queue:' .. account
if redis.call('EXISTS', queue) == 0 then
    return {}
end
if claim then
    local present, alive, orphans = P .. 'present:' .. account, {}, {}
    for _, pending in ipairs(redis.call('XPENDING', queue, 'deliver', '-', '+', 1000)) do
        local owner = pending[2]
        if owner ~= me then
            if alive[owner] == nil then
                alive[owner] = tonumber(redis.call('HGET', present, owner) or 0) >= now
            end
            if not alive[owner] then
                table.insert(orphans, pending[1])
            end
        end
    end
    if #orphans > 0 then
        redis.call('XCLAIM', queue, 'deliver', me, 0, unpack(orphans))
    end
end
local out, tries = {}, P .. 'tries:' .. account
local function read(from, count)
    local reply = redis.call('XREADGROUP', 'GROUP', 'deliver', me, 'COUNT', count, 'STREAMS',
        queue, from)
    if reply and reply[1] then
        return reply[1][2]
    end
    return {}
end
local function take(entries)
    for _, entry in ipairs(entries) do
        local id, fields = entry[1], entry[2]
        if fields and #fields > 0 then
            table.insert(out, id)
            table.insert(out, field(fields, 'event'))
            table.insert(out, field(fields, 'body'))
            table.insert(out, tostring(redis.call('HGET', tries, id .. ':a') or 0))
        else
            -- Deleted while held: nothing left to deliver.
            redis.call('XACK', queue, 'deliver', id)
        end
    end
end
local held = read('0', limit)
take(held)
if #held < limit then
    take(read('>', limit - #held))
end
return out
