//! The one rule for the query parameters of `/v1` endpoints: each key the
//! endpoint names at most once, no other key. A repeated parameter
//! (`?limit=2&limit=3`) or an unknown one is a 400 `bad_request`, never a
//! silent pick of one value.
//!
//! Owns only the parsing of the query string; what a value means is the
//! endpoint's.

/// The values of `known` keys in `raw` (the query string, percent-decoded),
/// in the order of `known`; `None` for a key that is absent. The error
/// (the 400's message) names a repeated or unknown key.
pub(super) fn single<const N: usize>(
    raw: Option<&str>,
    known: [&str; N],
) -> Result<[Option<String>; N], String> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let Some(at) = known.iter().position(|k| *k == key) else {
            return Err(format!(
                "unknown query parameter `{key}`; expected {}",
                known.join(", ")
            ));
        };
        if values[at].replace(value.into_owned()).is_some() {
            return Err(format!("query parameter `{key}` given more than once"));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_once_and_no_other() {
        let known = ["limit", "cursor"];
        assert_eq!(single(None, known), Ok([None, None]));
        assert_eq!(
            single(Some("cursor=a%20b&limit=2"), known),
            Ok([Some("2".to_owned()), Some("a b".to_owned())])
        );
        let repeated = single(Some("limit=2&limit=3"), known).expect_err("repeated");
        assert!(
            repeated.contains("`limit` given more than once"),
            "{repeated}"
        );
        let empty_twice = single(Some("cursor=&cursor="), known).expect_err("repeated, empty");
        assert!(empty_twice.contains("`cursor`"), "{empty_twice}");
        let unknown = single(Some("limit=2&page=1"), known).expect_err("unknown");
        assert!(
            unknown.contains("unknown query parameter `page`"),
            "{unknown}"
        );
    }
}
