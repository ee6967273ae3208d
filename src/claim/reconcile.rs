//! One reconcile of a claim: dereference (Composition, observed objects) → render (pure engine)
//! → apply what differs → delete what is no longer listed → publish the connection Secret →
//! write status when it changed → emit events on transitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::Recorder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, Scope as KubeScope};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::instrument;

use super::diff;
use super::engine::{self, ObservedResource, Readiness, RenderInput, RenderOutput};
use super::error::{Error, KubeContext};
use super::metrics::ClaimMetrics;
use super::select::{self, Candidate, ClaimChoice};
use super::watches::{
    CompactObject, MANAGED_BY_LABEL, MANAGED_BY_VALUE, Watches, controlled_by, slim,
};
use super::{ClaimConfig, FIELD_MANAGER, FINALIZER};
use crate::api::claim::{CompositeDeletePolicy, ConnectionDetailsStatus, PostgreSQLInstanceStatus};
use crate::api::common::{
    Condition, ConditionStatus, NameReference, ObjectReference, READY, SYNCED, get_condition,
    set_condition,
};
use crate::api::{Composition, PostgreSQLInstance};

type Claim = PostgreSQLInstance;

/// Status keys paved itself manages; everything else in the engine's claim status comes from
/// ToComposite patches.
const OWN_STATUS_KEYS: [&str; 4] = [
    "conditions",
    "compositionRef",
    "resourceRefs",
    "connectionDetails",
];

/// (apiVersion, kind, namespace, name) of a composed object.
type ObjectKey = (String, String, String, String);

/// Shared state of the controller.
pub(crate) struct Context {
    pub client: Client,
    pub config: ClaimConfig,
    pub metrics: Arc<ClaimMetrics>,
    pub recorder: Recorder,
    pub compositions: Store<Composition>,
    /// True once the Composition cache holds the initial list.
    pub compositions_synced: tokio::sync::watch::Receiver<bool>,
    pub watches: Arc<Watches>,
    kinds: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
    failures: Mutex<HashMap<(String, String), u32>>,
    /// claim uid → (resourceVersion returned by our last status write, the status written). The
    /// claim cache can lag our own write; comparing against it would rewrite the same status.
    written: Mutex<HashMap<String, (String, PostgreSQLInstanceStatus)>>,
    /// (apiVersion, kind, namespace, name) → our last apply's response, until the watch cache
    /// has caught up with it; slimmed and compact like the cache's objects ([`CompactObject`]).
    /// An entry goes at the claim's next reconcile, which the watch event of that very apply
    /// triggers: in the 500-claim bench at most 37 were held at once and none remained. One can
    /// outlive its claim only if the claim is deleted in between (cleanup does not read it):
    /// ~3 KB in compact form.
    recent_objects: Mutex<HashMap<ObjectKey, Arc<CompactObject>>>,
    /// (namespace, name) → our last write of a claim connection Secret, likewise.
    recent_secrets: Mutex<HashMap<(String, String), Arc<Secret>>>,
}

impl Context {
    pub fn new(
        client: Client,
        config: ClaimConfig,
        metrics: Arc<ClaimMetrics>,
        recorder: Recorder,
        compositions: Store<Composition>,
        compositions_synced: tokio::sync::watch::Receiver<bool>,
        watches: Arc<Watches>,
    ) -> Self {
        Self {
            client,
            config,
            metrics,
            recorder,
            compositions,
            compositions_synced,
            watches,
            kinds: Mutex::default(),
            failures: Mutex::default(),
            written: Mutex::default(),
            recent_objects: Mutex::default(),
            recent_secrets: Mutex::default(),
        }
    }

    /// Resolve an apiVersion/kind through discovery (cached once found).
    async fn resolve(
        &self,
        resource: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.lock().ok().and_then(|k| k.get(&key).cloned()) {
            return Ok(found);
        }
        let not_served = || Error::KindNotServed {
            resource: resource.to_string(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        if kind.is_empty() || api_version.is_empty() {
            return Err(not_served());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok(found) => {
                if let Ok(mut k) = self.kinds.lock() {
                    k.insert(key, found.clone());
                }
                Ok(found)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Err(not_served()),
            Err(kube::Error::Discovery(_)) => Err(not_served()),
            Err(e) => Err(e).ctx(|| format!("discovering {api_version} {kind}")),
        }
    }

    fn forget_kind(&self, api_version: &str, kind: &str) {
        if let Ok(mut k) = self.kinds.lock() {
            k.remove(&(api_version.to_string(), kind.to_string()));
        }
    }

    /// Per-claim exponential backoff: 1 s, 2 s, 4 s ... up to 5 minutes.
    pub fn next_backoff(&self, ns: &str, name: &str) -> Duration {
        let n = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry((ns.to_string(), name.to_string())).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        let secs = 2u64.saturating_pow(n.saturating_sub(1).min(16)).min(300);
        // ±10% jitter so that claims failing together do not retry together.
        let jitter = rand::random_range(0.9..1.1);
        Duration::from_secs_f64(secs as f64 * jitter)
    }

    /// The claim's status as the API server has it: the cached claim's, unless the cache has
    /// not caught up with our last status write yet (then what we wrote).
    fn live_status(&self, claim: &Claim) -> PostgreSQLInstanceStatus {
        let cached = claim.status.clone().unwrap_or_default();
        let (Some(uid), Some(rv)) = (claim.uid(), claim.resource_version()) else {
            return cached;
        };
        let Ok(mut written) = self.written.lock() else {
            return cached;
        };
        match written.get(&uid) {
            Some((w_rv, w_status)) if newer(w_rv, &rv) => w_status.clone(),
            Some(_) => {
                // The cache has our write (or something newer): forget ours.
                written.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    fn note_status_written(
        &self,
        claim: &Claim,
        rv: Option<String>,
        status: &PostgreSQLInstanceStatus,
    ) {
        if let (Some(uid), Some(rv), Ok(mut w)) = (claim.uid(), rv, self.written.lock()) {
            w.insert(uid, (rv, status.clone()));
        }
    }

    fn forget_claim(&self, claim: &Claim) {
        if let (Some(uid), Ok(mut w)) = (claim.uid(), self.written.lock()) {
            w.remove(&uid);
        }
    }

    /// A composed object as the API server has it, from the watch cache of its kind; our own
    /// last apply's response when the cache has not caught up with it yet. A GET only when the
    /// cache cannot answer or misses an object paved just wrote (or, which should never happen,
    /// the compact form does not rebuild).
    async fn live_object(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, Error> {
        let key = (
            ar.api_version.clone(),
            ar.kind.clone(),
            ns.to_string(),
            name.to_string(),
        );
        let recent = self
            .recent_objects
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        let cached = self.watches.cached_object(ar, ns, name).await;
        let pick = match (cached, recent) {
            (Some(Some(c)), Some(r)) => {
                if fresher(&*r, &*c) {
                    Some(Some(r))
                } else {
                    self.forget_recent_object(&key);
                    Some(Some(c))
                }
            }
            (Some(c), None) => Some(c),
            // Not (yet) in the cache although paved wrote it, or no cache: ask the API server.
            (Some(None), Some(_)) | (None, _) => None,
        };
        match pick {
            Some(None) => return Ok(None),
            Some(Some(found)) => match found.to_dynamic() {
                Ok(obj) => return Ok(Some(obj)),
                Err(e) => {
                    tracing::warn!(kind = %ar.kind, %ns, %name, error = %e, "cached object does not rebuild; reading it from the API server");
                    self.forget_recent_object(&key);
                }
            },
            None => {}
        }
        self.metrics.read("object");
        let got = dyn_api(&self.client, ar, ns)
            .get_opt(name)
            .await
            .ctx(|| format!("reading {} {ns}/{name}", ar.kind))?;
        if got.is_none() {
            self.forget_recent_object(&key);
        }
        Ok(got)
    }

    /// Remember our apply's response until the cache has caught up with it, slimmed and compact
    /// as the cache would hold it.
    fn note_applied(&self, ar: &ApiResource, ns: &str, obj: &DynamicObject) {
        let mut slimmed = obj.clone();
        slim(&mut slimmed.metadata, Some(FIELD_MANAGER));
        let compact = Arc::new(CompactObject::new(slimmed));
        if let Ok(mut m) = self.recent_objects.lock() {
            m.insert(
                (
                    ar.api_version.clone(),
                    ar.kind.clone(),
                    ns.to_string(),
                    obj.name_any(),
                ),
                compact,
            );
        }
    }

    fn forget_recent_object(&self, key: &ObjectKey) {
        if let Ok(mut m) = self.recent_objects.lock() {
            m.remove(key);
        }
    }

    /// A Secret, from the cache of paved's (labelled) Secrets, or our own last write when the
    /// cache lags it. On a cache miss, a GET only when `get_on_miss` (the Secret may exist
    /// without paved's label) or paved just wrote it.
    async fn live_secret(
        &self,
        ns: &str,
        name: &str,
        get_on_miss: bool,
    ) -> Result<Option<Secret>, Error> {
        let key = (ns.to_string(), name.to_string());
        let recent = self
            .recent_secrets
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        let cached = self.watches.cached_secret(ns, name).await;
        let pick = match (cached, recent) {
            (Some(Some(c)), Some(r)) => {
                if fresher(&*r, &*c) {
                    Some(Some(r))
                } else {
                    self.forget_recent_secret(&key);
                    Some(Some(c))
                }
            }
            (Some(Some(c)), None) => Some(Some(c)),
            (Some(None), None) if !get_on_miss => Some(None),
            _ => None,
        };
        if let Some(found) = pick {
            return Ok(found.map(|s| (*s).clone()));
        }
        self.metrics.read("secret");
        let got = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .ctx(|| format!("reading Secret {ns}/{name}"))?;
        if got.is_none() {
            self.forget_recent_secret(&key);
        }
        Ok(got)
    }

    fn note_secret_written(&self, ns: &str, s: &Secret) {
        if let Ok(mut m) = self.recent_secrets.lock() {
            m.insert((ns.to_string(), s.name_any()), Arc::new(s.clone()));
        }
    }

    fn forget_recent_secret(&self, key: &(String, String)) {
        if let Ok(mut m) = self.recent_secrets.lock() {
            m.remove(key);
        }
    }

    fn reset_backoff(&self, ns: &str, name: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(&(ns.to_string(), name.to_string()));
        }
    }

    async fn publish(&self, claim: &Claim, type_: EventType, reason: &str, note: String) {
        let mut note = note;
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        self.metrics.write("event");
        if let Err(e) = self.recorder.publish(&ev, &claim.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing event failed");
        }
    }
}

/// What composing produced, for status and events.
struct Composed {
    composition: String,
    refs: Vec<ObjectReference>,
    not_ready: Vec<String>,
    any_unavailable: bool,
    ready: bool,
    extra: BTreeMap<String, Value>,
    applied: Vec<String>,
    deleted: Vec<String>,
    secret_published: Option<usize>,
}

/// A resource the Composition lists, resolved.
struct Planned {
    resource_name: String,
    desired: Value,
    ar: ApiResource,
    name: String,
    readiness: Readiness,
    live: Option<DynamicObject>,
}

/// Whether resourceVersion `a` is newer than `b`. Resource versions are opaque to clients in
/// general, but the API server (etcd3) issues them as increasing integers; they are compared
/// only to tell whether a watch cache has caught up with a write paved itself made. Anything
/// unparseable counts as "not newer", i.e. the cache is trusted (at worst one redundant write).
pub(crate) fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

/// Whether `a` is a newer version of the object than `b` (see [`newer`]).
fn fresher<K: Resource>(a: &K, b: &K) -> bool {
    match (
        a.meta().resource_version.as_deref(),
        b.meta().resource_version.as_deref(),
    ) {
        (Some(a), Some(b)) => newer(a, b),
        _ => false,
    }
}

/// Two statuses say the same thing: conditions compared without lastTransitionTime (which
/// [`set_condition`] keeps anyway, but its precision may differ after a round trip).
pub(crate) fn same_status(a: &PostgreSQLInstanceStatus, b: &PostgreSQLInstanceStatus) -> bool {
    let strip = |s: &PostgreSQLInstanceStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        s.conditions.sort_by(|x, y| x.type_.cmp(&y.type_));
        s
    };
    a == b || strip(a) == strip(b)
}

fn describe(resource: &str, kind: &str, ns: &str, name: &str) -> String {
    format!("{resource} ({kind} {ns}/{name})")
}

fn owner_reference(claim: &Claim, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: Claim::api_version(&()).into_owned(),
        kind: Claim::kind(&()).into_owned(),
        name: claim.name_any(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn dyn_api(client: &Client, ar: &ApiResource, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, ar)
}

/// The reconcile entry point.
#[instrument(skip_all, fields(claim = %format!("{}/{}", claim.namespace().unwrap_or_default(), claim.name_any())))]
pub(crate) async fn reconcile(claim: Arc<Claim>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = claim
        .namespace()
        .ok_or(Error::InvalidClaim("metadata.namespace"))?;
    let name = claim.name_any();
    let result = if claim.meta().deletion_timestamp.is_some() {
        cleanup(&claim, &ctx, &ns).await
    } else {
        apply(&claim, &ctx, &ns).await
    };
    ctx.metrics
        .reconciled(result.as_ref().err().map(Error::reason));
    match &result {
        Ok(_) => ctx.reset_backoff(&ns, &name),
        Err(e) => tracing::warn!(error = %e, reason = e.reason(), "reconcile failed"),
    }
    result
}

/// What to do after a failed reconcile: retry with per-claim exponential backoff.
pub(crate) fn error_policy(claim: Arc<Claim>, _err: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.next_backoff(&claim.namespace().unwrap_or_default(), &claim.name_any()))
}

async fn apply(claim: &Claim, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let api: Api<Claim> = Api::namespaced(ctx.client.clone(), ns);
    ensure_finalizer(claim, ctx, &api).await?;

    let outcome = compose(claim, ctx, ns).await;
    let generation = claim.meta().generation;
    let old = ctx.live_status(claim);
    let mut status = old.clone();
    let now = Time(jiff::Timestamp::now());

    let result = match outcome {
        Ok(c) => {
            set_condition(
                &mut status.conditions,
                Condition::new(
                    SYNCED,
                    ConditionStatus::True,
                    "ReconcileSuccess",
                    "",
                    generation,
                ),
                &now,
            );
            let prev_ready = get_condition(&old.conditions, READY);
            let ready = if c.ready {
                Condition::new(READY, ConditionStatus::True, "Available", "", generation)
            } else {
                let was_available = prev_ready.is_some_and(|p| {
                    p.status == ConditionStatus::True || p.reason == "Unavailable"
                });
                let reason = if c.any_unavailable || was_available {
                    "Unavailable"
                } else {
                    "Creating"
                };
                Condition::new(
                    READY,
                    ConditionStatus::False,
                    reason,
                    c.not_ready.join("; "),
                    generation,
                )
            };
            set_condition(&mut status.conditions, ready, &now);
            status.composition_ref = Some(NameReference {
                name: c.composition.clone(),
            });
            status.resource_refs = c.refs.clone();
            status.extra = c.extra.clone();
            if c.secret_published.is_some() {
                status.connection_details = Some(ConnectionDetailsStatus {
                    last_published_time: Some(now.clone()),
                });
            }
            Ok(c)
        }
        Err(e) => {
            set_condition(
                &mut status.conditions,
                Condition::new(
                    SYNCED,
                    ConditionStatus::False,
                    "ReconcileError",
                    e.to_string(),
                    generation,
                ),
                &now,
            );
            if get_condition(&status.conditions, READY).is_none() {
                set_condition(
                    &mut status.conditions,
                    Condition::new(
                        READY,
                        ConditionStatus::False,
                        "Creating",
                        "nothing composed yet: see the Synced condition",
                        generation,
                    ),
                    &now,
                );
            }
            Err(e)
        }
    };

    write_status(claim, ctx, &api, &old, &status).await?;
    let error_reason = result.as_ref().err().map(Error::reason);
    emit_events(
        claim,
        ctx,
        &old,
        &status,
        result.as_ref().ok(),
        error_reason,
    )
    .await;
    observe_time_to_ready(claim, ctx, &old, &status);

    result.map(|_| Action::requeue(ctx.config.resync))
}

async fn ensure_finalizer(claim: &Claim, ctx: &Context, api: &Api<Claim>) -> Result<(), Error> {
    if claim.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    // A merge patch replaces the whole list: the resourceVersion makes it fail (409) rather
    // than drop a finalizer someone added meanwhile.
    let mut finalizers = claim.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": claim.resource_version()}});
    ctx.metrics.write("finalizer");
    api.patch(
        &claim.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .ctx(|| format!("adding finalizer {FINALIZER}"))?;
    Ok(())
}

async fn write_status(
    claim: &Claim,
    ctx: &Context,
    api: &Api<Claim>,
    old: &PostgreSQLInstanceStatus,
    new: &PostgreSQLInstanceStatus,
) -> Result<(), Error> {
    if same_status(old, new) {
        return Ok(());
    }
    let body = json!({
        "apiVersion": Claim::api_version(&()),
        "kind": Claim::kind(&()),
        "metadata": {"name": claim.name_any()},
        "status": new,
    });
    ctx.metrics.write("status");
    let written = api
        .patch_status(
            &claim.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .ctx(|| "writing the claim's status".to_string())?;
    ctx.note_status_written(claim, written.resource_version(), new);
    Ok(())
}

/// Events on the transitions a user cares about, and no more: on the happy path one when the
/// composed resources are first applied (naming the Composition) and one when the claim is Ready
/// (naming the connection Secret); warnings on errors and on becoming unavailable (de-duplicated:
/// only when the condition changes).
async fn emit_events(
    claim: &Claim,
    ctx: &Context,
    old: &PostgreSQLInstanceStatus,
    new: &PostgreSQLInstanceStatus,
    composed: Option<&Composed>,
    error_reason: Option<&'static str>,
) {
    let ready_old = get_condition(&old.conditions, READY);
    let ready_new = get_condition(&new.conditions, READY);
    let was_ready = ready_old.is_some_and(|r| r.status == ConditionStatus::True);
    let becomes_ready = !was_ready && ready_new.is_some_and(|r| r.status == ConditionStatus::True);
    let secret_name = || {
        claim
            .spec
            .write_connection_secret_to_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    if let Some(c) = composed {
        let reselected = old
            .composition_ref
            .as_ref()
            .is_some_and(|r| r.name != c.composition);
        if !c.applied.is_empty() {
            ctx.publish(
                claim,
                EventType::Normal,
                "ComposedResourcesApplied",
                format!(
                    "Applied {} (Composition {:?})",
                    c.applied.join(", "),
                    c.composition
                ),
            )
            .await;
        } else if reselected {
            ctx.publish(
                claim,
                EventType::Normal,
                "CompositionSelected",
                format!("Using Composition {:?}", c.composition),
            )
            .await;
        }
        if !c.deleted.is_empty() {
            ctx.publish(
                claim,
                EventType::Normal,
                "ComposedResourcesDeleted",
                format!(
                    "Deleted (no longer in the Composition) {}",
                    c.deleted.join(", ")
                ),
            )
            .await;
        }
        // A first publication is told by the Available event; a later one (new credentials,
        // new endpoint) gets its own.
        if let Some(n) = c.secret_published
            && !becomes_ready
        {
            ctx.publish(
                claim,
                EventType::Normal,
                "ConnectionSecretPublished",
                format!("Wrote {n} connection keys to Secret {:?}", secret_name()),
            )
            .await;
        }
    }
    let synced_old = get_condition(&old.conditions, SYNCED);
    let synced_new = get_condition(&new.conditions, SYNCED);
    if let Some(s) = synced_new {
        let changed = synced_old.is_none_or(|o| o.status != s.status || o.message != s.message);
        if changed && s.status == ConditionStatus::False {
            // The error's bounded category (CompositionNotFound, KindNotServed, ...).
            let reason = error_reason.unwrap_or("ReconcileError");
            ctx.publish(claim, EventType::Warning, reason, s.message.clone())
                .await;
        } else if changed && synced_old.is_some_and(|o| o.status == ConditionStatus::False) {
            ctx.publish(
                claim,
                EventType::Normal,
                "ReconcileSuccess",
                "Synced again".into(),
            )
            .await;
        }
    }
    if let Some(r) = ready_new {
        if becomes_ready {
            let note = match new.connection_details.as_ref() {
                Some(_) if claim.spec.write_connection_secret_to_ref.is_some() => format!(
                    "Every composed resource is ready; connection details are in Secret {:?}",
                    secret_name()
                ),
                _ => "Every composed resource is ready".into(),
            };
            ctx.publish(claim, EventType::Normal, "Available", note)
                .await;
        } else if r.status == ConditionStatus::False
            && r.reason == "Unavailable"
            && ready_old.is_none_or(|o| o.reason != "Unavailable")
        {
            ctx.publish(claim, EventType::Warning, "Unavailable", r.message.clone())
                .await;
        }
    }
}

fn observe_time_to_ready(
    claim: &Claim,
    ctx: &Context,
    old: &PostgreSQLInstanceStatus,
    new: &PostgreSQLInstanceStatus,
) {
    let was = get_condition(&old.conditions, READY);
    let is = get_condition(&new.conditions, READY);
    let first = was.is_none_or(|w| w.status != ConditionStatus::True && w.reason == "Creating");
    if first
        && is.is_some_and(|r| r.status == ConditionStatus::True)
        && let Some(created) = &claim.meta().creation_timestamp
    {
        let secs = jiff::Timestamp::now()
            .duration_since(created.0)
            .as_secs_f64();
        ctx.metrics.time_to_ready.observe(secs.max(0.0));
    }
}

/// Select, observe, render, apply, prune, publish.
async fn compose(claim: &Claim, ctx: &Context, ns: &str) -> Result<Composed, Error> {
    let uid = claim.uid().ok_or(Error::InvalidClaim("metadata.uid"))?;
    let claim_name = claim.name_any();
    let (composition, comp_json) = choose_composition(claim, ctx).await?;
    let comp_name = composition.name_any();

    // Observe what exists, by the names the Composition lists.
    let mut observed = BTreeMap::new();
    let mut lives: HashMap<String, DynamicObject> = HashMap::new();
    for (resource_name, api_version, kind) in listed_resources(&comp_json) {
        let (ar, caps) = ctx.resolve(&resource_name, &api_version, &kind).await?;
        if caps.scope != KubeScope::Namespaced {
            return Err(Error::ClusterScoped {
                resource: resource_name,
                api_version,
                kind,
            });
        }
        let name = engine::composed_name(&claim_name, &resource_name);
        ctx.watches.ensure_kind(&ar);
        let live = ctx.live_object(&ar, ns, &name).await?;
        if let Some(live) = live {
            let secret = read_connection_secret(ctx, ns, &live, &claim_name).await?;
            let object = serde_json::to_value(&live).unwrap_or_default();
            observed.insert(
                resource_name.clone(),
                ObservedResource {
                    object,
                    connection_secret: secret,
                },
            );
            lives.insert(resource_name, live);
        }
    }

    let claim_json = serde_json::to_value(claim).map_err(|_| Error::InvalidClaim("JSON form"))?;
    let output: RenderOutput = engine::render(&RenderInput {
        claim: &claim_json,
        composition_name: &comp_name,
        composition: &composition.spec,
        observed: &observed,
    })?;

    // Validate every rendered object before writing anything.
    let mut planned = Vec::with_capacity(output.resources.len());
    for r in &output.resources {
        let mut desired = r.desired.clone();
        diff::strip_for_apply(&mut desired);
        let field = |p: &str| {
            desired
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let rn = r.resource_name.clone();
        let api_version = field("/apiVersion").ok_or(Error::Incomplete {
            resource: rn.clone(),
            field: "apiVersion",
        })?;
        let kind = field("/kind").ok_or(Error::Incomplete {
            resource: rn.clone(),
            field: "kind",
        })?;
        let name = field("/metadata/name").ok_or(Error::Incomplete {
            resource: rn.clone(),
            field: "metadata.name",
        })?;
        match field("/metadata/namespace") {
            Some(other) if other != ns => {
                return Err(Error::WrongNamespace {
                    resource: rn,
                    namespace: other,
                    claim_namespace: ns.to_string(),
                });
            }
            _ => desired["metadata"]["namespace"] = Value::String(ns.to_string()),
        }
        let (ar, caps) = ctx.resolve(&rn, &api_version, &kind).await?;
        if caps.scope != KubeScope::Namespaced {
            return Err(Error::ClusterScoped {
                resource: rn,
                api_version,
                kind,
            });
        }
        let owner = serde_json::to_value(owner_reference(claim, &uid)).unwrap_or_default();
        desired["metadata"]["ownerReferences"] = Value::Array(vec![owner]);
        let live = match lives.remove(&rn) {
            Some(l) if l.name_any() == name && l.types.as_ref().is_some_and(|t| t.kind == kind) => {
                Some(l)
            }
            _ => {
                ctx.watches.ensure_kind(&ar);
                ctx.live_object(&ar, ns, &name).await?
            }
        };
        if let Some(l) = &live
            && !controlled_by(l.meta(), &uid)
        {
            {
                return Err(Error::NotControlled {
                    resource: rn,
                    kind,
                    namespace: ns.to_string(),
                    name,
                });
            }
        }
        if api_version == crate::api::instance::Instance::api_version(&())
            && kind == crate::api::instance::Instance::kind(&())
        {
            born_managed(&mut desired, live.as_ref(), ns, &name);
        }
        planned.push(Planned {
            resource_name: rn,
            desired,
            ar,
            name,
            readiness: r.readiness.clone(),
            live,
        });
    }

    // Apply what differs.
    let mut applied = Vec::new();
    let mut created = Vec::new();
    for p in &mut planned {
        ctx.watches.ensure_kind(&p.ar);
        let live_json = p.live.as_ref().and_then(|l| serde_json::to_value(l).ok());
        let managed = p
            .live
            .as_ref()
            .and_then(|l| l.meta().managed_fields.clone())
            .unwrap_or_default();
        // An object on its way out is left to finish: it is composed again once it is gone.
        let deleting = p
            .live
            .as_ref()
            .is_some_and(|l| l.metadata.deletion_timestamp.is_some());
        if !deleting && diff::needs_apply(&p.desired, live_json.as_ref(), &managed, FIELD_MANAGER) {
            ctx.metrics.write("apply");
            let res = dyn_api(&ctx.client, &p.ar, ns)
                .patch(
                    &p.name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&p.desired),
                )
                .await;
            if let Err(kube::Error::Api(s)) = &res
                && s.code == 404
            {
                ctx.forget_kind(&p.ar.api_version, &p.ar.kind);
            }
            let response = res.ctx(|| {
                format!(
                    "applying {}",
                    describe(&p.resource_name, &p.ar.kind, ns, &p.name)
                )
            })?;
            applied.push(describe(&p.resource_name, &p.ar.kind, ns, &p.name));
            ctx.note_applied(&p.ar, ns, &response);
            if p.live.is_none() {
                created.push(p.resource_name.clone());
            }
            p.live = Some(response);
        }
        if let Some(secret) = p
            .desired
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str)
        {
            ctx.watches.note_secret_reader(ns, secret, &claim_name);
        }
    }

    // Objects created just now: judge their readiness on what the API server answered rather
    // than "not observed yet", so that the status written now stays true when the watch
    // delivers them (one status write instead of two).
    if !created.is_empty() {
        for p in planned
            .iter()
            .filter(|p| created.contains(&p.resource_name))
        {
            if let Some(l) = &p.live {
                observed.insert(
                    p.resource_name.clone(),
                    ObservedResource {
                        object: serde_json::to_value(l).unwrap_or_default(),
                        connection_secret: BTreeMap::new(),
                    },
                );
            }
        }
        if let Ok(again) = engine::render(&RenderInput {
            claim: &claim_json,
            composition_name: &comp_name,
            composition: &composition.spec,
            observed: &observed,
        }) {
            for r in again.resources {
                if let Some(p) = planned.iter_mut().find(|p| {
                    p.resource_name == r.resource_name && created.contains(&p.resource_name)
                }) {
                    p.readiness = r.readiness;
                }
            }
        }
    }

    // Delete what the Composition no longer lists.
    let refs: Vec<ObjectReference> = planned
        .iter()
        .map(|p| ObjectReference {
            api_version: p.ar.api_version.clone(),
            kind: p.ar.kind.clone(),
            name: p.name.clone(),
            namespace: Some(ns.to_string()),
        })
        .collect();
    let previous = claim
        .status
        .as_ref()
        .map(|s| s.resource_refs.clone())
        .unwrap_or_default();
    let mut deleted = Vec::new();
    for old in previous.iter().filter(|o| !refs.contains(o)) {
        match delete_composed(ctx, ns, &uid, old).await {
            Ok(DeleteOutcome::Gone) => {}
            Ok(DeleteOutcome::Deleted | DeleteOutcome::Pending) => {
                deleted.push(format!("{} {}/{}", old.kind, ns, old.name));
            }
            Err(e) => return Err(e),
        }
    }

    let mut not_ready = Vec::new();
    let mut any_unavailable = false;
    for p in &planned {
        let what = describe(&p.resource_name, &p.ar.kind, ns, &p.name);
        match &p.readiness {
            Readiness::Ready => {}
            Readiness::NotReady { reason, message } => {
                // Prefer the object's own Ready condition (for an Instance: what RDS says), as
                // `kubectl describe` of the object would show it.
                let own = p.live.as_ref().and_then(|l| own_ready_condition(&l.data));
                let (reason, message) = own.unwrap_or((reason.clone(), message.clone()));
                any_unavailable |= reason == "Unavailable";
                if message.is_empty() {
                    not_ready.push(format!("{what}: {reason}"));
                } else {
                    not_ready.push(format!("{what}: {reason}: {message}"));
                }
            }
            Readiness::NotObserved => not_ready.push(format!("{what}: Creating: not observed yet")),
        }
    }
    // Publish the connection Secret once every composed resource is ready, and keep it current
    // afterwards. Before that, an endpoint that takes no connections yet would only mislead (and
    // publishing early costs a status write and an Event per claim when the Secret's watch
    // overtakes the Instance's).
    let ready = output.ready && not_ready.is_empty();
    let published_before = ctx.live_status(claim).connection_details.is_some();
    let write = ready || published_before;
    // The claim's spec changed since it was last synced: a connection Secret it published under
    // a name it no longer asks for (writeConnectionSecretToRef renamed or removed) is deleted.
    let spec_changed = get_condition(&ctx.live_status(claim).conditions, SYNCED)
        .is_some_and(|s| s.observed_generation != claim.meta().generation);
    if spec_changed {
        delete_stale_secrets(claim, ctx, ns, &uid, &refs).await?;
    }
    let secret_published =
        publish_secret(claim, ctx, ns, &uid, &output.connection_details, write).await?;

    let extra = output
        .claim_status
        .iter()
        .filter(|(k, _)| !OWN_STATUS_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    Ok(Composed {
        composition: comp_name,
        refs,
        ready,
        not_ready,
        any_unavailable,
        extra,
        applied,
        deleted,
        secret_published,
    })
}

/// Instances paved composes are created with what the RDS controller would otherwise add in a
/// write of its own before its first AWS call: its finalizer and the `crossplane.io/external-name`
/// it derives (from namespace and name, when Create is allowed). That saves one write per
/// Instance; both controllers derive the same identifier. An external name the Composition sets,
/// or the live object already carries, is kept. A deleting object gets no new finalizer.
fn born_managed(desired: &mut Value, live: Option<&DynamicObject>, ns: &str, name: &str) {
    use crate::rds::reconcile::{EXTERNAL_NAME, FINALIZER as RDS_FINALIZER, Policies};
    let create_allowed = match desired.pointer("/spec/managementPolicies") {
        None | Some(Value::Null) => true,
        Some(v) => serde_json::from_value::<Vec<crate::api::instance::ManagementAction>>(v.clone())
            .ok()
            .and_then(|p| Policies::parse(Some(&p)).ok())
            .is_some_and(|p| p.create),
    };
    let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let wanted = meta
        .get("annotations")
        .and_then(|a| a.get(EXTERNAL_NAME))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !wanted {
        let id = live
            .and_then(|l| l.annotations().get(EXTERNAL_NAME))
            .filter(|s| !s.is_empty())
            .cloned()
            .or_else(|| create_allowed.then(|| crate::rds::naming::derive_identifier(ns, name)));
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let (Some(id), Some(a)) = (id, annotations.as_object_mut()) {
            a.insert(EXTERNAL_NAME.to_string(), Value::String(id));
        }
    }
    if live.is_some_and(|l| l.metadata.deletion_timestamp.is_some()) {
        return;
    }
    let finalizers = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(f) = finalizers.as_array_mut()
        && !f.iter().any(|v| v.as_str() == Some(RDS_FINALIZER))
    {
        f.push(Value::String(RDS_FINALIZER.to_string()));
    }
}

/// The (reason, message) of an object's own `Ready` condition when it is not `True`.
fn own_ready_condition(data: &Value) -> Option<(String, String)> {
    let conditions = data.pointer("/status/conditions")?.as_array()?;
    let ready = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(READY))?;
    if ready.get("status").and_then(Value::as_str) == Some("True") {
        return None;
    }
    let s = |k: &str| {
        ready
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let reason = s("reason");
    (!reason.is_empty()).then(|| (reason, s("message")))
}

/// Select the Composition and return it with its JSON form.
async fn choose_composition(
    claim: &Claim,
    ctx: &Context,
) -> Result<(Arc<Composition>, Value), Error> {
    // Never `Store::wait_until_ready` here: concurrent waiters lose wake-ups (see
    // `super::mark_synced`).
    let _ = ctx.compositions_synced.clone().wait_for(|v| *v).await;
    let all = ctx.compositions.state();
    let jsons: Vec<(Arc<Composition>, Value)> = all
        .into_iter()
        .map(|c| {
            (
                Arc::clone(&c),
                serde_json::to_value(&*c).unwrap_or_default(),
            )
        })
        .collect();
    let candidates: Vec<Candidate> = jsons
        .iter()
        .filter_map(|(_, j)| Candidate::from_json(j))
        .collect();
    let choice = ClaimChoice {
        reference: claim.spec.composition_ref.as_ref().map(|r| r.name.as_str()),
        selector: claim
            .spec
            .composition_selector
            .as_ref()
            .map(|s| &s.match_labels),
        recorded: claim
            .status
            .as_ref()
            .and_then(|s| s.composition_ref.as_ref())
            .map(|r| r.name.as_str()),
    };
    let chosen = select::select(&choice, &candidates)?.name.clone();
    jsons
        .into_iter()
        .find(|(c, _)| c.name_any() == chosen)
        .ok_or(Error::Select(select::SelectError::RefNotFound {
            name: chosen,
            candidates: vec![],
        }))
}

/// (resource name, base apiVersion, base kind) of every resource the Composition lists.
fn listed_resources(comp: &Value) -> Vec<(String, String, String)> {
    let Some(resources) = comp.pointer("/spec/resources").and_then(Value::as_array) else {
        return vec![];
    };
    resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = |p: &str| {
                r.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let name = r
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(format!("resource-{i}"));
            (name, s("/base/apiVersion"), s("/base/kind"))
        })
        .collect()
}

/// The data of a composed object's connection Secret (same namespace only), and remember that
/// this claim reads it.
async fn read_connection_secret(
    ctx: &Context,
    ns: &str,
    live: &DynamicObject,
    claim_name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let Some(r) = live.data.pointer("/spec/writeConnectionSecretToRef") else {
        return Ok(BTreeMap::new());
    };
    let Some(name) = r.get("name").and_then(Value::as_str) else {
        return Ok(BTreeMap::new());
    };
    if r.get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|n| n != ns)
    {
        // Never read Secrets across namespaces.
        return Ok(BTreeMap::new());
    }
    ctx.watches.note_secret_reader(ns, name, claim_name);
    // Connection Secrets of the objects paved reconciles carry paved's label: the cache has
    // them. Another controller's may not: read those directly, once the object says it is
    // Ready (its Secret is expected then; a not-ready object's absent Secret costs no GET).
    let ready = live
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(READY)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        });
    let secret = ctx.live_secret(ns, name, ready).await?;
    Ok(secret
        .and_then(|s| s.data)
        .map(|d| d.into_iter().map(|(k, v)| (k, v.0)).collect())
        .unwrap_or_default())
}

/// Write the claim's connection Secret when its content differs (with `write`; without it only
/// check that the name is not taken by a Secret paved does not own). Returns the number of keys
/// when written.
async fn publish_secret(
    claim: &Claim,
    ctx: &Context,
    ns: &str,
    uid: &str,
    details: &BTreeMap<String, Vec<u8>>,
    write: bool,
) -> Result<Option<usize>, Error> {
    let Some(target) = &claim.spec.write_connection_secret_to_ref else {
        return Ok(None);
    };
    if details.is_empty() {
        // Nothing to publish yet; never blank out credentials that were published before.
        return Ok(None);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    // A cache miss may be a Secret paved does not own (no label): check with a GET, so it is
    // never overwritten.
    let live = ctx.live_secret(ns, &target.name, true).await?;
    let desired_data: BTreeMap<String, ByteString> = details
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect();
    if let Some(live) = &live {
        if !controlled_by(&live.metadata, uid) {
            return Err(Error::SecretNotOwned {
                namespace: ns.to_string(),
                name: target.name.clone(),
            });
        }
        let labelled =
            live.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE);
        if labelled && live.data.as_ref() == Some(&desired_data) {
            return Ok(None);
        }
    }
    if !write {
        return Ok(None);
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": target.name,
            "namespace": ns,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "ownerReferences": [owner_reference(claim, uid)],
        },
        "type": "Opaque",
        "data": desired_data,
    });
    ctx.metrics.write("secret");
    let written = api
        .patch(
            &target.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .ctx(|| format!("writing connection Secret {ns}/{}", target.name))?;
    ctx.note_secret_written(ns, &written);
    Ok(Some(details.len()))
}

/// Delete the connection Secrets this claim controls other than the one its spec names now
/// (and other than Secrets its Composition composes, listed in `composed`).
async fn delete_stale_secrets(
    claim: &Claim,
    ctx: &Context,
    ns: &str,
    uid: &str,
    composed: &[ObjectReference],
) -> Result<(), Error> {
    let current = claim
        .spec
        .write_connection_secret_to_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let Some(owned) = ctx.watches.cached_secrets_controlled_by(ns, uid).await else {
        return Ok(());
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    for s in owned {
        let name = s.name_any();
        let is_composed = composed
            .iter()
            .any(|r| r.api_version == "v1" && r.kind == "Secret" && r.name == name);
        if Some(name.as_str()) == current || is_composed {
            continue;
        }
        ctx.metrics.write("secret_delete");
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: s.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {
                ctx.publish(
                    claim,
                    EventType::Normal,
                    "ConnectionSecretDeleted",
                    format!(
                        "Deleted Secret {name:?}: spec.writeConnectionSecretToRef no longer names it"
                    ),
                )
                .await;
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e).ctx(|| format!("deleting Secret {ns}/{name}")),
        }
    }
    Ok(())
}

enum DeleteOutcome {
    /// Not there (or not ours, or its kind is no longer served).
    Gone,
    /// Deleted now.
    Deleted,
    /// Deletion requested; finalizers still hold it.
    Pending,
}

async fn delete_composed(
    ctx: &Context,
    ns: &str,
    uid: &str,
    r: &ObjectReference,
) -> Result<DeleteOutcome, Error> {
    let (ar, _) = match ctx.resolve(&r.name, &r.api_version, &r.kind).await {
        Ok(found) => found,
        Err(Error::KindNotServed { .. }) => return Ok(DeleteOutcome::Gone),
        Err(e) => return Err(e),
    };
    ctx.watches.ensure_kind(&ar);
    let api = dyn_api(&ctx.client, &ar, ns);
    let Some(live) = api
        .get_opt(&r.name)
        .await
        .ctx(|| format!("reading {} {ns}/{}", r.kind, r.name))?
    else {
        return Ok(DeleteOutcome::Gone);
    };
    if !controlled_by(live.meta(), uid) {
        tracing::info!(kind = %r.kind, name = %r.name, "not controlled by this claim; leaving it alone");
        return Ok(DeleteOutcome::Gone);
    }
    if live.meta().deletion_timestamp.is_some() {
        return Ok(DeleteOutcome::Pending);
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: live.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    ctx.metrics.write("delete");
    match api.delete(&r.name, &dp).await {
        Ok(either) => Ok(if either.is_left() {
            DeleteOutcome::Pending
        } else {
            DeleteOutcome::Deleted
        }),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(DeleteOutcome::Gone),
        Err(e) => Err(e).ctx(|| format!("deleting {} {ns}/{}", r.kind, r.name)),
    }
}

/// The claim is being deleted: delete what was composed for it and its connection Secret, then
/// release the finalizer (at once with Background, after everything is gone with Foreground).
async fn cleanup(claim: &Claim, ctx: &Context, ns: &str) -> Result<Action, Error> {
    if !claim.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let api: Api<Claim> = Api::namespaced(ctx.client.clone(), ns);
    let uid = claim.uid().ok_or(Error::InvalidClaim("metadata.uid"))?;
    let name = claim.name_any();

    let mut refs: Vec<ObjectReference> = claim
        .status
        .as_ref()
        .map(|s| s.resource_refs.clone())
        .unwrap_or_default();
    // Also what the Composition lists, in case a status write was lost after an apply.
    if let Ok((_, comp)) = choose_composition(claim, ctx).await {
        for (resource_name, api_version, kind) in listed_resources(&comp) {
            let r = ObjectReference {
                api_version,
                kind,
                name: engine::composed_name(&name, &resource_name),
                namespace: Some(ns.to_string()),
            };
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }

    let mut pending = Vec::new();
    for r in &refs {
        // Our last apply's response is of no use once the claim goes.
        ctx.forget_recent_object(&(
            r.api_version.clone(),
            r.kind.clone(),
            ns.to_string(),
            r.name.clone(),
        ));
        match delete_composed(ctx, ns, &uid, r).await? {
            DeleteOutcome::Gone | DeleteOutcome::Deleted => {}
            DeleteOutcome::Pending => pending.push(format!("{} {ns}/{}", r.kind, r.name)),
        }
    }
    if let Some(target) = &claim.spec.write_connection_secret_to_ref {
        ctx.forget_recent_secret(&(ns.to_string(), target.name.clone()));
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        if let Some(s) = secrets
            .get_opt(&target.name)
            .await
            .ctx(|| format!("reading Secret {ns}/{}", target.name))?
            && controlled_by(&s.metadata, &uid)
        {
            {
                ctx.metrics.write("secret_delete");
                match secrets.delete(&target.name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(e).ctx(|| format!("deleting Secret {ns}/{}", target.name));
                    }
                }
            }
        }
    }

    let policy = claim.spec.composite_delete_policy.unwrap_or_default();
    if policy == CompositeDeletePolicy::Foreground && !pending.is_empty() {
        let old = ctx.live_status(claim);
        let mut status = old.clone();
        let now = Time(jiff::Timestamp::now());
        let msg = format!(
            "waiting for composed resources to be deleted: {}",
            pending.join(", ")
        );
        set_condition(
            &mut status.conditions,
            Condition::new(
                READY,
                ConditionStatus::False,
                "Deleting",
                msg,
                claim.meta().generation,
            ),
            &now,
        );
        write_status(claim, ctx, &api, &old, &status).await?;
        // The composed kinds are watched: their disappearance wakes this claim. The requeue is a
        // safety net only.
        return Ok(Action::requeue(Duration::from_secs(30)));
    }

    remove_finalizer(claim, ctx, &api).await?;
    ctx.watches.forget_claim(ns, &name);
    ctx.forget_claim(claim);
    Ok(Action::await_change())
}

async fn remove_finalizer(claim: &Claim, ctx: &Context, api: &Api<Claim>) -> Result<(), Error> {
    let Some(i) = claim.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let mut finalizers = claim.finalizers().to_vec();
    finalizers.remove(i);
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": claim.resource_version()}});
    ctx.metrics.write("finalizer");
    match api
        .patch(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e).ctx(|| format!("removing finalizer {FINALIZER}")),
    }
}
