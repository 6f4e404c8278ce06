-- Deletes the user's dead letters. ARGV: prefix, user. Returns how many.
local dead = P .. 'dead:' .. ARGV[2]
local count = redis.call('XLEN', dead)
redis.call('DEL', dead)
return count
