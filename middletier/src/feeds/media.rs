//! Images for the edge's media proxy: fetched like feeds (the address
//! guard, the size cap, the timeouts, the fetch slots), and passed on only
//! when they are what an article shows.
//!
//! A page that showed an article's images straight from their publishers
//! would tell each publisher who reads what, when, and from where, and
//! would need a CSP open to every host. Instead the edge rewrites every
//! image to itself, and asks here. What comes back is checked
//! ([`check`], pure): an `image/*` type other than SVG (SVG is a document
//! that can carry scripts), and not a 1×1 tracking pixel.

use bytes::Bytes;
use common::api::UserId;
use url::Url;

use super::fetch::{self, FetchError, Fetched, Validators};
use super::{Feeds, FetchOnSlotError};

/// An image ready to pass on.
#[derive(Debug, Clone)]
pub struct Media {
    /// The image's bytes, at most the feed size cap.
    pub bytes: Bytes,
    /// Its media type, e.g. `image/png`.
    pub media_type: String,
}

/// Why an image is not passed on. Messages are for the person who opens
/// the image's address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The fetch failed.
    #[error("the image could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    /// Not an image we show.
    #[error(
        "not an image the reader shows (its type is {0}); open the article's original to see it"
    )]
    NotAnImage(String),
    /// A 1×1 image: a tracker, not content.
    #[error("a 1×1 tracking image; the reader drops these")]
    Tracker,
    /// A bug; logged.
    #[error("the image could not be fetched because of an internal error")]
    Internal,
}

impl Feeds {
    /// Fetches the image at `url` for `user` (on their fetch slots) and
    /// checks it.
    pub async fn media(&self, url: &Url, user: Option<&UserId>) -> Result<Media, MediaError> {
        let fetched = self.fetch_on_slot(url, &Validators::default(), user).await;
        let outcome = match fetched {
            Ok(Fetched::Body {
                bytes,
                content_type,
                ..
            }) => {
                check(&bytes, content_type.as_deref()).map(|media_type| Media { bytes, media_type })
            }
            Ok(Fetched::NotModified { .. }) => Err(MediaError::Internal),
            Err(FetchOnSlotError::Fetch(e)) => Err(e.into()),
            Err(FetchOnSlotError::Closed) => Err(MediaError::Internal),
        };
        let label = match &outcome {
            Ok(_) => "ok",
            Err(MediaError::Fetch(e)) => e.kind(),
            Err(MediaError::NotAnImage(_)) => "not_an_image",
            Err(MediaError::Tracker) => "tracker",
            Err(MediaError::Internal) => "internal",
        };
        metrics::counter!("media_fetches_total", "outcome" => label).increment(1);
        outcome
    }
}

/// What an answer is, if it is an image to show: its media type.
pub fn check(bytes: &[u8], content_type: Option<&str>) -> Result<String, MediaError> {
    let media_type = content_type.map(fetch::media_type).unwrap_or_default();
    if !media_type.starts_with("image/") || media_type.contains("svg") {
        let shown = if media_type.is_empty() {
            "not given".to_owned()
        } else {
            media_type.chars().take(60).collect()
        };
        return Err(MediaError::NotAnImage(shown));
    }
    if imagesize::blob_size(bytes).is_ok_and(|size| size.width <= 1 && size.height <= 1) {
        return Err(MediaError::Tracker);
    }
    Ok(media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest GIF: 1×1, the classic tracking pixel.
    const PIXEL_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

    fn gif(width: u16, height: u16) -> Vec<u8> {
        let mut gif = PIXEL_GIF.to_vec();
        gif[6..8].copy_from_slice(&width.to_le_bytes());
        gif[8..10].copy_from_slice(&height.to_le_bytes());
        gif
    }

    #[test]
    fn images_pass_with_their_type() {
        assert_eq!(
            check(&gif(64, 48), Some("image/GIF; charset=binary")).unwrap(),
            "image/gif"
        );
    }

    #[test]
    fn anything_else_is_refused_with_its_type() {
        let e = check(b"<html>", Some("text/html")).unwrap_err();
        assert_eq!(e, MediaError::NotAnImage("text/html".into()));
        assert!(e.to_string().contains("text/html"), "{e}");
        assert!(matches!(
            check(&gif(9, 9), None),
            Err(MediaError::NotAnImage(_))
        ));
        assert!(
            matches!(
                check(b"<svg/>", Some("image/svg+xml")),
                Err(MediaError::NotAnImage(_))
            ),
            "SVG can carry scripts"
        );
    }

    #[test]
    fn one_by_one_pixels_are_trackers() {
        assert_eq!(
            check(PIXEL_GIF, Some("image/gif")),
            Err(MediaError::Tracker)
        );
        assert!(
            check(&gif(1, 20), Some("image/gif")).is_ok(),
            "a rule is content"
        );
    }
}
