//! The redaction rules, run natively against `JsonRedact::transform`.

use ferrygate_sdk::{Direction, Message, Outcome, Transform, parse_config};

use super::{Config, JsonRedact};

fn redact(config: &str, data: &str) -> Outcome {
    let config: Config = parse_config(config).expect("test config parses");
    let message = Message {
        direction: Direction::Inbound,
        channel: "chat.lobby".into(),
        connection: None,
        data: data.into(),
    };
    JsonRedact::transform(&config, message).expect("transform succeeds")
}

fn keep(json: &str) -> Outcome {
    let value: ferrygate_sdk::serde_json::Value =
        ferrygate_sdk::serde_json::from_str(json).expect("valid json");
    Outcome::keep_json(&value)
}

#[test]
fn removes_top_level_and_nested_fields() {
    let outcome = redact(
        r#"{"remove":["/card","/user/ssn"]}"#,
        r#"{"card":"4111","user":{"name":"ann","ssn":"123"},"text":"hi"}"#,
    );
    assert_eq!(outcome, keep(r#"{"user":{"name":"ann"},"text":"hi"}"#));
}

#[test]
fn masks_with_the_default_and_a_configured_string() {
    let outcome = redact(r#"{"mask":["/email"]}"#, r#"{"email":"a@b.c","n":1}"#);
    assert_eq!(outcome, keep(r#"{"email":"***","n":1}"#));
    let outcome = redact(
        r#"{"mask":["/email"],"mask_with":"[hidden]"}"#,
        r#"{"email":"a@b.c"}"#,
    );
    assert_eq!(outcome, keep(r#"{"email":"[hidden]"}"#));
}

#[test]
fn handles_arrays_and_escaped_keys() {
    let outcome = redact(
        r#"{"remove":["/items/0"],"mask":["/a~1b","/t~0k"]}"#,
        r#"{"items":[1,2],"a/b":"x","t~k":"y"}"#,
    );
    assert_eq!(outcome, keep(r#"{"items":[2],"a/b":"***","t~k":"***"}"#));
}

#[test]
fn missing_fields_leave_the_text_untouched() {
    let data = r#"{ "text" : "spacing kept" }"#;
    assert_eq!(
        redact(r#"{"remove":["/card"],"mask":["/x/y"]}"#, data),
        Outcome::Keep(data.into())
    );
}

#[test]
fn scalars_pass_unchanged() {
    for data in [r#""a string""#, "42", "null", "true"] {
        assert_eq!(
            redact(r#"{"remove":["/card"]}"#, data),
            Outcome::Keep(data.into())
        );
    }
}

#[test]
fn bad_config_is_named() {
    let error = parse_config::<Config>(r#"{"remove":["card"]}"#).expect_err("relative pointer");
    assert!(
        error
            .message()
            .contains(r#"JSON pointer "card" must start with '/'"#),
        "{error}"
    );
    let error = parse_config::<Config>(r#"{"redact":["/card"]}"#).expect_err("unknown key");
    assert!(
        error.message().contains("unknown field `redact`"),
        "{error}"
    );
}
