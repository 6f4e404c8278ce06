-- Removes delivered entries. ARGV: prefix, user, ids... Returns how many were still queued.
local removed = 0
for i = 3, #ARGV do
    if remove(ARGV[2], ARGV[i]) then
        removed = removed + 1
    end
end
return removed
