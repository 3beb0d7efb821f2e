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

/// A page of the river, as both services read its query: `unread=true`,
/// `before=<item id>` (the `next` of the page before) and `limit=<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiverQuery {
    /// Only unread items.
    pub unread_only: bool,
    /// Only items older (a smaller id) than this one.
    pub before: Option<crate::api::ItemId>,
    /// Items on the page.
    pub limit: usize,
}

/// A river query that is not one, and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRiverQuery(String);

impl RiverQuery {
    /// Reads the query; `limit` is `default` when absent, and 1 to `max`.
    pub fn parse(query: Option<&str>, default: usize, max: usize) -> Result<Self, BadRiverQuery> {
        let unread_only = flag(query, "unread").map_err(|e| BadRiverQuery(e.to_string()))?;
        let before = param(query, "before")
            .map(|raw| {
                crate::api::ItemId::parse(&raw).map_err(|_| {
                    BadRiverQuery(format!(
                        "before={:?} is not an item id: use the `next` of the previous page",
                        raw.chars().take(30).collect::<String>()
                    ))
                })
            })
            .transpose()?;
        let limit = match param(query, "limit") {
            None => default,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    BadRiverQuery(format!(
                        "limit={:?} is not a number of items from 1 to {max}",
                        raw.chars().take(20).collect::<String>()
                    ))
                })?,
        };
        Ok(Self {
            unread_only,
            before,
            limit,
        })
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

    #[test]
    fn river_queries_parse_and_refuse_with_the_fix() {
        let page = RiverQuery::parse(Some("unread=true&before=12&limit=3"), 50, 200).unwrap();
        assert!(page.unread_only);
        assert_eq!(
            (page.before, page.limit),
            (Some(crate::api::ItemId::new(12)), 3)
        );
        let page = RiverQuery::parse(None, 50, 200).unwrap();
        assert_eq!(
            (page.unread_only, page.before, page.limit),
            (false, None, 50)
        );
        let e = RiverQuery::parse(Some("before=abc"), 50, 200).unwrap_err();
        assert!(e.to_string().contains("next"), "{e}");
        let e = RiverQuery::parse(Some("limit=0"), 50, 200).unwrap_err();
        assert!(e.to_string().contains("1 to 200"), "{e}");
        assert!(RiverQuery::parse(Some("limit=201"), 50, 200).is_err());
        assert!(RiverQuery::parse(Some("unread=maybe"), 50, 200).is_err());
    }
}
