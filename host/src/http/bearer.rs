//! The one reader of `Authorization: Bearer <token>`, shared by `/ws`
//! (client tokens handed to the auth plugin) and `/v1/` (the API key), so
//! that both accept exactly the same spellings.
//!
//! The scheme is case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER`), and
//! spaces or tabs around and after it are skipped. Owns only the parsing; what
//! a token means is decided by its caller.

use axum::http::{HeaderMap, header};

/// The token of the first `Authorization` header if its scheme is `Bearer`
/// in any case; `None` without one, with another scheme, or with an empty
/// token.
pub(super) fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header value"));
        headers
    }

    #[test]
    fn any_case_of_the_scheme_is_bearer() {
        for value in [
            "Bearer k1",
            "bearer k1",
            "BEARER k1",
            "bEaReR \t k1 ",
            "  Bearer k1",
        ] {
            assert_eq!(token(&with(value)), Some("k1"), "{value:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_none() {
        for value in ["Basic azE6cA==", "Bearer", "Bearer   ", "Bearerk1", "k1"] {
            assert_eq!(token(&with(value)), None, "{value:?}");
        }
        assert_eq!(token(&HeaderMap::new()), None);
    }
}
