//! The pattern matcher and templates.

use super::{Captures, Pattern, Template};

fn pattern(text: &str) -> Pattern {
    Pattern::parse(text).expect("valid pattern")
}

#[test]
fn literal_patterns_match_exactly() {
    let lobby = pattern("chat.lobby");
    assert!(lobby.matches("chat.lobby"));
    assert!(!lobby.matches("chat.lobby.x"));
    assert!(!lobby.matches("chat"));
    assert!(!lobby.matches("chat.lobbyist"));
}

#[test]
fn star_matches_exactly_one_token() {
    let chat = pattern("chat.*");
    assert_eq!(
        chat.captures("chat.eu").map(|c| c.wildcards),
        Some(vec!["eu".to_owned()])
    );
    assert!(!chat.matches("chat"));
    assert!(!chat.matches("chat.eu.x"));
    assert!(!chat.matches("chat."));
    let middle = pattern("a.*.c");
    assert!(middle.matches("a.b.c"));
    assert!(!middle.matches("a.c"));
}

#[test]
fn rest_matches_one_or_more_tokens() {
    let user = pattern("user.>");
    assert_eq!(
        user.captures("user.ann.inbox").map(|c| c.wildcards),
        Some(vec!["ann.inbox".to_owned()])
    );
    assert!(user.matches("user.ann"));
    assert!(!user.matches("user"));
    assert!(!user.matches("users.ann"));
    assert!(pattern(">").matches("anything.at.all"));
}

#[test]
fn user_token_captures_the_owner() {
    let private = pattern("user.{user}.>");
    let captures = private.captures("user.ann.inbox").expect("matches");
    assert_eq!(captures.owner.as_deref(), Some("ann"));
    assert_eq!(captures.wildcards, vec!["inbox".to_owned()]);
    assert_eq!(private.wildcard_count(), 1);
    assert!(private.has_owner());
}

#[test]
fn bad_patterns_are_refused_with_a_reason() {
    for (text, reason) in [
        ("chat..x", "empty token"),
        ("", "empty token"),
        ("a.>.b", "'>' before its end"),
        ("a.b*", "wildcard inside a token"),
        ("{user}.{user}", "'{user}' twice"),
    ] {
        let error = Pattern::parse(text).expect_err(text);
        assert!(error.contains(reason), "{text}: {error}");
    }
}

#[test]
fn templates_fill_wildcards_and_user() {
    let template = Template::try_from("chat.{1}.{user}.{2}".to_owned()).expect("valid");
    assert_eq!(template.highest_wildcard(), 2);
    let captures = Captures {
        wildcards: vec!["eu".into(), "x.y".into()],
        owner: None,
    };
    assert_eq!(
        template.render(&captures, Some("ann")),
        Ok("chat.eu.ann.x.y".to_owned())
    );
    assert!(template.render(&captures, None).is_err());
    assert!(Template::try_from("chat.{0}".to_owned()).is_err());
    assert!(Template::try_from("chat.{one}".to_owned()).is_err());
    assert!(Template::try_from("chat.{1".to_owned()).is_err());
}
