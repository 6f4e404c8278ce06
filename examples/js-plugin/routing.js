// The routing rule of sim-router, apart from the host interface so `node --test` can run it.

const PREFIX = "sims.";

// The prefix table from the plugin's configuration (`sims.PREFIX = "SIM"`), longest prefix
// first; entries whose SIM is not a number from 1 to 255 are left out.
export function simTable(keys, get) {
  return keys
    .filter((key) => key.startsWith(PREFIX))
    .map((key) => [key.slice(PREFIX.length), Number(get(key))])
    .filter(([prefix, sim]) => prefix.length > 0 && Number.isInteger(sim) && sim >= 1 && sim <= 255)
    .sort((a, b) => b[0].length - a[0].length);
}

// The SIM for a destination address, or undefined when no prefix matches.
export function simFor(destination, table) {
  const match = table.find(([prefix]) => destination.startsWith(prefix));
  return match ? match[1] : undefined;
}

export { PREFIX };
