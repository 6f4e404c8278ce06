// Native tests of sim-router's rule: `node --test`, run by `build` before it builds the component.
import assert from "node:assert/strict";
import test from "node:test";

import { simFor, simTable } from "./routing.js";

const config = { "sims.+49": "1", "sims.+4917": "2", "sims.+44": "x", "sims.33": "300" };
const table = simTable(Object.keys(config).sort(), (key) => config[key]);

test("the longest matching prefix wins", () => {
  assert.equal(simFor("+491701234567", table), 2);
  assert.equal(simFor("+4930123456", table), 1);
});

test("unmatched destinations and invalid SIMs keep the default", () => {
  assert.equal(simFor("+447700900123", table), undefined);
  assert.equal(simFor("33612345678", table), undefined);
  assert.deepEqual(table.map(([prefix]) => prefix), ["+4917", "+49"]);
});
