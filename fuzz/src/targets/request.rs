//! Target `request`: one client text frame through the request parser
//! (`protocol::parse_request`), then every reply or push the session would
//! build from the result.

use ferrygate::protocol::{Frame, Request, parse_request};

use super::assert_json;

/// Request grammar: ops, fields and JSON edge cases.
pub(super) const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "false",
    "\"op\"",
    "\"id\"",
    "\"channel\"",
    "\"method\"",
    "\"data\"",
    "\"since\"",
    "\"epoch\"",
    "\"offset\"",
    "\"subscribe\"",
    "\"unsubscribe\"",
    "\"publish\"",
    "\"rpc\"",
    "\"ping\"",
    "1e999",
    "-0",
    "18446744073709551616",
    "0.5",
    "\"chat.lobby\"",
    "\"a.*\"",
    "\"a..b\"",
    "\u{feff}",
    "\u{0}",
    " ",
];

/// Parses `data` as a text frame; tungstenite hands the session only valid
/// UTF-8 (anything else closes the socket with 1007 before parsing).
pub fn request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (id, parsed) = parse_request(text);
    if let Some(id) = &id {
        assert_json("an `ok` reply", Frame::ok(id).as_str());
        assert_json("an rpc result", Frame::ok_with(id, "null").as_str());
    }
    match parsed {
        Ok(Request::Publish { channel, data }) => {
            assert_json("published data", data.get());
            assert_json("a push", Frame::push(&channel, data.get()).as_str());
        }
        Ok(Request::Subscribe { channel, .. } | Request::Unsubscribe { channel }) => {
            assert_json("a push", Frame::push(&channel, "null").as_str());
        }
        Ok(Request::Rpc { method, data }) => {
            if let Some(data) = data {
                assert_json("rpc data", data.get());
            }
            assert_json("an rpc push", Frame::push(&method, "null").as_str());
        }
        Ok(Request::Ping) => {}
        Ok(Request::Presence { channel, .. }) => {
            let data = ferrygate::presence::event_data("u", None);
            let frame = ferrygate::presence::event_frame(
                &channel,
                ferrygate::presence::EventKind::Join,
                &data,
            );
            assert_json("a join push", frame.as_str());
        }
        Ok(Request::Refresh { token }) => {
            // A token is arbitrary client text: any text quoted into a
            // frame (here as an `unsubscribed` reason) stays valid JSON.
            if let Ok(channel) = ferrygate::protocol::ChannelName::new("fuzz.refresh") {
                let frame = Frame::unsubscribed(&channel, &token);
                assert_json("an unsubscribed push", frame.as_str());
            }
        }
        Err(error) => assert_json("an error reply", Frame::error(id.as_ref(), &error).as_str()),
    }
}
