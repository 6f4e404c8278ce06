// Builds the component with ComponentizeJS, from `build`:
//   node componentize.mjs PLUGIN.js WIT_DIR OUT.wasm [--default-features]
// Every WASI feature of the JavaScript engine is disabled: the server offers plugins no
// network (the default build imports wasi:http), and this plugin needs no clock, randomness
// or stdio, so the component imports only the plugin contract. `--default-features` builds
// what ComponentizeJS builds by default, which the server refuses (a test shows how).
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [sourcePath, witPath, out, features] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName: "plugin",
  disableFeatures:
    features === "--default-features" ? [] : ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
