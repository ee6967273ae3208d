//! Objects kept as compact JSON text, for caches that hold many objects read only now and then
//! (the claim controller's composed objects and claims, and paved's Secrets).

use std::borrow::Cow;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use kube::Resource;
use kube::api::{ApiResource, DynamicObject, ObjectMeta};
use kube::core::{DynamicResourceScope, TypeMeta};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::object_metrics::{State, states_of_json};

/// An object as a compact cache holds it: its type, the few metadata fields the watches and
/// the reflector read, and the whole (slimmed) object as compact JSON text, from which
/// [`CompactObject::to_dynamic`] rebuilds the `DynamicObject` when a reconcile reads it.
///
/// Why: a `DynamicObject`'s body is a `serde_json::Value` tree in which every non-empty JSON
/// object is a `BTreeMap` whose leaf node takes ~600 bytes even for one or two keys, and the
/// kept managedFields Apply entry (`fieldsV1`) is a deep tree of such small maps. A heap profile
/// (heaptrack, 500 claims) showed ~20 KB per cached RDS `Instance`, half of paved's heap. A
/// slimmed Instance of the seed Composition takes 14.8 KB of allocations as a `DynamicObject`
/// and 1.9 KB as compact JSON text (~2.6 KB with the fields below). Rebuilding one costs a
/// parse of those few KB, and happens only when a reconcile reads the object.
///
/// [`Resource::meta`] of a `CompactObject` is partial: name, namespace, uid, resourceVersion and
/// ownerReferences only (what `ObjectRef`, the owner lookups and the freshness checks of the
/// reconciles read). Everything else is in the rebuilt object.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactObject {
    pub(crate) types: Option<TypeMeta>,
    metadata: ObjectMeta,
    /// The whole object (types and metadata included) as compact JSON. Empty if serialising
    /// failed (it should not): then it does not rebuild, and readers fall back to a GET.
    pub(crate) json: Arc<str>,
    /// A claim's (Ready, Synced), read from its status when it was cached: what the
    /// `paved_objects` gauge counts at scrape time without rebuilding every claim. `None` for
    /// composed objects.
    states: Option<(State, State)>,
}

impl CompactObject {
    /// The compact form of an object (already slimmed by the caller, see [`super::meta::slim`]).
    pub fn new(obj: DynamicObject) -> Self {
        Self::build(obj, false)
    }

    /// The compact form of a claim: its whole (slimmed) metadata stays typed, because the claim
    /// watch's predicate and the reconcile's error policy read generation, labels, annotations,
    /// finalizers and deletionTimestamp from the cached object; only the body is text. A claim
    /// of the seed's shape with its status took ~7.7 KB of heap as a `DynamicObject` (heaptrack,
    /// 500 claims: 3.9 MB), the regression measured at N=1000 when claims became dynamic.
    pub fn with_metadata(obj: DynamicObject) -> Self {
        Self::build(obj, true)
    }

    fn build(obj: DynamicObject, whole_metadata: bool) -> Self {
        let states = whole_metadata
            .then(|| states_of_json(obj.data.get("status").unwrap_or(&serde_json::Value::Null)));
        let json = text_of(&obj, &obj.metadata);
        let DynamicObject {
            types, metadata, ..
        } = obj;
        if whole_metadata {
            return Self {
                types,
                metadata,
                json,
                states,
            };
        }
        Self {
            types,
            metadata: ObjectMeta {
                name: metadata.name,
                namespace: metadata.namespace,
                uid: metadata.uid,
                resource_version: metadata.resource_version,
                owner_references: metadata.owner_references,
                ..ObjectMeta::default()
            },
            json,
            states,
        }
    }

    /// A claim's (Ready, Synced) when it was cached (see [`CompactObject::with_metadata`]).
    pub fn states(&self) -> (State, State) {
        self.states.unwrap_or((State::Unknown, State::Unknown))
    }

    /// The full object again.
    pub fn to_dynamic(&self) -> Result<DynamicObject, serde_json::Error> {
        self.to_typed()
    }

    /// The full object again, as the typed kind it is (a Secret of the Secret cache).
    pub fn to_typed<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

impl Resource for CompactObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::group(dt)
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::version(dt)
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::kind(dt)
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::api_version(dt)
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `obj` as compact JSON text; empty (it does not rebuild, so readers fall back to the API
/// server) if it does not serialise, which it should not.
fn text_of(obj: &impl Serialize, meta: &ObjectMeta) -> Arc<str> {
    match serde_json::to_string(obj) {
        Ok(j) => j.into(),
        Err(e) => {
            tracing::warn!(object = %format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default()), error = %e, "object does not serialise; it will be read from the API server");
            Arc::from("")
        }
    }
}

/// What a compact cache of typed objects keeps of each beside its text: the few facts its
/// readers need without rebuilding the object (for the managed controllers: the conditions'
/// states the gauge counts, the ProviderConfig a change of which wakes the object).
pub trait Facts {
    type Of: Clone + Debug + Send + Sync + 'static;
    fn facts(&self) -> Self::Of;
}

/// A typed object as a compact cache holds it: name, namespace, uid and resourceVersion typed
/// (what `ObjectRef`, the reconcile's key and its freshness check read), its [`Facts`], and the
/// whole object as compact JSON text, which [`Compact::get`] rebuilds.
///
/// Why: a typed object keeps every field it could have inline, set or not, and each small map
/// of its metadata as a `BTreeMap` node. A managed RDS `Instance` is 2 KB inline before any of
/// its strings, maps and conditions; its text is about as long as the fields it has set.
pub struct Compact<K: Facts> {
    metadata: ObjectMeta,
    json: Arc<str>,
    facts: K::Of,
    kind: PhantomData<fn() -> K>,
}

impl<K: Facts> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            json: Arc::clone(&self.json),
            facts: self.facts.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Facts> Debug for Compact<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compact")
            .field("metadata", &self.metadata)
            .field("facts", &self.facts)
            .field("json", &self.json.len())
            .finish()
    }
}

impl<K: Facts + Resource + Serialize> Compact<K> {
    /// The compact form of `obj` (already slimmed, see [`super::meta::slim`]).
    pub fn new(obj: K) -> Self {
        let facts = obj.facts();
        let meta = obj.meta();
        let json = text_of(&obj, meta);
        Self {
            metadata: ObjectMeta {
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..ObjectMeta::default()
            },
            json,
            facts,
            kind: PhantomData,
        }
    }
}

impl<K: Facts> Compact<K> {
    /// The facts kept beside the text.
    pub fn facts(&self) -> &K::Of {
        &self.facts
    }
}

impl<K: Facts + DeserializeOwned> Compact<K> {
    /// The whole object again (`Err`: the text does not rebuild; the caller reads the API
    /// server).
    pub fn get(&self) -> Result<K, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// A compact object reads as its kind's JSON: kube-runtime's `Controller` asks its kind to be
/// deserialisable, though paved feeds it a stream and never has it decode one.
impl<'de, K: Facts + Resource + Serialize + DeserializeOwned> Deserialize<'de> for Compact<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::deserialize(d).map(Compact::new)
    }
}

impl<K: Facts + Resource<DynamicType = ()>> Resource for Compact<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
