//! One request across the stack, as OpenTelemetry traces: the real
//! binaries export OTLP over HTTP to a receiver in this test process
//! (`support::otlp`, decoding with `opentelemetry-proto`), and we check the
//! trace's shape: edge request → command → attempt → middletier request →
//! store operation. Real processes, because the exporter is configured
//! from each process's environment, as in production.

// Tests fail loudly on surprises; helpers outside #[test] fns too.

use std::time::Duration;

use crate::support::eventually;
use crate::support::otlp::{CLIENT, Received, Receiver, SERVER, STATUS_ERROR};
use crate::support::stack::Stack;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Exports to `receiver`, in batches sent every 100 ms rather than 5 s.
fn exporting_to(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

async fn start(middletiers: usize, env: &[(&'static str, String)]) -> Stack {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Stack::start_with_env(vec![Vec::new(); middletiers], &[], &env).await
}

/// `GET /api/subscriptions` from a caller that traces already, in its
/// trace `trace_id`.
async fn read_in_trace(edge: &str, trace_id: &str, parent: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{edge}/api/subscriptions"))
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .send()
        .await
        .unwrap()
        .status()
}

fn one<'a>(spans: &'a [Received], what: &str, test: impl Fn(&Received) -> bool) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|s| test(s)).collect();
    assert_eq!(found.len(), 1, "expected one {what} in {spans:#?}");
    found[0]
}

/// Whether `span` descends from the span `ancestor` within `spans`.
fn descends_from(spans: &[Received], span: &Received, ancestor: &str) -> bool {
    let mut parent = span.parent_id.clone();
    for _ in 0..spans.len() {
        if parent == ancestor {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(up) => parent = up.parent_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn one_request_through_the_edge_is_one_trace_across_the_stack() {
    let receiver = Receiver::start().await;
    let stack = start(2, &exporting_to(&receiver)).await;
    let edge = stack.edge.url("");
    let added = reqwest::Client::new()
        .post(format!("{edge}/api/subscriptions"))
        .json(&json!({"url": stack.feeds.url("/fixtures/rss2.xml")}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);

    // A caller (a proxy, a browser extension) that traces already: the
    // edge starts a trace of its own, linked to the caller's, since anyone
    // may send a traceparent.
    let (caller_trace, caller) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    assert_eq!(
        read_in_trace(&edge, caller_trace, caller).await,
        StatusCode::OK
    );
    let trace = eventually("the edge's trace", Duration::from_secs(20), || {
        let found = receiver.trace_linked_to(caller_trace);
        async move { found }
    })
    .await;
    let trace = trace.as_str();
    assert_ne!(
        trace, caller_trace,
        "the caller does not choose the trace id"
    );
    let spans = eventually("the whole trace arrives", Duration::from_secs(20), || {
        let spans = receiver.trace(trace);
        let complete = spans
            .iter()
            .any(|s| s.service == "edge" && s.kind == SERVER)
            && spans
                .iter()
                .any(|s| s.service == "middletier" && s.name.starts_with("store "));
        async move { complete.then_some(spans) }
    })
    .await;

    let request = one(&spans, "edge request span", |s| {
        s.service == "edge" && s.kind == SERVER
    });
    assert_eq!(request.name, "GET /api/subscriptions");
    assert_eq!(request.parent_id, "", "the edge's span is the trace's root");
    assert_eq!(
        request.links,
        [(caller_trace.to_owned(), caller.to_owned())],
        "the caller's span is linked, for correlation"
    );
    assert_eq!(request.attr("http.response.status_code"), Some("200"));

    let command = one(&spans, "RSSGet command span", |s| s.name == "RSSGet");
    assert_eq!(command.parent_id, request.span_id);
    assert_eq!(command.attr("breaker"), Some("closed"));
    assert_eq!(command.attr("event"), Some("success"));

    let attempt = one(&spans, "attempt span", |s| s.name == "middletier attempt");
    assert_eq!(attempt.kind, CLIENT);
    assert_eq!(attempt.parent_id, command.span_id);
    assert_eq!(attempt.attr("outcome"), Some("ok"));
    let instance = attempt.attr("instance.id").unwrap();
    assert!(instance.contains("middletier"), "{instance}");

    let served = one(&spans, "middletier request span", |s| {
        s.service == "middletier" && s.kind == SERVER
    });
    assert_eq!(served.name, "GET /middletier/rss/user/{user}");
    assert_eq!(
        served.parent_id, attempt.span_id,
        "traceparent went from the attempt to the middletier"
    );

    let store: Vec<&Received> = spans
        .iter()
        .filter(|s| s.service == "middletier" && s.name.starts_with("store "))
        .collect();
    assert!(!store.is_empty());
    for op in &store {
        assert!(descends_from(&spans, op, &served.span_id), "{op:#?}");
        assert!(op.attr("db.system.name").is_some(), "{op:#?}");
    }
    assert!(
        spans.iter().all(|s| s.trace_id == trace),
        "one trace, as asked for"
    );

    // The subscribe fetched the feed while checking it: a fetch span with
    // its status and size, in the subscribe's trace.
    let fetch = eventually("the feed fetch span", Duration::from_secs(10), || {
        let found = receiver
            .spans()
            .into_iter()
            .find(|s| s.name == "feed fetch" && s.attr("bytes").is_some());
        async move { found }
    })
    .await;
    assert_eq!(fetch.attr("http.response.status_code"), Some("200"));
    assert_eq!(fetch.attr("not_modified"), Some("false"));
    let subscribe_trace = receiver.trace(&fetch.trace_id);
    assert!(
        subscribe_trace
            .iter()
            .any(|s| s.service == "edge" && s.name == "POST /api/subscriptions"),
        "the fetch is part of the subscribe's trace: {subscribe_trace:#?}"
    );
}

#[tokio::test]
async fn a_retry_onto_a_second_instance_is_two_attempts_in_one_trace() {
    let receiver = Receiver::start().await;
    let stack = start(1, &exporting_to(&receiver)).await;
    // An instance that is registered but refuses connections: the balancer
    // tries it, then the next one, within one command.
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let record = json!({"instance": {
        "instanceId": "dead-middletier", "hostName": "127.0.0.1", "app": "MIDDLETIER",
        "ipAddr": "127.0.0.1", "status": "UP", "port": {"$": dead_port, "@enabled": "true"},
        "vipAddress": "middletier", "secureVipAddress": "middletier",
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}
    }});
    let registered = reqwest::Client::new()
        .post(stack.registry.url("/eureka/v2/apps/MIDDLETIER"))
        .json(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::NO_CONTENT);
    stack.wait_until_edge_knows(2).await;

    // Round robin over two: one of the first two calls starts on the dead one.
    let edge = stack.edge.url("");
    let traces = [
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
        "33333333333333333333333333333333",
    ];
    for trace in traces {
        assert_eq!(
            read_in_trace(&edge, trace, "00f067aa0ba902b7").await,
            StatusCode::OK
        );
    }
    let (attempts, command) = eventually("a trace with a retry", Duration::from_secs(20), || {
        let found = traces.iter().find_map(|caller| {
            let trace = receiver.trace_linked_to(caller)?;
            let spans = receiver.trace(&trace);
            let attempts: Vec<Received> = spans
                .iter()
                .filter(|s| s.name == "middletier attempt")
                .cloned()
                .collect();
            let command = spans.iter().find(|s| s.name == "RSSGet").cloned()?;
            (attempts.len() == 2).then_some((attempts, command))
        });
        async move { found }
    })
    .await;
    assert!(attempts.iter().all(|a| a.parent_id == command.span_id));
    let refused = one(&attempts, "refused attempt", |a| {
        a.attr("instance.id") == Some("dead-middletier")
    });
    assert_eq!(refused.attr("outcome"), Some("connect_error"));
    assert_eq!(refused.status, STATUS_ERROR);
    let answered = one(&attempts, "answered attempt", |a| {
        a.attr("instance.id") != Some("dead-middletier")
    });
    assert_eq!(answered.attr("outcome"), Some("ok"));
    assert_eq!(command.attr("event"), Some("success"));
}

#[tokio::test]
async fn a_failed_request_gives_a_reference_that_finds_its_trace_and_log_line() {
    let receiver = Receiver::start().await;
    let mut stack = start(1, &exporting_to(&receiver)).await;
    stack.middletiers[0].kill();

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .post(stack.edge.url("/api/subscriptions"))
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .json(&json!({"url": stack.feeds.url("/fixtures/rss2.xml")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    let reference = body["reference"].as_str().unwrap().to_owned();
    let trace = eventually("the edge's trace", Duration::from_secs(20), || {
        let found = receiver.trace_linked_to(caller_trace);
        async move { found }
    })
    .await;
    let trace = trace.as_str();
    assert_eq!(reference, trace[..16], "the reference starts the trace id");
    assert_ne!(
        reference,
        caller_trace[..16],
        "a client cannot choose the reference"
    );

    // The log line that says what failed carries the reference and the ids.
    let line = eventually("the edge logs the failure", Duration::from_secs(5), || {
        let line = stack.edge.logs().into_iter().find_map(|line| {
            let event: Value = serde_json::from_str(&line).ok()?;
            (event["fields"]["reference"] == reference.as_str()).then_some(event)
        });
        async move { line }
    })
    .await;
    assert_eq!(line["trace_id"], trace, "{line}");
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16), "{line}");

    // And the trace UI finds the request by it.
    let request = eventually("the failed request's span", Duration::from_secs(20), || {
        let found = receiver
            .trace(trace)
            .into_iter()
            .find(|s| s.service == "edge" && s.kind == SERVER);
        async move { found }
    })
    .await;
    assert_eq!(request.attr("error.reference"), Some(reference.as_str()));
    assert_eq!(request.attr("http.response.status_code"), Some("503"));
    assert_eq!(request.status, STATUS_ERROR);
}

#[tokio::test]
async fn with_no_endpoint_set_nothing_is_exported() {
    // A receiver where an exporter with default settings would send:
    // OTLP/HTTP's default endpoint, localhost:4318.
    let receiver = Receiver::start_on(4318).await;
    let env = [
        ("OTEL_SERVICE_NAME", "reader".to_owned()),
        ("OTEL_TRACES_SAMPLER", "always_on".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let mut stack = start(1, &env).await;
    let edge = stack.edge.url("");
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    assert_eq!(
        read_in_trace(&edge, trace, "00f067aa0ba902b7").await,
        StatusCode::OK
    );
    // A stop flushes whatever an exporter would hold.
    stack.edge.terminate();
    stack.middletiers[0].terminate();
    for service in [&mut stack.edge, &mut stack.middletiers[0]] {
        assert!(service.wait_exit(Duration::from_secs(15)).is_some());
    }
    assert_eq!(receiver.requests(), 0, "nothing was exported");
    let logs = stack.edge.logs().join("\n");
    assert!(!logs.contains("trace_id"), "{logs}");
    assert!(!logs.contains("exporting traces"), "{logs}");
}
