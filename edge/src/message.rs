//! The page for a message and nothing else: what a refused form post
//! gets (see [`crate::error`]), and the sentence form every message
//! shown to a person takes.

use askama::Template;
use askama_web::WebTemplate;

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    title: &'static str,
    text: String,
}

/// A page with one message: what a refused form post gets (see
/// [`crate::error`]).
pub(crate) fn message_page(title: &'static str, text: &str) -> MessagePage {
    MessagePage {
        title,
        text: sentence(text),
    }
}

/// Capitalizes the first letter and ends with a full stop.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("not saved: the feed service is busy"),
            "Not saved: the feed service is busy."
        );
        assert_eq!(sentence("Done."), "Done.");
    }
}
