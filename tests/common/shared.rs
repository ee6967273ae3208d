//! Small objects the suites of paved's shared parts (the Event recorder, the Secret cache) work
//! with, and what they read back.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType};
use paved::secrets::SecretFeed;

/// Create the ConfigMap `name` in `ns` (something for Events to be about).
pub async fn config_map(client: &kube::Client, ns: &str, name: &str) -> ConfigMap {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap()
}

/// A Warning Event of paved's (action Reconcile).
pub fn warning(reason: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

/// Events in `ns` about `name`, oldest first.
pub async fn events_about(client: &kube::Client, ns: &str, name: &str) -> Vec<K8sEvent> {
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), ns);
    let mut evs: Vec<K8sEvent> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    evs.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    evs
}

/// Wait up to `secs` until an Event about `name` in `ns` matches `wanted(reason, note)`; the
/// Events about it then, as (reason, note), oldest first. Panics with the Events seen when none
/// does.
///
/// Wait for the note, not only the reason: Events are recorded just after the write they tell
/// of, and an earlier Event with the same reason is still listed.
pub async fn wait_event(
    client: &kube::Client,
    ns: &str,
    name: &str,
    secs: u64,
    wanted: impl Fn(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let events: Vec<(String, String)> = events_about(client, ns, name)
            .await
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect();
        if events.iter().any(|(r, n)| wanted(r, n)) {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no such Event about {ns}/{name} within {secs} s; Events: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Secret with a password, labelled as managed by paved when `labelled`.
pub fn secret(name: &str, labelled: bool) -> Secret {
    let labels = if labelled {
        serde_json::json!({"app.kubernetes.io/managed-by": "paved"})
    } else {
        serde_json::json!({})
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "labels": labels},
        "stringData": {"password": "s3cret"}
    }))
    .unwrap()
}

/// The next change on `feed`, checking the shared store agrees with it when it arrives; the
/// Secret rebuilt from the feed's compact form.
pub async fn next(feed: &mut SecretFeed, deleted: bool) -> Secret {
    let s = tokio::time::timeout(Duration::from_secs(10), feed.changes.recv())
        .await
        .expect("a change within 10 s")
        .expect("feed open");
    let ns = s.namespace().unwrap();
    match feed
        .scope
        .store
        .get(&paved::secrets::key(&ns, &s.name_any()))
    {
        None => assert!(deleted, "{} missing from the store", s.name_any()),
        Some(stored) => {
            assert!(!deleted, "a deleted Secret leaves the store first");
            assert_eq!(
                stored.resource_version(),
                s.resource_version(),
                "the store has the change before the feed"
            );
        }
    }
    s.to_typed().expect("a cached Secret rebuilds")
}
