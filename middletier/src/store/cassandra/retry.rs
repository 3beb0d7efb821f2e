//! Which Cassandra errors are worth retrying, and how.
//!
//! *Transient* errors are the cluster being briefly unable to answer: no
//! connection in the pool, a broken connection, a node overloaded or still
//! bootstrapping, not enough replicas alive or answering in time. Those are
//! retried with exponential backoff and jitter (jitter, so that many
//! middletiers do not retry in lockstep). Everything else (bad CQL,
//! unauthorized, a driver or schema problem) would fail the same way again
//! and is returned at once. Our writes are idempotent (insert the same row,
//! delete a row), so retrying a write that timed out is safe.
//!
//! The crate is `backon`: maintained, small, async-first. `backoff`, the
//! older choice, is unmaintained (RUSTSEC-2025-0012).

use std::time::Duration;

use backon::ExponentialBuilder;
use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};

/// Whether another attempt might succeed.
pub fn is_transient(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_)
        | ExecutionError::EmptyPlan => true,
        ExecutionError::LastAttemptError(attempt) => attempt_is_transient(attempt),
        ExecutionError::PrepareError(PrepareError::ConnectionPoolError(_)) => true,
        ExecutionError::PrepareError(PrepareError::AllAttemptsFailed { first_attempt }) => {
            attempt_is_transient(first_attempt)
        }
        _ => false,
    }
}

fn attempt_is_transient(attempt: &RequestAttemptError) -> bool {
    match attempt {
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::TruncateError
                | DbError::ServerError
                | DbError::RateLimitReached { .. }
        ),
        _ => false,
    }
}

/// Per request: up to 2 retries, 50–200 ms apart (with jitter), so a
/// request that fails for good fails within a second or so, well inside the
/// edge's command timeouts.
pub fn per_request() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(200))
        .with_max_times(2)
        .with_jitter()
}

/// At start-up: wait for Cassandra for as long as it takes, 1 s growing to
/// 15 s between attempts, so `docker compose up` works in any start order.
pub fn startup() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(15))
        .without_max_times()
        .with_jitter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla::frame::types::Consistency;

    fn db(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "message".into()))
    }

    #[test]
    fn a_cluster_that_cannot_answer_now_is_retried() {
        assert!(is_transient(&ExecutionError::RequestTimeout(
            Duration::from_secs(1)
        )));
        assert!(is_transient(&ExecutionError::EmptyPlan));
        assert!(is_transient(&db(DbError::Overloaded)));
        assert!(is_transient(&db(DbError::IsBootstrapping)));
        assert!(is_transient(&db(DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1
        })));
        assert!(is_transient(&db(DbError::ReadTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            data_present: false
        })));
        assert!(is_transient(&ExecutionError::LastAttemptError(
            RequestAttemptError::UnableToAllocStreamId
        )));
    }

    #[test]
    fn a_request_that_would_fail_again_is_not() {
        for error in [
            DbError::SyntaxError,
            DbError::Invalid,
            DbError::Unauthorized,
            DbError::ConfigError,
            DbError::AuthenticationError,
        ] {
            assert!(!is_transient(&db(error.clone())), "{error:?}");
        }
        assert!(!is_transient(&ExecutionError::PrepareError(
            PrepareError::PreparedStatementIdsMismatch
        )));
    }
}
