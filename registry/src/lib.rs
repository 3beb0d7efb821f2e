//! The Eureka-compatible service registry (filled in by the registry issue).
#![forbid(unsafe_code)]
