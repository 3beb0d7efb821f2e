//! Query strings, read the one way both services read them: a parameter
//! is percent-decoded, and the first wins when it is repeated.

/// One query parameter, decoded (the first, if repeated).
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A boolean parameter that is neither true nor false.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not a boolean; use {name}=true or {name}=false")]
pub struct NotABoolean {
    /// The parameter.
    pub name: String,
    /// What it was (at most 20 characters of it).
    pub value: String,
}

/// A boolean parameter: absent, empty, `false` or `0` is false; `true`
/// or `1` is true; anything else is refused.
pub fn flag(query: Option<&str>, name: &str) -> Result<bool, NotABoolean> {
    match param(query, name).as_deref() {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(NotABoolean {
            name: name.to_owned(),
            value: other.chars().take(20).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_and_the_first_wins() {
        let q = Some("url=https%3A%2F%2Fa.example%2F&url=second&e=");
        assert_eq!(param(q, "url").as_deref(), Some("https://a.example/"));
        assert_eq!(param(q, "e").as_deref(), Some(""));
        assert_eq!(param(q, "missing"), None);
        assert_eq!(param(None, "url"), None);
    }

    #[test]
    fn flags_are_true_false_or_refused_with_the_fix() {
        assert_eq!(flag(Some("unread=true"), "unread"), Ok(true));
        assert_eq!(flag(Some("unread=1"), "unread"), Ok(true));
        assert_eq!(flag(Some("unread=0"), "unread"), Ok(false));
        assert_eq!(flag(None, "unread"), Ok(false));
        let refused = flag(Some("unread=maybe"), "unread").unwrap_err();
        assert!(refused.to_string().contains("unread=true"), "{refused}");
    }
}
