-- Moves an entry to the user's dead letters, at most max items of them. ARGV: prefix, user,
-- id, status, reason, max items. Returns {event, body, attempts, evicted}, or nil when gone.
local account, id = ARGV[2], ARGV[3]
local gone = remove(account, id)
if not gone then
    return false
end
local dead = P .. 'dead:' .. account
local before = redis.call('XLEN', dead)
redis.call('XADD', dead, 'MAXLEN', tonumber(ARGV[6]), '*', 'event', gone[1], 'body', gone[2],
    'status', ARGV[4], 'reason', ARGV[5], 'attempts', gone[3], 'queued', id)
redis.call('SADD', P .. 'accounts', account)
return {gone[1], gone[2], tostring(gone[3]), tostring(before + 1 - redis.call('XLEN', dead))}
