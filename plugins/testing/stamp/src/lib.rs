//! Test-only transform for hot-reload tests: adds `"stamp": STAMP` to object
//! payloads, where STAMP is fixed at build time from `FERRYGATE_STAMP`
//! (default `v1`), so two builds give two visibly different versions.

use ferrygate_sdk::{Message, NoConfig, Outcome, Result, Transform};

const STAMP: &str = match option_env!("FERRYGATE_STAMP") {
    Some(stamp) => stamp,
    None => "v1",
};

struct Stamp;

impl Transform for Stamp {
    type Config = NoConfig;

    fn transform(_: &NoConfig, message: Message) -> Result<Outcome> {
        let mut payload = message.json()?;
        let Some(object) = payload.as_object_mut() else {
            return Ok(Outcome::Keep(message.data));
        };
        object.insert("stamp".to_owned(), STAMP.into());
        Ok(Outcome::keep_json(&payload))
    }
}

ferrygate_sdk::export_transform!(Stamp);
