//! The edge service: reader UI and JSON API (filled in by the edge issue).
#![forbid(unsafe_code)]
