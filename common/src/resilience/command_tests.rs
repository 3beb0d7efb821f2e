//! The command shell, driven with tokio's paused clock: time moves only when
//! the test advances it, so there are no sleeps and no flakiness.

use std::sync::atomic::AtomicUsize;

use super::*;

fn settings() -> CommandSettings {
    CommandSettings::new("Test", "Tests", Duration::from_secs(1))
}

async fn ok(command: &Command) -> Result<&'static str, CommandError<String>> {
    command
        .execute(|_| async { Ok::<_, Failure<String>>("ok") })
        .await
}

async fn fail(command: &Command) -> Result<&'static str, CommandError<String>> {
    command
        .execute(|_| async { Err::<&str, _>(Failure::Error("boom".to_owned())) })
        .await
}

#[tokio::test(start_paused = true)]
async fn successes_pass_through_and_are_counted() {
    let command = Command::new(settings());
    assert_eq!(ok(&command).await.unwrap(), "ok");
    let snapshot = command.snapshot();
    assert_eq!(snapshot.counts.get(Event::Success), 1);
    assert_eq!(snapshot.health.total, 1);
    assert!(!snapshot.is_open);
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_times_out_at_the_deadline_it_was_given() {
    let command = Command::new(settings());
    let seen_deadline = Arc::new(Mutex::new(None));
    let seen = seen_deadline.clone();
    let started = Instant::now();
    let result: Result<(), _> = command
        .execute(|deadline| async move {
            *seen.lock().unwrap() = Some(deadline);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Failure<String>>(())
        })
        .await;
    assert!(matches!(result, Err(CommandError::Timeout(_))));
    assert_eq!(
        *seen_deadline.lock().unwrap(),
        Some(started + Duration::from_secs(1))
    );
    assert_eq!(
        Instant::now() - started,
        Duration::from_secs(1),
        "gave up exactly at the timeout"
    );
    assert_eq!(command.snapshot().counts.get(Event::Timeout), 1);
}

#[tokio::test(start_paused = true)]
async fn bad_requests_pass_through_without_tripping_or_falling_back() {
    let command = Command::new(settings());
    for _ in 0..50 {
        let result = command
            .execute_or(
                |_| async { Err::<&str, _>(Failure::BadRequest("your fault".to_owned())) },
                |_| Some("fallback"),
            )
            .await;
        assert!(matches!(result, Err(CommandError::BadRequest(ref m)) if m == "your fault"));
    }
    let snapshot = command.snapshot();
    assert!(!snapshot.is_open);
    assert_eq!(snapshot.counts.get(Event::BadRequest), 50);
    assert_eq!(snapshot.counts.get(Event::FallbackSuccess), 0);
    assert_eq!(snapshot.health.total, 0);
}

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_when_the_work_fails() {
    let command = Command::new(settings());
    let result = command
        .execute_or(
            |_| async { Err::<&str, _>(Failure::Error("down".to_owned())) },
            |_| Some("saved copy"),
        )
        .await
        .unwrap();
    assert!(matches!(
        result,
        Outcome::Fallback("saved copy", CommandError::Error(_))
    ));
    let none = command
        .execute_or(
            |_| async { Err::<&str, _>(Failure::Error("down".to_owned())) },
            |_| None,
        )
        .await;
    assert!(matches!(none, Err(CommandError::Error(_))));
    let counts = command.snapshot().counts;
    assert_eq!(
        (
            counts.get(Event::FallbackSuccess),
            counts.get(Event::FallbackFailure)
        ),
        (1, 1)
    );
    assert!(fail(&command).await.is_err());
    assert_eq!(command.snapshot().counts.get(Event::FallbackMissing), 1);
}

#[tokio::test(start_paused = true)]
async fn closed_open_half_open_closed() {
    let command = Command::new(settings());
    for _ in 0..20 {
        assert!(matches!(fail(&command).await, Err(CommandError::Error(_))));
    }
    assert!(
        command.snapshot().is_open,
        "20 failures of 20 open the breaker"
    );

    // Open: the work is not even started.
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let calls = calls.clone();
        let result = command
            .execute(|_| async move {
                calls.fetch_add(1, Ordering::Relaxed);
                Ok::<_, Failure<String>>(())
            })
            .await;
        assert!(matches!(result, Err(CommandError::ShortCircuited)));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert_eq!(command.snapshot().counts.get(Event::ShortCircuited), 5);

    // After the sleep window one trial goes through; it succeeds; closed.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(ok(&command).await.unwrap(), "ok");
    let snapshot = command.snapshot();
    assert_eq!(snapshot.state, State::Closed);
    assert_eq!(
        snapshot.health.total, 0,
        "statistics start afresh when the breaker closes"
    );
    assert_eq!(ok(&command).await.unwrap(), "ok");
}

#[tokio::test(start_paused = true)]
async fn half_open_failure_reopens() {
    let command = Command::new(settings());
    for _ in 0..20 {
        let _ = fail(&command).await;
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(
        matches!(fail(&command).await, Err(CommandError::Error(_))),
        "the trial runs and fails"
    );
    assert!(matches!(command.snapshot().state, State::Open { .. }));
    assert!(matches!(
        ok(&command).await,
        Err(CommandError::ShortCircuited)
    ));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(ok(&command).await.unwrap(), "ok");
    assert_eq!(command.snapshot().state, State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_rejects_at_once() {
    let command = Command::new(CommandSettings {
        max_concurrent: 2,
        ..settings()
    });
    let release = Arc::new(tokio::sync::Notify::new());
    let mut busy = Vec::new();
    for _ in 0..2 {
        let (command, release) = (command.clone(), release.clone());
        busy.push(tokio::spawn(async move {
            command
                .execute(|_| async move {
                    release.notified().await;
                    Ok::<_, Failure<String>>(())
                })
                .await
        }));
    }
    tokio::task::yield_now().await;
    assert_eq!(command.snapshot().concurrent, 2);
    let started = Instant::now();
    assert!(matches!(ok(&command).await, Err(CommandError::Rejected)));
    assert_eq!(Instant::now(), started, "rejection does not wait");
    release.notify_waiters();
    for task in busy {
        task.await.unwrap().unwrap();
    }
    let snapshot = command.snapshot();
    assert_eq!(snapshot.counts.get(Event::Rejected), 1);
    assert_eq!(snapshot.concurrent, 0);
    assert_eq!(snapshot.rolling_max_concurrent, 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_caller_left_holds_its_slot_until_it_ends_and_is_recorded() {
    let command = Command::new(CommandSettings {
        max_concurrent: 1,
        ..settings()
    });
    let pending = command.execute(|_| std::future::pending::<Result<(), Failure<String>>>());
    let _ = tokio::time::timeout(Duration::from_millis(10), pending).await;
    // The caller is gone; the call is not: it still holds the bulkhead.
    assert_eq!(command.snapshot().concurrent, 1);
    assert!(matches!(ok(&command).await, Err(CommandError::Rejected)));
    // At its timeout it ends, is recorded, and frees its slot.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let snapshot = command.snapshot();
    assert_eq!(snapshot.concurrent, 0);
    assert_eq!(snapshot.counts.get(Event::Timeout), 1);
    assert_eq!(ok(&command).await.unwrap(), "ok");
}

#[tokio::test(start_paused = true)]
async fn callers_who_give_up_early_still_open_the_breaker_on_a_slow_dependency() {
    let command = Command::new(CommandSettings {
        max_concurrent: 100,
        ..CommandSettings::new("Test", "Tests", Duration::from_secs(10))
    });
    // A dependency slower than every caller's patience: each of twenty
    // callers gives up after 100 ms, long before the command's 10 s timeout.
    for _ in 0..20 {
        let slow = command.execute(|_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Failure<String>>(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow)
                .await
                .is_err()
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let snapshot = command.snapshot();
    assert_eq!(
        snapshot.counts.get(Event::Timeout),
        20,
        "every call was recorded"
    );
    assert!(snapshot.is_open, "and the breaker opened");
}

#[tokio::test(start_paused = true)]
async fn a_slow_trial_is_the_only_call_let_through_until_it_ends() {
    // RSSGet's shape: a 10 s timeout, longer than the 5 s sleep window.
    let command = Command::new(CommandSettings::new(
        "Test",
        "Tests",
        Duration::from_secs(10),
    ));
    for _ in 0..20 {
        let _ = fail(&command).await;
    }
    assert!(command.snapshot().is_open);
    tokio::time::advance(Duration::from_secs(5)).await;
    let trial = tokio::spawn({
        let command = command.clone();
        async move {
            command
                .execute(|_| async {
                    tokio::time::sleep(Duration::from_secs(8)).await;
                    Ok::<_, Failure<String>>(())
                })
                .await
        }
    });
    tokio::task::yield_now().await;
    // Another sleep window passes while the trial is still running.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        matches!(ok(&command).await, Err(CommandError::ShortCircuited)),
        "a second trial while the first still runs"
    );
    trial.await.unwrap().unwrap();
    assert_eq!(command.snapshot().state, State::Closed);
}

#[tokio::test(start_paused = true)]
async fn latencies_are_reported_as_percentiles() {
    let command = Command::new(settings());
    for ms in 1..=100u64 {
        command
            .execute(move |_| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, Failure<String>>(())
            })
            .await
            .unwrap();
    }
    let latency = command.snapshot().latency_execute;
    assert_eq!(latency.at(50.0), 50.0);
    assert_eq!(latency.at(99.0), 99.0);
    assert_eq!(latency.at(100.0), 100.0);
    assert!((latency.mean - 50.5).abs() < 0.01);
}
