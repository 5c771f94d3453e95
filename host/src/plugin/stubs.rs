//! Refusing implementations of the WASI interfaces a plugin imports but is
//! not granted (see [`super::capabilities`]): every function of such an
//! interface fails the call with [`Refused`], which the call discipline
//! counts as cause `refused`; its resources are host types that nothing can
//! ever create. This is what lets the default builds of componentize-py and
//! componentize-js (which import `wasi:sockets/*`, `wasi:http/*`, the clocks
//! and randomness) load while reaching nothing. The one exception: while an
//! instance starts, an ungranted clock or randomness read gets an inert
//! answer ([`startup`]), since both runtimes read them as they start; the
//! ungranted monotonic clock stays frozen after that too.
//!
//! Owns the stub definitions in a per-plugin copy of the linker; it never
//! decides what is stubbed (capabilities) and never calls a plugin.

use std::collections::HashMap;

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

use super::capabilities::{Import, Verdict, grant_name};
use super::store::State;

pub mod startup;

/// The error a stubbed function fails its call with.
#[derive(Debug, thiserror::Error)]
#[error("called `{function}`, which is not granted: the gateway refuses every call to it{hint}")]
pub struct Refused {
    /// The function, as `interface#name`.
    pub function: String,
    /// How to allow it, when a grant can: ` (grants = ["clocks"] allows it)`.
    pub hint: String,
}

/// The host type behind every stubbed resource. No stub ever returns one.
struct StubResource;

/// Adds to `linker` (a copy of the runtime's, for one component) a refusing
/// definition of every import of `component` that `imports` marks stubbed.
pub fn link(
    linker: &mut Linker<State>,
    engine: &Engine,
    component: &Component,
    imports: &[Import],
) -> wasmtime::Result<()> {
    let stubbed: HashMap<&str, String> = imports
        .iter()
        .filter_map(|import| match import.verdict {
            Verdict::Stubbed { grant } => Some((
                import.name.as_str(),
                grant.map_or_else(String::new, |grant| {
                    format!(" (grants = [\"{}\"] allows it)", grant_name(grant))
                }),
            )),
            _ => None,
        })
        .collect();
    if stubbed.is_empty() {
        return Ok(());
    }
    linker.allow_shadowing(true);
    // A resource an interface `use`s from another (a socket's streams, say)
    // is the same resource: define each one only where it first appears.
    let mut defined: Vec<ResourceType> = Vec::new();
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let hint = stubbed.get(name).cloned();
        let mut linked = if hint.is_some() {
            Some(linker.instance(name)?)
        } else {
            None
        };
        for (export, item) in instance.exports(engine) {
            match (item.ty, linked.as_mut()) {
                (ComponentItem::Resource(resource), Some(linked))
                    if !defined.contains(&resource) =>
                {
                    defined.push(resource);
                    linked.resource(export, ResourceType::host::<StubResource>(), |_, _| Ok(()))?;
                }
                (ComponentItem::Resource(resource), None) => defined.push(resource),
                (ComponentItem::ComponentFunc(_), Some(linked)) => {
                    let function = format!("{name}#{export}");
                    // `wasi:clocks/wall-clock@0.2.3#now` → `wasi:clocks/wall-clock#now`
                    let unversioned =
                        format!("{}#{export}", name.split('@').next().unwrap_or(name));
                    let hint = hint.clone().unwrap_or_default();
                    linked.func_new(export, move |store, _, params, results| {
                        if (!store.data().started() || startup::always_inert(&unversioned))
                            && let Some(answer) = startup::answer(&unversioned, params)
                            && answer.len() == results.len()
                        {
                            for (slot, value) in results.iter_mut().zip(answer) {
                                *slot = value;
                            }
                            return Ok(());
                        }
                        Err(Refused {
                            function: function.clone(),
                            hint: hint.clone(),
                        }
                        .into())
                    })?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}
