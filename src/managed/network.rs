//! What the network kinds (SubnetGroup, ParameterGroup, SecurityGroup, SecurityGroupRule) share
//! on the lifecycle: their guarded AWS clients (cached per ProviderConfig and region, built
//! from the same resolved settings as the RDS client), their batched listings, ownership tags,
//! and writing resolved references into the spec.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};

use crate::api::managed::{OWNER_TAG, OWNER_UID_TAG};
use crate::api::twin::Base;

use super::client::{SdkRds, StaticCredentials, TokenBucket};
use super::config::FIELD_MANAGER;
use super::ec2_client::SdkEc2;
use super::error::{Error, key_of, kube_err};
use super::guard::{Guard, Guarded};
use super::kind::ExternalClient;
use super::lifecycle::Flow;
use super::listing::{Listing, Listings};
use super::outcome::{Blocked, Outcome, Step, pass_on};
use super::parameter_group::DbParameterGroup;
use super::resolve::Resolved;
use super::security_group::Ec2SecurityGroup;
use super::security_group_rule::Ec2Rule;
use super::subnet_group::DbSubnetGroup;

/// How long a client is kept before it is rebuilt (re-reading credential Secrets).
const CLIENT_TTL: Duration = Duration::from_secs(15 * 60);

/// Half the retry of a deletion that AWS refuses because something still uses the resource.
/// (An object waiting for a reference is woken when its target changes, see
/// `super::controller`, and otherwise looks again at the poll interval.)
pub const REFERENCE_RETRY: Duration = Duration::from_secs(5);

/// What [`super::controller::Ctx::provider_settings`] resolves.
pub(crate) struct ProviderSettings {
    pub key_name: String,
    pub version: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: Option<StaticCredentials>,
    pub bucket: Arc<TokenBucket>,
}

/// The guarded clients of one (ProviderConfig, region).
pub(crate) struct NetClients {
    pub rds: Guarded<SdkRds>,
    pub ec2: Guarded<SdkEc2>,
}

struct Cached {
    version: String,
    built: Instant,
    clients: Arc<NetClients>,
}

/// Shared by every controller of the network kinds.
#[derive(Default)]
pub(crate) struct NetShared {
    clients: Mutex<HashMap<(String, String), Cached>>,
    pub subnet_groups: Listings<DbSubnetGroup>,
    pub parameter_groups: Listings<DbParameterGroup>,
    pub security_groups: Listings<Ec2SecurityGroup>,
    pub rules: Listings<Ec2Rule>,
    /// Tags of RDS groups by ARN (their describes do not carry them): read once, then known.
    pub rds_tags: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// When each parameter group's parameters were last read and brought to its spec (or, for
    /// a group first seen unchanged, when paved first saw it), by ARN: see
    /// [`super::parameter_group::parameters_due`].
    pub parameters_read: Mutex<HashMap<String, Instant>>,
}

/// The AWS side of one network object: its clients and the listings of its placement.
pub(crate) struct Net {
    pub clients: Arc<NetClients>,
    pub subnet_groups: Arc<Listing<DbSubnetGroup>>,
    pub parameter_groups: Arc<Listing<DbParameterGroup>>,
    pub security_groups: Arc<Listing<Ec2SecurityGroup>>,
    pub rules: Arc<Listing<Ec2Rule>>,
}

/// The network clients and listings of the object of `flow`, or Synced=False with why there
/// are none (the ProviderConfig is missing or unusable).
pub(crate) async fn net_for<K: ExternalClient>(flow: &mut Flow<'_, K>) -> Result<Step<Net>, Error> {
    let s = match flow.ctx.provider_settings(&flow.obj).await? {
        Outcome::Ok(s) => s,
        Outcome::Blocked(b) => {
            let poll = flow.poll();
            return Ok(flow.block(b, kube::runtime::controller::Action::requeue(poll)));
        }
    };
    let shared = &flow.ctx.shared;
    let key = (s.key_name.clone(), s.region.clone());
    let cached = {
        let m = shared.net.clients.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&key)
            .filter(|c| c.version == s.version && c.built.elapsed() < CLIENT_TTL)
            .map(|c| c.clients.clone())
    };
    let clients = match cached {
        Some(c) => c,
        None => {
            let config = super::client::sdk_config(
                shared.http.clone(),
                &s.region,
                s.endpoint.as_deref(),
                s.credentials.clone(),
                shared.config.aws_timeout,
            )
            .await;
            let guard = Guard {
                bucket: s.bucket.clone(),
                metrics: shared.metrics.clone(),
                retry: shared.config.retry,
            };
            let clients = Arc::new(NetClients {
                rds: Guarded {
                    inner: SdkRds::new(&config),
                    guard: guard.clone(),
                },
                ec2: Guarded {
                    inner: SdkEc2::new(&config),
                    guard,
                },
            });
            shared
                .net
                .clients
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    key.clone(),
                    Cached {
                        version: s.version.clone(),
                        built: Instant::now(),
                        clients: clients.clone(),
                    },
                );
            clients
        }
    };
    let (pc, region) = (&key.0, &key.1);
    Ok(Step::Go(Net {
        clients,
        subnet_groups: shared.net.subnet_groups.get(pc, region),
        parameter_groups: shared.net.parameter_groups.get(pc, region),
        security_groups: shared.net.security_groups.get(pc, region),
        rules: shared.net.rules.get(pc, region),
    }))
}

/// The ownership tags of an object ([`super::kind::owner_tags`], the same for every kind), with
/// its forProvider tags.
pub(crate) fn tags_of<K: super::kind::Kind>(
    obj: &K,
    spec_tags: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut t = spec_tags.cloned().unwrap_or_default();
    t.extend(super::kind::owner_tags(obj));
    t
}

pub(crate) use super::kind::owned_by;

/// Whose the external resource is, in words (never naming another object).
pub(crate) fn owner_words<R: Resource>(obj: &R, tags: &BTreeMap<String, String>) -> String {
    match tags.get(OWNER_TAG) {
        Some(o) if *o == key_of(obj) => format!(
            "it was created for an earlier object named {o} (UID {}), not this one",
            tags.get(OWNER_UID_TAG).cloned().unwrap_or_default()
        ),
        Some(_) => "it belongs to another object".into(),
        None => "it was not created by paved".into(),
    }
}

/// Refuse a reference or selector that names another namespace than the object's (the
/// namespaced twins' schema has the field): paved resolves references only in the object's own
/// namespace, so one team's object never reads another's. `Some`: the step to return.
pub(crate) fn refuse_foreign_refs<K: ExternalClient>(flow: &mut Flow<'_, K>) -> Option<Step<()>> {
    let own = flow.obj.namespace().unwrap_or_default();
    let obj = serde_json::to_value(&flow.obj).ok()?;
    let (field, ns) = crate::api::twin::foreign_reference(obj.pointer("/spec/forProvider")?, &own)?;
    let b = Blocked::new(
        "CrossNamespaceReference",
        format!(
            "{field} names namespace {ns:?}: paved resolves references only in this object's namespace {own:?}; nothing was looked up"
        ),
    );
    Some(flow.block(b, kube::runtime::controller::Action::await_change()))
}

/// Apply what reference resolution gave: write the resolved fields into spec.forProvider (one
/// merge patch, before any AWS call; the returned object replaces the flow's), or wait with
/// Synced=False naming what the object waits for.
pub(crate) async fn apply_resolution<K: ExternalClient>(
    flow: &mut Flow<'_, K>,
    resolved: Result<Resolved, kube::Error>,
) -> Result<Step<()>, Error> {
    let fields: Map<String, Value> = match resolved {
        Err(e) => {
            return Err(kube_err(
                "listing the objects its references name",
                &flow.obj,
            )(e));
        }
        Ok(Resolved::Unchanged) => return Ok(Step::Go(())),
        Ok(Resolved::Wait(w)) => {
            flow.set(
                crate::api::common::READY,
                crate::api::common::ConditionStatus::False,
                "Unavailable",
                w.message.clone(),
            );
            let b = Blocked::new(super::refs::Waiting::REASON, w.message);
            // Woken when what it waits for changes; the poll is the fallback (a missed wake).
            let poll = flow.poll();
            return Ok(flow.block(b, kube::runtime::controller::Action::requeue(poll)));
        }
        Ok(Resolved::Write(f)) => f,
    };
    flow.count_write(&format!("{}_spec", K::METRIC));
    let patch = json!({"spec": {"forProvider": Value::Object(fields)}});
    let written = flow
        .api
        .patch(
            &flow.obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(kube_err(
            "writing resolved references into the spec",
            &flow.obj,
        ))?;
    flow.obj = written;
    Ok(Step::Go(()))
}

/// The network clients for a deletion, or how the deletion ends for now (the ProviderConfig is
/// missing or unusable: Synced=False, retried at the next poll).
pub(crate) async fn net_for_deletion<K: ExternalClient>(
    flow: &mut Flow<'_, K>,
) -> Result<Net, super::kind::Deletion> {
    use super::kind::Deletion;
    match net_for(flow).await {
        Ok(Step::Go(n)) => Ok(n),
        Ok(Step::Finish(a) | Step::Return(a)) => Err(Deletion::Finish(a)),
        Err(e) => {
            tracing::warn!(object = %flow.key, error = %e, "deleting");
            Err(Deletion::Finish(
                kube::runtime::controller::Action::requeue(flow.poll()),
            ))
        }
    }
}

/// What the lifecycle of a group kind (SubnetGroup, ParameterGroup, SecurityGroup) needs from
/// the kind's file: find its AWS object, delete it, forget it in the listing. Implemented once on
/// the kind; the kind and its namespaced twin (`K: Base<Self>`) share it. [`find_or_creatable`],
/// [`delete_owned`] and [`publish_ready`] do the rest, the same for every such kind.
pub(crate) trait NetGroup: super::kind::Kind + Sized {
    /// The AWS object as found.
    type Found: Send;
    /// Its AWS identifier and tags.
    fn id_and_tags(found: &Self::Found) -> (&str, &BTreeMap<String, String>);
    /// Look it up by the identifier the object manages.
    fn find<K: ExternalClient + Base<Self>>(
        flow: &Flow<'_, K>,
        net: &Net,
        id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Self::Found>, super::model::AwsError>> + Send;
    /// Delete it.
    fn remove(
        net: &Net,
        aws_id: &str,
    ) -> impl std::future::Future<Output = Result<(), super::model::AwsError>> + Send;
    /// Forget it in the listing once deleted.
    fn forget(net: &Net, aws_id: &str);
    /// Whether a missing object of this identifier may be created (a security group named by
    /// its `sg-` ID may not: only AWS gives IDs).
    fn creatable(_id: &str) -> bool {
        true
    }
}

/// What [`find_or_creatable`] found.
pub(crate) enum Lookup<F> {
    /// The AWS object (the clients are kept in `flow.state` for the update).
    Found(F),
    /// None, and creating one is allowed: the clients to create it with.
    Create(Net),
}

/// Find the AWS object `id` of a group kind, or say it may be created. Synced=False when the
/// clients are missing, AWS fails, or it is missing and may not be created (managementPolicies
/// exclude Create, or the identifier is one only AWS gives).
pub(crate) async fn find_or_creatable<B, K>(
    flow: &mut Flow<'_, K>,
    policies: &crate::api::managed::Policies,
    id: &str,
) -> Result<Step<Lookup<B::Found>>, Error>
where
    B: NetGroup,
    K: ExternalClient<State = Option<Net>> + Base<B>,
{
    let net = pass_on!(net_for(flow).await?);
    match B::find(flow, &net, id).await {
        Err(e) => Ok(flow.aws_failure(e)),
        Ok(Some(found)) => {
            flow.state = Some(net);
            Ok(Step::Go(Lookup::Found(found)))
        }
        Ok(None) if policies.create && B::creatable(id) => Ok(Step::Go(Lookup::Create(net))),
        Ok(None) => {
            let why = if policies.create {
                ""
            } else {
                ", and managementPolicies exclude Create"
            };
            let b = Blocked::new(
                "ExternalResourceMissing",
                format!("{} {id} does not exist{why}", K::NOUN),
            );
            let poll = flow.poll();
            Ok(flow.block(b, kube::runtime::controller::Action::requeue(poll)))
        }
    }
}

/// A group kind's object is in line with its spec: Ready=True, Synced=True (with `note`, drift
/// left alone because Update is not allowed, if any), looked at again at the poll interval.
pub(crate) fn publish_ready<K: ExternalClient>(
    flow: &mut Flow<'_, K>,
    note: Option<String>,
) -> kube::runtime::controller::Action {
    use crate::api::common::{ConditionStatus, READY};
    flow.set(READY, ConditionStatus::True, "Available", "");
    flow.succeeded();
    match note {
        Some(note) => flow.synced(true, "ObserveOnly", note),
        None => flow.synced(true, "ReconcileSuccess", ""),
    }
    kube::runtime::controller::Action::requeue(crate::kube::backoff::spread(flow.poll()))
}

/// Delete the AWS object `id` of a network kind when its tags prove it is this object's; leave
/// anyone else's alone. Gone already is deleted; still in use is Synced=False, retried.
pub(crate) async fn delete_owned<B: NetGroup, K: ExternalClient + Base<B>>(
    flow: &mut Flow<'_, K>,
    id: &str,
) -> super::kind::Deletion {
    use super::kind::Deletion;
    use super::model::ErrorClass;
    let net = match net_for_deletion(flow).await {
        Ok(n) => n,
        Err(d) => return d,
    };
    let found = match B::find(flow, &net, id).await {
        Ok(Some(f)) => f,
        Ok(None) => return Deletion::Release(format!("{} {id} is gone", K::NOUN)),
        Err(e) => return Deletion::Finish(flow.aws_failed(e, false)),
    };
    let (aws_id, tags) = B::id_and_tags(&found);
    let aws_id = aws_id.to_string();
    if !owned_by(&flow.obj, tags) {
        return Deletion::Release(format!(
            "{} {aws_id} is not this object's ({}): left alone",
            K::NOUN,
            owner_words(&flow.obj, tags)
        ));
    }
    match B::remove(&net, &aws_id).await {
        Ok(()) => {
            B::forget(&net, &aws_id);
            Deletion::Release(format!("deleted {} {aws_id}", K::NOUN))
        }
        Err(e) if e.class == ErrorClass::NotFound => {
            B::forget(&net, &aws_id);
            Deletion::Release(format!("{} {aws_id} is gone", K::NOUN))
        }
        Err(e) if super::guard::is_dependency_violation(&e) => {
            Deletion::Finish(still_in_use(flow, &aws_id, &e))
        }
        Err(e) => Deletion::Finish(flow.aws_failed(e, false)),
    }
}

/// A resource was refused deletion because something still uses it: Synced=False naming the
/// dependency (AWS's message), retried at the next poll.
pub(crate) fn still_in_use<K: ExternalClient>(
    flow: &mut Flow<'_, K>,
    id: &str,
    e: &super::model::AwsError,
) -> kube::runtime::controller::Action {
    flow.synced_refused(
        "DependencyViolation",
        &e.code,
        format!(
            "cannot delete {} {id} yet: {} says it is still in use: {} (retrying)",
            K::NOUN,
            e.operation,
            e.message
        ),
    );
    kube::runtime::controller::Action::requeue(REFERENCE_RETRY * 2)
}

/// The tags of an RDS group (`arn`), from the cache or ListTagsForResource.
pub(crate) async fn rds_tags(
    net: &Net,
    shared: &NetShared,
    arn: &str,
) -> Result<BTreeMap<String, String>, super::model::AwsError> {
    use super::subnet_group::SubnetGroupApi;
    if let Some(t) = shared
        .rds_tags
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(arn)
    {
        return Ok(t.clone());
    }
    let t = net.clients.rds.rds_tags(arn).await?;
    shared
        .rds_tags
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(arn.to_string(), t.clone());
    Ok(t)
}

/// The desired tags an external resource lacks or carries with another value (pure). Tags
/// that others put on it are left alone.
pub(crate) fn tags_to_add(
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    want.iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Bring an RDS group's tags (`have`, as observed) in line with the object's ownership and
/// forProvider tags (`spec_tags`) with one AddTagsToResource when they differ: a group
/// re-adopted from an orphaned predecessor gets this object's ownership tags. No call when
/// nothing differs.
pub(crate) async fn fix_rds_tags<K: ExternalClient>(
    flow: &Flow<'_, K>,
    net: &Net,
    arn: Option<&str>,
    have: &mut BTreeMap<String, String>,
    spec_tags: Option<&BTreeMap<String, String>>,
) -> Result<(), super::model::AwsError> {
    use super::subnet_group::SubnetGroupApi;
    let add = tags_to_add(have, &tags_of(&flow.obj, spec_tags));
    let Some(arn) = arn.filter(|_| !add.is_empty()) else {
        return Ok(());
    };
    net.clients.rds.add_rds_tags(arn, &add).await?;
    have.extend(add);
    know_rds_tags(&flow.ctx.shared.net, Some(arn), have);
    Ok(())
}

/// Remember the tags paved just put on an RDS group.
pub(crate) fn know_rds_tags(
    shared: &NetShared,
    arn: Option<&str>,
    tags: &BTreeMap<String, String>,
) {
    if let Some(arn) = arn {
        shared
            .rds_tags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(arn.to_string(), tags.clone());
    }
}

/// `ManagedObject` and `ManagedStatus` for a network kind, whose spec and status have the same
/// shape as the Instance's; with its noun, metric label, identifier prefix and identifier rule,
/// its `Kind` too.
macro_rules! managed_kind {
    (
        $kind:ty, $status:ty,
        noun: $noun:literal, metric: $metric:literal, prefix: $prefix:literal, check: $check:path
    ) => {
        $crate::managed::network::managed_kind!($kind, $status);

        impl $crate::managed::kind::Kind for $kind {
            type Status = $status;
            const NOUN: &'static str = $noun;
            const METRIC: &'static str = $metric;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn region(&self) -> &str {
                &self.spec.for_provider.region
            }
            fn derive_identifier(&self) -> String {
                use kube::ResourceExt;
                let id = $crate::api::instance::derive_identifier(
                    &self.namespace().unwrap_or_default(),
                    &self.name_any(),
                );
                format!("{}{id}", $prefix)
            }
            fn check_identifier(id: &str) -> Result<(), &'static str> {
                $check(id)
            }
        }
    };
    ($kind:ty, $status:ty) => {
        impl $crate::managed::object::ManagedObject for $kind {
            fn management_policies(&self) -> Option<&[$crate::api::managed::ManagementAction]> {
                self.spec.management_policies.as_deref()
            }
            fn deletion_policy(&self) -> Option<$crate::api::managed::DeletionPolicy> {
                self.spec.deletion_policy
            }
            fn provider_config_ref(&self) -> Option<&$crate::api::common::ProviderConfigReference> {
                self.spec.provider_config_ref.as_ref()
            }
            fn write_connection_secret_to_ref(
                &self,
            ) -> Option<&$crate::api::common::LocalSecretReference> {
                self.spec.write_connection_secret_to_ref.as_ref()
            }
            fn conditions(&self) -> &[$crate::api::common::Condition] {
                self.status
                    .as_ref()
                    .map_or(&[], |s| s.conditions.as_slice())
            }
        }

        impl $crate::managed::kind::ManagedStatus for $status {
            fn conditions_mut(&mut self) -> &mut Vec<$crate::api::common::Condition> {
                &mut self.conditions
            }
            fn conditions(&self) -> &[$crate::api::common::Condition] {
                &self.conditions
            }
            fn observed_identifier(&self) -> Option<&str> {
                None
            }
            fn observed_deleting(&self) -> bool {
                false
            }
            fn clear_observation(&mut self) {
                self.at_provider = None;
            }
            fn placement(&self) -> Option<&$crate::api::managed::Placement> {
                self.placement.as_ref()
            }
            fn set_placement(&mut self, placement: $crate::api::managed::Placement) {
                self.placement = Some(placement);
            }
        }
    };
}
pub(crate) use managed_kind;

/// Whether an identifier may name an RDS group or an EC2 security group (by name): 1-255
/// printable characters.
pub(crate) fn check_group_name(id: &str) -> Result<(), &'static str> {
    if !id.is_empty() && id.len() <= 255 && id.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        Ok(())
    } else {
        Err("1-255 printable ASCII characters")
    }
}

/// Resolve an Instance's references (dbSubnetGroupName, vpcSecurityGroupIds,
/// parameterGroupName) into its spec, or wait for what they name.
pub(crate) async fn resolve_instance_refs<K>(flow: &mut Flow<'_, K>) -> Result<Step<()>, Error>
where
    K: super::kind::ExternalClient
        + super::resolve::Family
        + crate::api::twin::Base<crate::api::instance::Instance>,
{
    use super::resolve::{Family, instance_ref_fields, merge, resolve};
    use crate::api::parameter_group::ParameterGroup;
    use crate::api::security_group::SecurityGroup;
    use crate::api::subnet_group::SubnetGroup;
    if let Some(refused) = refuse_foreign_refs(flow) {
        return Ok(refused);
    }
    let no_ids: Vec<String> = Vec::new();
    let [(_, subnet), (_, groups), (_, params)] =
        instance_ref_fields(&flow.obj.base().spec.for_provider, &no_ids);
    let (subnet, groups, params) = ([subnet], [groups], [params]);
    let client = flow.ctx.shared.client.clone();
    let results = async {
        Ok::<_, kube::Error>(vec![
            resolve::<<K as Family>::Of<SubnetGroup>, _>(&client, &flow.obj, &subnet).await?,
            resolve::<<K as Family>::Of<SecurityGroup>, _>(&client, &flow.obj, &groups).await?,
            resolve::<<K as Family>::Of<ParameterGroup>, _>(&client, &flow.obj, &params).await?,
        ])
    }
    .await;
    apply_resolution(flow, results.map(merge)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_desired_tags_that_differ_are_added() {
        let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let want = map(&[
            ("paved.io/owner", "ns/net"),
            ("paved.io/owner-uid", "new"),
            ("team", "a"),
        ]);
        // (observed, what is added)
        let cases = [
            // a re-adopted predecessor's group: its UID is rewritten
            (
                map(&[
                    ("paved.io/owner", "ns/net"),
                    ("paved.io/owner-uid", "old"),
                    ("team", "a"),
                ]),
                map(&[("paved.io/owner-uid", "new")]),
            ),
            // up to date, and others' tags left alone: nothing to send
            (
                map(&[
                    ("paved.io/owner", "ns/net"),
                    ("paved.io/owner-uid", "new"),
                    ("team", "a"),
                    ("cost-center", "42"),
                ]),
                BTreeMap::new(),
            ),
            (BTreeMap::new(), want.clone()),
        ];
        for (i, (have, add)) in cases.into_iter().enumerate() {
            assert_eq!(tags_to_add(&have, &want), add, "case {i}");
        }
    }
}
