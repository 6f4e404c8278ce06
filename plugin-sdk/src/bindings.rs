//! The bindings generated from the contract. Plugin code never sees this module: the types are
//! re-exported at the crate root and the host functions are wrapped, so the SDK can change how
//! the glue looks without breaking plugins.

// The generated glue (import shims, lifting functions, the world's type aliases) has no docs
// of its own and mirrors the WIT signatures; none of it is public API.
#![allow(missing_docs, clippy::too_many_arguments)]

wit_bindgen::generate!({
    path: "wit/v0.2.0",
    world: "plugin",
    // Clone is always generated and Debug is hand-written by wit-bindgen, so only the
    // comparisons are added; deriving Debug again would conflict.
    additional_derives: [PartialEq, Eq],
    // The export macro expands in the plugin crate, so it has to be exported and has to find
    // the generated glue through this crate rather than through `self`.
    pub_export_macro: true,
    default_bindings_module: "$crate::__private",
    // The re-exported types' docs are the contract's own: every item of wit/v0.2.0 has one.
});
