-- The user's oldest dead letters, for an operator, without their bodies. ARGV: prefix, user,
-- limit. Returns id, event, status, reason, attempts, body bytes per dead letter.
local dead, out = P .. 'dead:' .. ARGV[2], {}
-- A COUNT of 0 answers nil rather than an empty list.
for _, entry in ipairs(redis.call('XRANGE', dead, '-', '+', 'COUNT', ARGV[3]) or {}) do
    local fields = entry[2]
    table.insert(out, entry[1])
    table.insert(out, field(fields, 'event'))
    table.insert(out, field(fields, 'status'))
    table.insert(out, field(fields, 'reason'))
    table.insert(out, field(fields, 'attempts'))
    table.insert(out, tostring(#field(fields, 'body')))
end
return out
