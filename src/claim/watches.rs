//! What wakes a claim besides its own changes: its Composition, the objects composed for it
//! (whatever their kind: watches start when a kind is first composed), and the Secrets paved
//! manages.
//!
//! The same watches fill the caches a reconcile reads from (no GET/LIST per reconcile): one
//! reflector store per composed kind and scope, and the Secrets labelled
//! `app.kubernetes.io/managed-by=paved` (the only Secrets whose data paved caches: the claims'
//! connection Secrets and the RDS controller's), from the cache shared with the RDS controller
//! ([`crate::secrets`]). Objects are slimmed before they enter a store ([`slim`]): no
//! `managedFields` (except paved's own Apply entry on composed objects, which the
//! write-only-what-differs check reads) and no `last-applied-configuration` annotation.
//! Composed objects are then kept as compact JSON text ([`CompactObject`]), not as
//! `DynamicObject`s, and rebuilt only when a reconcile reads one.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::store::Writer;

use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::task::JoinHandle;

use super::plan::controlled_by;

use super::names::FIELD_MANAGER;
use crate::api::Composition;
use crate::kube::compact::CompactObject;
use crate::kube::meta::slim;
use crate::kube::{synced, watch};
use crate::xrd::ServedKind;

/// One watch scope: a claim kind in a namespace (or all namespaces), the claims cached for it
/// and the channel that feeds its reconcile queue.
pub(crate) struct Scope {
    pub kind: Arc<ServedKind>,
    pub namespace: Option<String>,
    pub claims: Store<CompactObject>,
    pub trigger: UnboundedSender<ObjectRef<CompactObject>>,
}

/// A watch event of composed objects, in the form the caches keep ([`CompactObject`]).
fn compact_event(e: watcher::Event<DynamicObject>) -> watcher::Event<CompactObject> {
    watch::map_event(e, CompactObject::new)
}

/// One scope's cache of a composed kind.
struct KindCache {
    namespace: Option<String>,
    store: Store<CompactObject>,
    synced: synced::SyncedRx,
}

fn in_scope(scope: &Option<String>, ns: &str) -> bool {
    scope.as_deref().is_none_or(|s| s == ns)
}

/// How long a reconcile waits for a new cache's initial list before reading directly.
const SYNC_WAIT: Duration = Duration::from_secs(10);

async fn wait_synced(rx: &synced::SyncedRx) -> bool {
    matches!(
        tokio::time::timeout(SYNC_WAIT, synced::wait(rx)).await,
        Ok(true)
    )
}

/// (apiVersion, kind).
type KindKey = (String, String);

/// Routing of external triggers to the claims they concern, and the dynamic watches.
pub(crate) struct Watches {
    client: Client,
    /// The namespace scopes (`None`: all namespaces); composed kinds are watched per scope.
    namespaces: Vec<Option<String>>,
    /// The claim scopes: one per served claim kind and namespace scope, added and removed as
    /// kinds come and go.
    scopes: RwLock<Vec<Scope>>,
    kinds: Mutex<HashMap<KindKey, Vec<Arc<KindCache>>>>,
    secrets: Mutex<Vec<Arc<crate::secrets::SecretScope>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// (namespace, Secret name) → claims reading that Secret (composed objects' connection
    /// Secrets).
    secret_readers: Mutex<HashMap<(String, String), BTreeSet<String>>>,
}

impl Watches {
    pub fn new(client: Client, namespaces: Vec<Option<String>>) -> Arc<Self> {
        Arc::new(Self {
            client,
            namespaces,
            scopes: RwLock::default(),
            kinds: Mutex::default(),
            secrets: Mutex::default(),
            tasks: Mutex::default(),
            secret_readers: Mutex::default(),
        })
    }

    /// Serve a claim kind in one namespace scope.
    pub fn add_scope(&self, scope: Scope) {
        if let Ok(mut scopes) = self.scopes.write() {
            scopes.push(scope);
        }
    }

    /// Stop serving a claim kind (every namespace scope of it).
    pub fn remove_kind(&self, kind: &ServedKind) {
        if let Ok(mut scopes) = self.scopes.write() {
            scopes.retain(|s| *s.kind != *kind);
        }
    }

    pub fn claim_stores(&self) -> Vec<Store<CompactObject>> {
        self.scopes
            .read()
            .map(|s| s.iter().map(|s| s.claims.clone()).collect())
            .unwrap_or_default()
    }

    /// Count the cached claims of every served kind, by kind and Ready/Synced state (the
    /// `paved_objects` gauge, at scrape time).
    pub fn count_claims(&self, tally: &mut crate::kube::object_metrics::Tally) {
        let Ok(scopes) = self.scopes.read() else {
            return;
        };
        for s in scopes.iter() {
            tally.kind(&s.kind.kind);
            for claim in s.claims.state() {
                tally.count(&s.kind.kind, claim.states());
            }
        }
    }

    /// Queue a reconcile of the claim `namespace/name` of the kind (`apiVersion`, `kind`);
    /// `None`: of whichever served kind has a claim of that name.
    fn trigger_of(&self, kind: Option<(&str, &str)>, namespace: &str, name: &str) {
        let Ok(scopes) = self.scopes.read() else {
            return;
        };
        let of_kind =
            |s: &&Scope| kind.is_none_or(|(av, k)| s.kind.api_version() == av && s.kind.kind == k);
        let mut sent = std::collections::HashSet::new();
        for s in scopes.iter().filter(of_kind) {
            let here = s.namespace.as_deref() == Some(namespace);
            let all = s.namespace.is_none()
                && !scopes
                    .iter()
                    .any(|o| *o.kind == *s.kind && o.namespace.as_deref() == Some(namespace));
            if (here || all) && sent.insert(s.kind.crd_name()) {
                let key = ObjectRef::new_with(name, s.kind.api_resource()).within(namespace);
                if kind.is_some() || s.claims.get(&key).is_some() {
                    let _ = s.trigger.unbounded_send(key);
                }
            }
        }
    }

    /// Queue a reconcile of the claim of that name in `namespace`, whatever its kind.
    pub fn trigger(&self, namespace: &str, name: &str) {
        self.trigger_of(None, namespace, name);
    }

    /// Queue a reconcile of the claim an owner reference names.
    pub fn trigger_owner(&self, namespace: &str, owner: &ClaimOwner) {
        self.trigger_of(
            Some((&owner.api_version, &owner.kind)),
            namespace,
            &owner.name,
        );
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(handle);
        }
    }

    /// Stop every watch task.
    pub fn stop(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }

    /// Record that `claim` reads the connection Secret `namespace/secret` (so that a change to it
    /// wakes the claim).
    pub fn note_secret_reader(&self, namespace: &str, secret: &str, claim: &str) {
        if let Ok(mut idx) = self.secret_readers.lock() {
            idx.entry((namespace.to_string(), secret.to_string()))
                .or_default()
                .insert(claim.to_string());
        }
    }

    /// Forget a deleted claim's Secret readings.
    pub fn forget_claim(&self, namespace: &str, claim: &str) {
        if let Ok(mut idx) = self.secret_readers.lock() {
            idx.retain(|(ns, _), claims| {
                if ns == namespace {
                    claims.remove(claim);
                }
                !claims.is_empty()
            });
        }
    }

    fn secret_readers(&self, namespace: &str, secret: &str) -> Vec<String> {
        self.secret_readers
            .lock()
            .ok()
            .and_then(|idx| {
                idx.get(&(namespace.to_string(), secret.to_string()))
                    .cloned()
            })
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }

    /// Watch and cache objects of this kind in every scope, waking the claim that controls
    /// each. Idempotent.
    pub fn ensure_kind(self: &Arc<Self>, ar: &ApiResource) {
        let key = (ar.api_version.clone(), ar.kind.clone());
        let Ok(mut kinds) = self.kinds.lock() else {
            return;
        };
        if kinds.contains_key(&key) {
            return;
        }
        tracing::info!(api_version = %ar.api_version, kind = %ar.kind, "watching composed kind");
        let mut caches = Vec::new();
        for namespace in &self.namespaces {
            let api: Api<DynamicObject> = match namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
                None => Api::all_with(self.client.clone(), ar),
            };
            let writer = Writer::new(ar.clone());
            let (tx, rx) = synced::channel();
            caches.push(Arc::new(KindCache {
                namespace: namespace.clone(),
                store: writer.as_reader(),
                synced: rx,
            }));
            let me = Arc::clone(self);
            let kind = ar.kind.clone();
            // Only what paved composed (the engine always sets the claim-name label): a
            // Composition composing `v1 Secret` or `ConfigMap` must not cache the cluster's.
            let config = synced::watch_config().labels(crate::api::managed::CLAIM_NAME_LABEL);
            let stream = watcher(api, config)
                .modify(|o: &mut DynamicObject| slim(&mut o.metadata, Some(FIELD_MANAGER)))
                .map_ok(compact_event);
            let health_name = format!("composed {kind}");
            self.spawn(async move {
                let events = reflector::reflector(writer, stream)
                    .default_backoff()
                    .inspect(move |e| watch::WatchHealth::global().observe(&health_name, e))
                    .inspect(move |e| synced::mark(&tx, e));
                watch::settled_objects(events, true)
                    .for_each(|res| {
                        match res {
                            Ok(obj) => {
                                if let (Some(ns), Some(owner)) = (obj.namespace(), controlling_claim(obj.meta())) {
                                    me.trigger_owner(&ns, &owner);
                                }
                            }
                            // Logged once per outage by the watch's health.
                            Err(e) => tracing::debug!(%kind, error = %e, "watch of composed kind failed; retrying"),
                        }
                        std::future::ready(())
                    })
                    .await;
            });
        }
        kinds.insert(key, caches);
    }

    /// A composed object from the cache of its kind, in compact form: `None` when that cache
    /// cannot answer (kind not watched, initial list not done within [`SYNC_WAIT`]),
    /// `Some(None)` when the object is not there.
    pub async fn cached_object(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
    ) -> Option<Option<Arc<CompactObject>>> {
        let cache = self
            .kinds
            .lock()
            .ok()?
            .get(&(ar.api_version.clone(), ar.kind.clone()))?
            .iter()
            .find(|c| in_scope(&c.namespace, ns))
            .cloned()?;
        if !wait_synced(&cache.synced).await {
            return None;
        }
        Some(
            cache
                .store
                .get(&ObjectRef::new_with(name, ar.clone()).within(ns)),
        )
    }

    /// The shared cache of paved's Secrets for `ns`, once its initial list is in; `None` when
    /// there is none or it did not sync within [`SYNC_WAIT`].
    async fn synced_secrets(&self, ns: &str) -> Option<Arc<crate::secrets::SecretScope>> {
        let cache = self
            .secrets
            .lock()
            .ok()?
            .iter()
            .find(|c| in_scope(&c.namespace, ns))
            .cloned()?;
        wait_synced(&cache.synced).await.then_some(cache)
    }

    /// A Secret labelled as managed by paved, from the cache: `None` when the cache cannot
    /// answer, `Some(None)` when no such labelled Secret exists.
    /// A Secret whose cached text does not rebuild counts as one the cache cannot answer.
    pub async fn cached_secret(&self, ns: &str, name: &str) -> Option<Option<Secret>> {
        let cache = self.synced_secrets(ns).await?;
        match cache.store.get(&crate::secrets::key(ns, name)) {
            None => Some(None),
            Some(cached) => crate::secrets::rebuild(&cached).map(Some),
        }
    }

    /// The labelled Secrets in `ns` whose controller is the object with `uid`, from the cache;
    /// `None` when the cache cannot answer.
    pub async fn cached_secrets_controlled_by(
        &self,
        ns: &str,
        uid: &str,
    ) -> Option<Vec<Arc<CompactObject>>> {
        let cache = self.synced_secrets(ns).await?;
        Some(
            cache
                .store
                .state()
                .into_iter()
                .filter(|s| s.namespace().as_deref() == Some(ns) && controlled_by(s.meta(), uid))
                .collect(),
        )
    }

    /// Read paved's Secrets from the shared cache (`crate::secrets`, one feed per scope): a
    /// changed or deleted Secret wakes the claim that controls it and the claims reading it.
    pub fn start_secrets(self: &Arc<Self>, feeds: Vec<crate::secrets::SecretFeed>) {
        for feed in feeds {
            if let Ok(mut secrets) = self.secrets.lock() {
                secrets.push(Arc::clone(&feed.scope));
            }
            let me = Arc::clone(self);
            self.spawn(async move {
                let mut changes = feed.changes;
                while let Some(obj) = changes.recv().await {
                    if let Some(ns) = obj.namespace() {
                        for c in me.secret_readers(&ns, &obj.name_any()) {
                            me.trigger(&ns, &c);
                        }
                        if let Some(owner) = controlling_claim(obj.meta()) {
                            me.trigger_owner(&ns, &owner);
                        }
                    }
                }
            });
        }
    }

    /// Drive the Composition cache; a change to a Composition wakes the claims that use it and
    /// those still waiting for one.
    pub fn start_compositions(
        self: &Arc<Self>,
        writer: kube::runtime::reflector::store::Writer<Composition>,
        synced: synced::SyncedTx,
    ) {
        let api: Api<Composition> = Api::all(self.client.clone());
        let me = Arc::clone(self);
        self.spawn(async move {
            let stream = watcher(api, synced::watch_config())
                .modify(|c: &mut Composition| slim(&mut c.metadata, None));
            let events = kube::runtime::reflector(writer, stream)
                .default_backoff()
                .inspect(|e| watch::WatchHealth::global().observe("compositions", e))
                .inspect(move |e| synced::mark(&synced, e));
            watch::settled_objects(events, true)
                .for_each(|res| {
                    match res {
                        Ok(comp) => {
                            let name = comp.name_any();
                            for store in me.claim_stores() {
                                for cached in store.state() {
                                    // A parse of the claim's text: Composition changes are rare.
                                    let Ok(claim) = cached.to_dynamic() else {
                                        continue;
                                    };
                                    if uses_or_awaits(&claim, &name)
                                        && let Some(ns) = claim.namespace()
                                    {
                                        let _ = store_trigger(&me, &claim, &ns);
                                    }
                                }
                            }
                        }
                        // Logged once per outage by the watch's health.
                        Err(e) => {
                            tracing::debug!(error = %e, "watch of Compositions failed; retrying")
                        }
                    }
                    std::future::ready(())
                })
                .await;
        });
    }
}

/// Whether a Composition change may concern this claim: it names the Composition, was composed
/// with it, or has not been composed with any yet (selection may now succeed or change).
fn uses_or_awaits(claim: &DynamicObject, composition: &str) -> bool {
    let name = |p: &str| claim.data.pointer(p).and_then(serde_json::Value::as_str);
    let spec_ref =
        name("/spec/compositionRef/name").or(name("/spec/crossplane/compositionRef/name"));
    let recorded = name("/status/compositionRef/name");
    spec_ref == Some(composition) || recorded == Some(composition) || recorded.is_none()
}

/// Wake a cached claim (its kind from its own type fields).
fn store_trigger(me: &Watches, claim: &DynamicObject, ns: &str) -> Option<()> {
    let t = claim.types.as_ref()?;
    me.trigger_of(Some((&t.api_version, &t.kind)), ns, &claim.name_any());
    Some(())
}

/// The claim holding the controller owner reference of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClaimOwner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// The claim holding the controller owner reference of an object, if any (of whatever kind:
/// a kind paved does not serve wakes nothing).
pub(crate) fn controlling_claim(meta: &kube::api::ObjectMeta) -> Option<ClaimOwner> {
    meta.owner_references.as_ref()?.iter().find_map(|o| {
        (o.controller == Some(true)).then(|| ClaimOwner {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::kube::meta::LAST_APPLIED;
    use kube::runtime::reflector::store::Writer;
    use serde_json::json;

    fn instance_ar() -> ApiResource {
        ApiResource {
            group: "rds.aws.upbound.io".into(),
            version: "v1beta1".into(),
            api_version: "rds.aws.upbound.io/v1beta1".into(),
            kind: "Instance".into(),
            plural: "instances".into(),
        }
    }

    /// An RDS Instance as the API server sends it: paved's Apply entry, the RDS controller's
    /// status entry, a kubectl last-applied annotation, status with conditions.
    fn instance(rv: &str) -> DynamicObject {
        let v = json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1",
            "kind": "Instance",
            "metadata": {
                "name": "db-abc12",
                "namespace": "team-a",
                "uid": "0b9c3f0e-1111-2222-3333-444455556666",
                "resourceVersion": rv,
                "generation": 1,
                "creationTimestamp": "2026-11-24T10:00:00Z",
                "labels": {"crossplane.io/claim-name": "db", "crossplane.io/claim-namespace": "team-a"},
                "annotations": {
                    "crossplane.io/external-name": "team-a-db-abc12",
                    LAST_APPLIED: "{\"huge\":\"copy\"}"
                },
                "finalizers": ["finalizer.managedresource.crossplane.io"],
                "ownerReferences": [{
                    "apiVersion": "database.example.com/v1alpha1",
                    "kind": "PostgreSQLInstance",
                    "name": "db",
                    "uid": "9f0e0000-aaaa-bbbb-cccc-ddddeeeeffff",
                    "controller": true,
                    "blockOwnerDeletion": true
                }],
                "managedFields": [
                    {
                        "manager": "paved",
                        "operation": "Apply",
                        "apiVersion": "rds.aws.upbound.io/v1beta1",
                        "time": "2026-11-24T10:00:00Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {
                            "f:metadata": {
                                "f:annotations": {"f:crossplane.io/external-name": {}},
                                "f:finalizers": {"v:\"finalizer.managedresource.crossplane.io\"": {}},
                                "f:labels": {"f:crossplane.io/claim-name": {}, "f:crossplane.io/claim-namespace": {}},
                                "f:ownerReferences": {"k:{\"uid\":\"9f0e0000-aaaa-bbbb-cccc-ddddeeeeffff\"}": {}}
                            },
                            "f:spec": {"f:forProvider": {"f:region": {}, "f:allocatedStorage": {}, "f:engine": {}}}
                        }
                    },
                    {
                        "manager": "paved-rds",
                        "operation": "Apply",
                        "apiVersion": "rds.aws.upbound.io/v1beta1",
                        "time": "2026-11-24T10:00:05Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:status": {"f:conditions": {}, "f:atProvider": {"f:status": {}}}},
                        "subresource": "status"
                    }
                ]
            },
            "spec": {
                "forProvider": {"region": "eu-west-1", "allocatedStorage": 20, "engine": "postgres", "instanceClass": "db.t3.micro"},
                "writeConnectionSecretToRef": {"name": "db-abc12-conn", "namespace": "team-a"}
            },
            "status": {
                "atProvider": {"status": "available", "address": "db.example.com", "port": 5432, "cpu": 0.5},
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-11-24T10:00:05Z"},
                    {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-11-24T10:00:05Z"}
                ]
            }
        });
        serde_json::from_value(v).unwrap()
    }

    fn slimmed(rv: &str) -> DynamicObject {
        let mut o = instance(rv);
        slim(&mut o.metadata, Some(FIELD_MANAGER));
        o
    }

    #[test]
    fn compact_round_trip_gives_the_slimmed_object() {
        let original = slimmed("42");
        // slim kept paved's Apply entry only, and dropped the last-applied annotation.
        let kept = original.metadata.managed_fields.as_ref().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].manager.as_deref(), Some("paved"));
        assert!(!original.annotations().contains_key(LAST_APPLIED));

        let compact = CompactObject::new(original.clone());
        let back = compact.to_dynamic().unwrap();
        assert_eq!(back, original);
        assert_eq!(back.data["status"]["atProvider"]["port"], json!(5432));
        assert_eq!(back.data["status"]["atProvider"]["cpu"], json!(0.5));
        assert_eq!(
            back.metadata.managed_fields,
            original.metadata.managed_fields
        );
        // The text is compact JSON (no pretty-printing), and holds no apiVersion/kind twice.
        assert!(!compact.json.contains('\n'));
        assert_eq!(compact.json.matches("\"kind\":\"Instance\"").count(), 1);
    }

    #[test]
    fn compact_meta_holds_what_watches_and_freshness_read() {
        let compact = CompactObject::new(slimmed("42"));
        let meta = compact.meta();
        assert_eq!(meta.name.as_deref(), Some("db-abc12"));
        assert_eq!(meta.namespace.as_deref(), Some("team-a"));
        assert_eq!(meta.resource_version.as_deref(), Some("42"));
        assert_eq!(
            meta.uid.as_deref(),
            Some("0b9c3f0e-1111-2222-3333-444455556666")
        );
        assert_eq!(
            controlling_claim(meta).map(|o| o.name).as_deref(),
            Some("db")
        );
        assert!(controlled_by(meta, "9f0e0000-aaaa-bbbb-cccc-ddddeeeeffff"));
        // Nothing else: the rest is in the JSON text only.
        assert!(meta.managed_fields.is_none());
        assert!(meta.labels.is_none() && meta.annotations.is_none());
        assert_eq!(
            compact.types.as_ref().map(|t| t.kind.as_str()),
            Some("Instance")
        );
    }

    #[test]
    fn a_compact_claim_keeps_the_metadata_its_predicate_and_error_policy_read() {
        let mut claim = slimmed("7");
        claim.metadata.generation = Some(3);
        claim.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        claim.metadata.finalizers = Some(vec!["paved.io/claim".into()]);
        claim.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let compact = CompactObject::with_metadata(claim.clone());
        assert_eq!(compact.meta(), &claim.metadata);
        assert_eq!(compact.to_dynamic().unwrap(), claim);
        // The plain compact form keeps none of them.
        let plain = CompactObject::new(claim);
        assert!(plain.meta().generation.is_none() && plain.meta().finalizers.is_none());
        assert!(plain.meta().deletion_timestamp.is_none());
    }

    #[test]
    fn text_that_does_not_rebuild_is_an_error_not_a_panic() {
        let mut compact = CompactObject::new(slimmed("1"));
        compact.json = Arc::from("");
        assert!(compact.to_dynamic().is_err());
        compact.json = Arc::from("{\"metadata\":");
        assert!(compact.to_dynamic().is_err());
    }

    #[test]
    fn events_map_variant_for_variant() {
        use watcher::Event;
        let o = slimmed("5");
        let c = CompactObject::new(o.clone());
        assert!(matches!(compact_event(Event::Apply(o.clone())), Event::Apply(x) if x == c));
        assert!(matches!(compact_event(Event::Delete(o.clone())), Event::Delete(x) if x == c));
        assert!(matches!(compact_event(Event::Init), Event::Init));
        assert!(matches!(compact_event(Event::InitApply(o)), Event::InitApply(x) if x == c));
        assert!(matches!(compact_event(Event::InitDone), Event::InitDone));
    }

    #[test]
    fn a_store_of_compact_objects_follows_the_watch() {
        use watcher::Event;
        let ar = instance_ar();
        let mut writer = Writer::<CompactObject>::new(ar.clone());
        let store = writer.as_reader();
        let key = ObjectRef::new_with("db-abc12", ar.clone()).within("team-a");

        // Initial list, then an update, then a deletion.
        for e in [Event::Init, Event::InitApply(slimmed("5")), Event::InitDone] {
            writer.apply_watcher_event(&compact_event(e));
        }
        let got = store.get(&key).unwrap();
        assert_eq!(got.to_dynamic().unwrap(), slimmed("5"));

        writer.apply_watcher_event(&compact_event(Event::Apply(slimmed("6"))));
        let got = store.get(&key).unwrap();
        assert_eq!(got.resource_version().as_deref(), Some("6"));
        assert_eq!(got.to_dynamic().unwrap(), slimmed("6"));

        writer.apply_watcher_event(&compact_event(Event::Delete(slimmed("7"))));
        assert!(store.get(&key).is_none());
    }
}
