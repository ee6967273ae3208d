//! The Secret cache both controllers share, against the real API server: one store, and every
//! consumer hears of each change and deletion of a labelled Secret only after the store has it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use paved::secrets;

#[tokio::test]
async fn one_store_every_consumer_hears_changes_and_deletions() {
    paved::init_crypto();
    let client = client().await;
    let ns = test_namespace(&client, "secrets").await;
    let mut feeds = secrets::start(&client, &[Some(ns.clone())], 2);
    assert_eq!(feeds.len(), 2);
    let mut rds = feeds.pop().unwrap().pop().unwrap();
    let mut claim = feeds.pop().unwrap().pop().unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&rds.scope, &claim.scope),
        "one cache for both consumers"
    );
    assert!(rds.scope.wait_synced().await);

    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &secret("foreign", false))
        .await
        .unwrap();
    api.create(&PostParams::default(), &secret("ours", true))
        .await
        .unwrap();
    for feed in [&mut claim, &mut rds] {
        let s = next(feed, false).await;
        assert_eq!(s.name_any(), "ours", "unlabelled Secrets are not cached");
        assert!(
            s.metadata.managed_fields.is_none(),
            "slimmed before caching"
        );
    }
    assert_eq!(claim.scope.store.state().len(), 1);
    // The store keeps it compact; a reader gets the whole Secret back, data included.
    let cached = paved::secrets::get(&claim.scope.store, &ns, "ours").expect("cached");
    let password = cached.data.as_ref().and_then(|d| d.get("password"));
    assert_eq!(password.map(|b| b.0.as_slice()), Some(&b"s3cret"[..]));
    assert!(paved::secrets::get(&claim.scope.store, &ns, "foreign").is_none());

    api.delete("ours", &Default::default()).await.unwrap();
    for feed in [&mut claim, &mut rds] {
        let s = next(feed, true).await;
        assert_eq!(s.name_any(), "ours");
    }
    assert!(claim.scope.store.state().is_empty());

    // A consumer that goes away does not stop the other.
    drop(claim);
    api.create(&PostParams::default(), &secret("again", true))
        .await
        .unwrap();
    assert_eq!(next(&mut rds, false).await.name_any(), "again");
}
