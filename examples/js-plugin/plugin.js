// sim-router: a policy plugin in JavaScript. It sends each submitted message through the SIM its
// destination's prefix is configured for, the longest prefix winning:
//
//     [config.sims]
//     "+49" = "1"
//     "+44" = "2"
//
// Messages to other destinations keep the account's default SIM.
import { configGet, configKeys, log } from "smsgate:smpp-plugin/host@0.2.0";
import { PREFIX, simFor, simTable } from "./routing.js";

export function describe() {
  return { name: "sim-router", version: "1.0.0", hooks: { route: true } };
}

export function route(account, message) {
  const destination = message.destinations[0]?.addr ?? "";
  // Read on each call, so a reload of the configuration applies at once.
  const sim = simFor(destination, simTable(configKeys(PREFIX), configGet));
  if (sim === undefined) {
    return { tag: "continue" };
  }
  log("debug", `${account.id}: ${destination} goes through SIM ${sim}`);
  return { tag: "route", val: { simNumber: sim } };
}

// The server calls only the hooks `describe` names; these are never called.
export function authenticate() {
  return { tag: "pass" };
}

export function transformSubmit() {
  return { tag: "continue" };
}

export function transformDeliver() {
  return { tag: "continue" };
}

export function routeIncoming() {
  return { tag: "continue" };
}
