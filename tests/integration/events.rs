//! paved's Event recorder against the real API server: a repeat becomes a series on the same
//! Event, a changed message is a new Event (so `kubectl describe` never shows a stale reason),
//! and Events about different objects stay apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::Resource;
use kube::api::Api;
use kube::runtime::events::Reporter;
use paved::events::Recorder;

#[tokio::test]
async fn repeats_become_a_series_and_a_new_message_a_new_event() {
    paved::init_crypto();
    let client = client().await;
    let ns = test_namespace(&client, "events").await;
    let a = config_map(&client, &ns, "a").await.object_ref(&());
    let b = config_map(&client, &ns, "b").await.object_ref(&());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "paved-test".into(),
            instance: Some("test-0".into()),
        },
    );

    let failing = warning("ReconcileError", "RDS refused: InvalidParameterCombination");
    for _ in 0..3 {
        recorder.publish(&failing, &a).await.unwrap();
    }
    let evs = events_about(&client, &ns, "a").await;
    assert_eq!(evs.len(), 1, "three repeats are one Event: {evs:?}");
    let e = &evs[0];
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(3), "{e:?}");
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reason.as_deref(), Some("ReconcileError"));
    assert_eq!(e.reporting_controller.as_deref(), Some("paved-test"));
    assert_eq!(e.reporting_instance.as_deref(), Some("test-0"));
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.uid.clone()),
        a.uid.clone()
    );

    // Same reason, new message: a new Event carries it (the old one keeps its own).
    let changed = warning("ReconcileError", "RDS refused: StorageQuotaExceeded");
    recorder.publish(&changed, &a).await.unwrap();
    let evs = events_about(&client, &ns, "a").await;
    let notes: Vec<_> = evs.iter().filter_map(|e| e.note.clone()).collect();
    assert_eq!(
        notes,
        vec![
            "RDS refused: InvalidParameterCombination".to_string(),
            "RDS refused: StorageQuotaExceeded".to_string()
        ]
    );
    assert!(evs[1].series.is_none(), "a first occurrence has no series");

    // The same Event about another object is that object's own.
    recorder.publish(&failing, &b).await.unwrap();
    let evs_b = events_about(&client, &ns, "b").await;
    assert_eq!(evs_b.len(), 1);
    assert!(evs_b[0].series.is_none());
    assert_eq!(recorder.remembered(), 3, "one entry per distinct Event");

    // An Event deleted behind the recorder's back: the next repeat creates it again.
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), &ns);
    api.delete(
        evs_b[0].metadata.name.as_deref().unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    recorder.publish(&failing, &b).await.unwrap();
    let evs_b = events_about(&client, &ns, "b").await;
    assert_eq!(evs_b.len(), 1, "{evs_b:?}");
    assert_eq!(evs_b[0].note.as_deref(), failing.note.as_deref());
}
