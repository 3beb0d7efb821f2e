//! The Hystrix metrics-stream format, so the real Hystrix Dashboard and
//! Turbine can read our commands.
//!
//! Each interval, a stream sends one `HystrixCommand` event per command and
//! one `HystrixThreadPool` event per bulkhead, as JSON in Server-Sent
//! Events (`data: {...}`), with the field names Hystrix's own servlet
//! writes. Our bulkheads are semaphores (Hystrix's `SEMAPHORE` isolation);
//! each is reported as a pool of its size named after its command, so
//! dashboards show its use.

use serde_json::{Map, Value, json};

use super::command::{Percentiles, Snapshot};
use super::window::Event;

/// `{"type": "HystrixCommand", ...}` for one command.
pub fn command_event(snapshot: &Snapshot, now_ms: u64) -> Value {
    let settings = &snapshot.settings;
    let count = |event| snapshot.counts.get(event);
    json!({
        "type": "HystrixCommand",
        "name": settings.name,
        "group": settings.group,
        "currentTime": now_ms,
        "isCircuitBreakerOpen": snapshot.is_open,
        "errorPercentage": snapshot.health.error_percentage,
        "errorCount": snapshot.health.errors,
        "requestCount": snapshot.health.total,
        "rollingCountBadRequests": count(Event::BadRequest),
        "rollingCountCollapsedRequests": 0,
        "rollingCountEmit": 0,
        "rollingCountExceptionsThrown": count(Event::FallbackFailure) + count(Event::FallbackMissing),
        "rollingCountFailure": count(Event::Failure),
        "rollingCountFallbackEmit": 0,
        "rollingCountFallbackFailure": count(Event::FallbackFailure),
        "rollingCountFallbackMissing": count(Event::FallbackMissing),
        "rollingCountFallbackRejection": 0,
        "rollingCountFallbackSuccess": count(Event::FallbackSuccess),
        "rollingCountResponsesFromCache": 0,
        "rollingCountSemaphoreRejected": count(Event::Rejected),
        "rollingCountShortCircuited": count(Event::ShortCircuited),
        "rollingCountSuccess": count(Event::Success),
        "rollingCountThreadPoolRejected": 0,
        "rollingCountTimeout": count(Event::Timeout),
        "currentConcurrentExecutionCount": snapshot.concurrent,
        "rollingMaxConcurrentExecutionCount": snapshot.rolling_max_concurrent,
        "latencyExecute_mean": snapshot.latency_execute.mean.round() as u64,
        "latencyExecute": percentiles(&snapshot.latency_execute),
        "latencyTotal_mean": snapshot.latency_total.mean.round() as u64,
        "latencyTotal": percentiles(&snapshot.latency_total),
        "propertyValue_circuitBreakerRequestVolumeThreshold": settings.breaker.volume_threshold,
        "propertyValue_circuitBreakerSleepWindowInMilliseconds": settings.breaker.sleep_window.as_millis() as u64,
        "propertyValue_circuitBreakerErrorThresholdPercentage": settings.breaker.error_threshold_percentage,
        "propertyValue_circuitBreakerForceOpen": false,
        "propertyValue_circuitBreakerForceClosed": false,
        "propertyValue_circuitBreakerEnabled": settings.breaker.enabled,
        "propertyValue_executionIsolationStrategy": "SEMAPHORE",
        "propertyValue_executionIsolationThreadTimeoutInMilliseconds": settings.timeout.as_millis() as u64,
        "propertyValue_executionTimeoutInMilliseconds": settings.timeout.as_millis() as u64,
        "propertyValue_executionIsolationThreadInterruptOnTimeout": true,
        "propertyValue_executionIsolationThreadPoolKeyOverride": Value::Null,
        "propertyValue_executionIsolationSemaphoreMaxConcurrentRequests": settings.max_concurrent,
        "propertyValue_fallbackIsolationSemaphoreMaxConcurrentRequests": settings.max_concurrent,
        "propertyValue_metricsRollingStatisticalWindowInMilliseconds": settings.window.as_millis() as u64,
        "propertyValue_requestCacheEnabled": false,
        "propertyValue_requestLogEnabled": false,
        "reportingHosts": 1,
        "threadPool": settings.name,
    })
}

/// `{"type": "HystrixThreadPool", ...}` for one command's bulkhead.
pub fn thread_pool_event(snapshot: &Snapshot, now_ms: u64) -> Value {
    let settings = &snapshot.settings;
    let executed = snapshot.counts.get(Event::Success)
        + snapshot.counts.get(Event::Failure)
        + snapshot.counts.get(Event::Timeout)
        + snapshot.counts.get(Event::BadRequest);
    json!({
        "type": "HystrixThreadPool",
        "name": settings.name,
        "currentTime": now_ms,
        "currentActiveCount": snapshot.concurrent,
        "currentCompletedTaskCount": executed,
        "currentCorePoolSize": settings.max_concurrent,
        "currentLargestPoolSize": snapshot.rolling_max_concurrent,
        "currentMaximumPoolSize": settings.max_concurrent,
        "currentPoolSize": settings.max_concurrent,
        "currentQueueSize": 0,
        "currentTaskCount": executed + u64::from(snapshot.concurrent),
        "rollingCountThreadsExecuted": executed,
        "rollingMaxActiveThreads": snapshot.rolling_max_concurrent,
        "rollingCountCommandRejections": snapshot.counts.get(Event::Rejected),
        "propertyValue_queueSizeRejectionThreshold": 0,
        "propertyValue_metricsRollingStatisticalWindowInMilliseconds": settings.window.as_millis() as u64,
        "reportingHosts": 1,
    })
}

/// Hystrix reports whole milliseconds, keyed "0", "25", ..., "99.5", "100".
fn percentiles(p: &Percentiles) -> Value {
    let mut map = Map::new();
    for (point, value) in p.values {
        let key = if point.fract() == 0.0 {
            format!("{}", point as u64)
        } else {
            format!("{point}")
        };
        map.insert(key, json!(value.round() as u64));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::command::{Command, CommandSettings};
    use std::time::Duration;

    #[tokio::test]
    async fn a_new_command_reports_every_field_the_dashboard_reads() {
        let command = Command::new(CommandSettings::new(
            "RSSGet",
            "RSS",
            Duration::from_secs(10),
        ));
        let event = command_event(&command.snapshot(), 1_700_000_000_000);
        for field in [
            "type",
            "name",
            "group",
            "currentTime",
            "isCircuitBreakerOpen",
            "errorPercentage",
            "errorCount",
            "requestCount",
            "rollingCountSuccess",
            "rollingCountFailure",
            "rollingCountTimeout",
            "rollingCountShortCircuited",
            "rollingCountSemaphoreRejected",
            "rollingCountThreadPoolRejected",
            "rollingCountFallbackSuccess",
            "rollingCountFallbackFailure",
            "rollingCountBadRequests",
            "currentConcurrentExecutionCount",
            "rollingMaxConcurrentExecutionCount",
            "latencyExecute_mean",
            "latencyExecute",
            "latencyTotal_mean",
            "latencyTotal",
            "propertyValue_circuitBreakerRequestVolumeThreshold",
            "propertyValue_circuitBreakerSleepWindowInMilliseconds",
            "propertyValue_circuitBreakerErrorThresholdPercentage",
            "propertyValue_executionIsolationStrategy",
            "propertyValue_executionTimeoutInMilliseconds",
            "propertyValue_metricsRollingStatisticalWindowInMilliseconds",
            "reportingHosts",
            "threadPool",
        ] {
            assert!(event.get(field).is_some(), "{field} missing");
        }
        assert_eq!(event["type"], "HystrixCommand");
        assert_eq!(event["name"], "RSSGet");
        assert_eq!(event["isCircuitBreakerOpen"], false);
        assert_eq!(
            event["propertyValue_executionTimeoutInMilliseconds"],
            10_000
        );
        let keys: Vec<&String> = event["latencyExecute"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["0", "25", "50", "75", "90", "95", "99", "99.5", "100"]
        );

        let pool = thread_pool_event(&command.snapshot(), 1);
        assert_eq!(pool["type"], "HystrixThreadPool");
        assert_eq!(pool["name"], "RSSGet");
        assert_eq!(pool["currentMaximumPoolSize"], 10);
    }
}
