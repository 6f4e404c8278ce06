//! wit/v0.2.0, the latest contract: its types are the ones the rest of the server uses.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit/v0.2.0",
    exports: { default: async },
});
