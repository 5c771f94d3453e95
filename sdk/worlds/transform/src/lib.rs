//! Internal to `ferrygate-sdk`: the bindings of the `transform` world, generated
//! from the WIT in `wit/` (the only source of truth). Plugins use the SDK,
//! never this crate.
//!
//! Each world lives in its own crate because `wit-bindgen` exports its
//! export macros at the crate root, and every world exports `lifecycle`:
//! two worlds in one crate would define the same macro twice.

wit_bindgen::generate!({
    world: "transform",
    path: "../../../wit",
    pub_export_macro: true,
    export_macro_name: "export_transform_world",
        with: {
            "ferrygate:plugin/types@0.2.0": ferrygate_sdk_auth_world::ferrygate::plugin::types,
            "ferrygate:plugin/host@0.2.0": ferrygate_sdk_auth_world::ferrygate::plugin::host,
        },
});
