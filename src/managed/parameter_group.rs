//! DB parameter groups (`ParameterGroup`): the RDS operations behind a small trait
//! ([`ParameterGroupApi`]), implemented with aws-sdk-rds on [`SdkRds`] and guarded by
//! [`Guarded`]. Observation is one paginated DescribeDBParameterGroups per (ProviderConfig,
//! region) per poll; the parameters a group sets are read (DescribeDBParameters, source `user`)
//! when the object's spec changed since they were last applied, and once a resync interval
//! ([`parameters_due`]), so that a parameter changed outside paved is put back.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;

use super::client::SdkRds;
use super::client::net_sdk_err;
use super::client::rds_tags_of;
use super::guard::{guarded_api, response_lacks};
use super::listing::{ListPage, Listed, Page, next_marker};
use super::model::AwsError;

/// Page size of DescribeDBParameterGroups (the RDS maximum).
pub const PAGE_SIZE: i32 = 100;
/// Most parameters one ModifyDBParameterGroup call takes (the RDS limit).
pub const MAX_PARAMETERS_PER_CALL: usize = 20;

/// A DB parameter group as RDS reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbParameterGroup {
    pub name: String,
    pub arn: Option<String>,
    pub family: Option<String>,
    pub description: Option<String>,
}

impl Listed for DbParameterGroup {
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// One parameter to set.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbParameter {
    pub name: String,
    pub value: String,
    /// `immediate` or `pending-reboot`.
    pub apply_method: String,
}

/// CreateDBParameterGroup input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParameterGroupRequest {
    pub name: String,
    pub family: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

guarded_api! {
    /// The RDS operations on DB parameter groups paved uses.
    pub trait ParameterGroupApi {
        /// One page of DescribeDBParameterGroups over the account and region.
        ["DescribeDBParameterGroups"]
        fn list_parameter_groups(&self, marker: Option<String>) -> ListPage<'_, DbParameterGroup>;
        ["CreateDBParameterGroup"]
        fn create_parameter_group<'a>(&'a self, req: &'a ParameterGroupRequest) -> BoxFuture<'a, Result<DbParameterGroup, AwsError>>;
        /// The parameters set on the group (source `user`), all pages.
        ["DescribeDBParameters"]
        fn user_parameters<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<DbParameter>, AwsError>>;
        /// Set up to [`MAX_PARAMETERS_PER_CALL`] parameters.
        ["ModifyDBParameterGroup"]
        fn modify_parameters<'a>(&'a self, name: &'a str, params: &'a [DbParameter]) -> BoxFuture<'a, Result<(), AwsError>>;
        /// Reset up to [`MAX_PARAMETERS_PER_CALL`] parameters to the family's defaults.
        ["ResetDBParameterGroup"]
        fn reset_parameters<'a>(&'a self, name: &'a str, names: &'a [String]) -> BoxFuture<'a, Result<(), AwsError>>;
        ["DeleteDBParameterGroup"]
        fn delete_parameter_group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AwsError>>;
    }
}

fn from_sdk(g: &aws_sdk_rds::types::DbParameterGroup) -> DbParameterGroup {
    let s = |v: Option<&str>| v.map(str::to_string);
    DbParameterGroup {
        name: g.db_parameter_group_name().unwrap_or_default().to_string(),
        arn: s(g.db_parameter_group_arn()),
        family: s(g.db_parameter_group_family()),
        description: s(g.description()),
    }
}

fn apply_method(m: &str) -> aws_sdk_rds::types::ApplyMethod {
    if m == "pending-reboot" {
        aws_sdk_rds::types::ApplyMethod::PendingReboot
    } else {
        aws_sdk_rds::types::ApplyMethod::Immediate
    }
}

impl ParameterGroupApi for SdkRds {
    fn list_parameter_groups(&self, marker: Option<String>) -> ListPage<'_, DbParameterGroup> {
        Box::pin(async move {
            let out = self
                .client
                .describe_db_parameter_groups()
                .max_records(PAGE_SIZE)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| net_sdk_err("DescribeDBParameterGroups", &self.place, e))?;
            Ok(Page::new(
                out.db_parameter_groups().iter().map(from_sdk).collect(),
                out.marker(),
            ))
        })
    }

    fn create_parameter_group<'a>(
        &'a self,
        r: &'a ParameterGroupRequest,
    ) -> BoxFuture<'a, Result<DbParameterGroup, AwsError>> {
        const OP: &str = "CreateDBParameterGroup";
        Box::pin(async move {
            let out = self
                .client
                .create_db_parameter_group()
                .db_parameter_group_name(&r.name)
                .db_parameter_group_family(&r.family)
                .description(&r.description)
                .set_tags(Some(rds_tags_of(&r.tags)))
                .send()
                .await
                .map_err(|e| net_sdk_err(OP, &self.place, e))?;
            out.db_parameter_group()
                .map(from_sdk)
                .ok_or_else(|| response_lacks(OP, "DBParameterGroup"))
        })
    }

    fn user_parameters<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DbParameter>, AwsError>> {
        Box::pin(async move {
            let mut all = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let out = self
                    .client
                    .describe_db_parameters()
                    .db_parameter_group_name(name)
                    .source("user")
                    .max_records(100)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| net_sdk_err("DescribeDBParameters", &self.place, e))?;
                for p in out.parameters() {
                    if let Some(n) = p.parameter_name() {
                        all.push(DbParameter {
                            name: n.to_string(),
                            value: p.parameter_value().unwrap_or_default().to_string(),
                            apply_method: p
                                .apply_method()
                                .map(|m| m.as_str().to_string())
                                .unwrap_or_default(),
                        });
                    }
                }
                match next_marker(out.marker()) {
                    Some(m) if Some(&m) != marker.as_ref() => marker = Some(m),
                    _ => break,
                }
            }
            Ok(all)
        })
    }

    fn modify_parameters<'a>(
        &'a self,
        name: &'a str,
        params: &'a [DbParameter],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let params = params
                .iter()
                .map(|p| {
                    aws_sdk_rds::types::Parameter::builder()
                        .parameter_name(&p.name)
                        .parameter_value(&p.value)
                        .apply_method(apply_method(&p.apply_method))
                        .build()
                })
                .collect();
            self.client
                .modify_db_parameter_group()
                .db_parameter_group_name(name)
                .set_parameters(Some(params))
                .send()
                .await
                .map_err(|e| net_sdk_err("ModifyDBParameterGroup", &self.place, e))?;
            Ok(())
        })
    }

    fn reset_parameters<'a>(
        &'a self,
        name: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let params = names
                .iter()
                .map(|n| {
                    aws_sdk_rds::types::Parameter::builder()
                        .parameter_name(n)
                        .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                        .build()
                })
                .collect();
            self.client
                .reset_db_parameter_group()
                .db_parameter_group_name(name)
                .set_parameters(Some(params))
                .send()
                .await
                .map_err(|e| net_sdk_err("ResetDBParameterGroup", &self.place, e))?;
            Ok(())
        })
    }

    fn delete_parameter_group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.client
                .delete_db_parameter_group()
                .db_parameter_group_name(name)
                .send()
                .await
                .map_err(|e| net_sdk_err("DeleteDBParameterGroup", &self.place, e))?;
            Ok(())
        })
    }
}

/// The parameter changes that bring `observed` (source `user`) to `desired` (pure): what to
/// set and what to reset, each in batches of [`MAX_PARAMETERS_PER_CALL`] (RDS takes at most 20
/// parameters in one ModifyDBParameterGroup or ResetDBParameterGroup). Names compare
/// case-insensitively, as RDS does; an apply method alone is not drift.
pub fn parameter_changes(
    desired: &[DbParameter],
    observed: &[DbParameter],
) -> (Vec<Vec<DbParameter>>, Vec<Vec<String>>) {
    let obs: BTreeMap<String, &DbParameter> = observed
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p))
        .collect();
    let want: BTreeMap<String, &DbParameter> = desired
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p))
        .collect();
    let set: Vec<DbParameter> = want
        .iter()
        .filter(|(k, p)| obs.get(*k).is_none_or(|o| o.value != p.value))
        .map(|(_, p)| (*p).clone())
        .collect();
    let reset: Vec<String> = obs
        .iter()
        .filter(|(k, _)| !want.contains_key(*k))
        .map(|(_, p)| p.name.clone())
        .collect();
    let batches = set
        .chunks(MAX_PARAMETERS_PER_CALL)
        .map(<[DbParameter]>::to_vec)
        .collect();
    let resets = reset
        .chunks(MAX_PARAMETERS_PER_CALL)
        .map(<[String]>::to_vec)
        .collect();
    (batches, resets)
}

/// Whether a group's parameters are read and brought to the spec now (pure): when its spec
/// changed since they were last applied, or a resync interval (`resync`, zero: never on a timer)
/// after they were last read, so that a parameter changed outside paved is put back. A group
/// paved has not read since it started (`since_read` None) waits a resync interval too, unless
/// its spec changed: a restart does not read every group at once.
pub fn parameters_due(spec_changed: bool, since_read: Option<Duration>, resync: Duration) -> bool {
    spec_changed || since_read.is_some_and(|d| !resync.is_zero() && d >= resync)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_on_a_spec_change_or_a_resync_later() {
        let ten = Duration::from_secs(600);
        let cases = [
            // (spec changed, since the last read, resync, read now)
            (true, None, ten, true),
            (true, Some(Duration::ZERO), ten, true),
            (false, None, ten, false),
            (false, Some(Duration::from_secs(599)), ten, false),
            (false, Some(ten), ten, true),
            (
                false,
                Some(Duration::from_secs(86_400)),
                Duration::ZERO,
                false,
            ),
            (true, Some(Duration::ZERO), Duration::ZERO, true),
        ];
        for (i, (changed, since, resync, want)) in cases.into_iter().enumerate() {
            assert_eq!(parameters_due(changed, since, resync), want, "case {i}");
        }
    }

    fn p(name: &str, value: &str) -> DbParameter {
        DbParameter {
            name: name.into(),
            value: value.into(),
            apply_method: "immediate".into(),
        }
    }

    #[test]
    fn parameter_drift() {
        // (desired, observed, set names, reset names)
        type Case = (
            Vec<DbParameter>,
            Vec<DbParameter>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (vec![p("a", "1")], vec![], vec!["a"], vec![]),
            (vec![p("a", "1")], vec![p("a", "1")], vec![], vec![]),
            (vec![p("a", "2")], vec![p("a", "1")], vec!["a"], vec![]),
            (vec![], vec![p("a", "1")], vec![], vec!["a"]),
            (vec![p("Log_X", "1")], vec![p("log_x", "1")], vec![], vec![]),
        ];
        for (i, (d, o, set, reset)) in cases.into_iter().enumerate() {
            let (batches, r) = parameter_changes(&d, &o);
            let names: Vec<String> = batches.concat().into_iter().map(|p| p.name).collect();
            assert_eq!(names, set, "case {i}");
            assert_eq!(r.concat(), reset, "case {i}");
        }
        // At most 20 to a call, setting and resetting alike.
        let many: Vec<DbParameter> = (0..45).map(|i| p(&format!("p{i:02}"), "1")).collect();
        let (batches, resets) = parameter_changes(&many, &[]);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![20, 20, 5]);
        assert!(resets.is_empty());
        let (batches, resets) = parameter_changes(&[], &many);
        let sizes: Vec<usize> = resets.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![20, 20, 5]);
        assert!(batches.is_empty());
    }
}

/// The description of a group whose spec sets none.
pub const DEFAULT_DESCRIPTION: &str = "Managed by paved";

/// The CreateDBParameterGroup request for `name` and the parameters to set (pure). `Err`: the
/// spec lacks what AWS needs, in words for the Synced condition.
pub fn request(
    name: &str,
    fp: &crate::api::parameter_group::ParameterGroupParameters,
    tags: BTreeMap<String, String>,
) -> Result<(ParameterGroupRequest, Vec<DbParameter>), String> {
    let Some(family) = fp.family.clone().filter(|f| !f.is_empty()) else {
        return Err("spec.forProvider.family is required, for example postgres16".into());
    };
    let params = fp
        .parameter
        .iter()
        .flatten()
        .map(|p| DbParameter {
            name: p.name.clone(),
            value: p.value.clone(),
            apply_method: p
                .apply_method
                .clone()
                .unwrap_or_else(|| "immediate".to_string()),
        })
        .collect();
    Ok((
        ParameterGroupRequest {
            name: name.to_string(),
            family,
            description: fp
                .description
                .clone()
                .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string()),
            tags,
        },
        params,
    ))
}

/// The forProvider fields that differ from AWS and cannot be changed (pure).
pub fn immutable_drift(want: &ParameterGroupRequest, have: &DbParameterGroup) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(f) = &have.family
        && !f.eq_ignore_ascii_case(&want.family)
    {
        v.push(format!("family (is {f:?}, spec says {:?})", want.family));
    }
    if let Some(d) = &have.description
        && *d != want.description
    {
        v.push(format!(
            "description (is {d:?}, spec says {:?})",
            want.description
        ));
    }
    v
}

/// status.atProvider of an observed group.
pub fn at_provider(g: &DbParameterGroup) -> crate::api::parameter_group::ParameterGroupObservation {
    crate::api::parameter_group::ParameterGroupObservation {
        id: Some(g.name.clone()),
        arn: g.arn.clone(),
        family: g.family.clone(),
        description: g.description.clone(),
        tags_all: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod plan_tests {
    use super::*;
    use crate::api::parameter_group::{Parameter, ParameterGroupParameters};

    #[test]
    fn request_and_immutable_fields() {
        let mut fp = ParameterGroupParameters {
            region: "eu-west-1".into(),
            ..Default::default()
        };
        assert!(
            request("pg", &fp, BTreeMap::new())
                .unwrap_err()
                .contains("family is required")
        );
        fp.family = Some("postgres16".into());
        fp.parameter = Some(vec![Parameter {
            name: "log_connections".into(),
            value: "1".into(),
            apply_method: None,
        }]);
        let (req, params) = request("pg", &fp, BTreeMap::new()).unwrap_or_default();
        assert_eq!(req.description, DEFAULT_DESCRIPTION);
        assert_eq!(params[0].apply_method, "immediate");
        let have = DbParameterGroup {
            name: "pg".into(),
            family: Some("postgres15".into()),
            description: Some(DEFAULT_DESCRIPTION.into()),
            ..Default::default()
        };
        let d = immutable_drift(&req, &have);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("family"), "{d:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// the kind on the lifecycle

mod kind {
    use std::time::{Duration, Instant};

    use super::{
        DbParameterGroup, ParameterGroupApi, at_provider, immutable_drift, parameter_changes,
        parameters_due, request,
    };
    use crate::api::common::{ConditionStatus, SYNCED, get_condition};
    use crate::api::managed::Policies;
    use crate::api::parameter_group::{ParameterGroup, ParameterGroupStatus};
    use crate::api::twin::Base;
    use crate::managed::error::Error;
    use crate::managed::group::{GroupKind, GroupObject, refuse_immutable, valid};
    use crate::managed::kind::ExternalClient;
    use crate::managed::lifecycle::Flow;
    use crate::managed::model::AwsError;
    use crate::managed::network::{
        Net, NetGroup, check_group_name, fix_rds_tags, know_rds_tags, managed_kind, rds_tags,
        tags_of,
    };
    use crate::managed::outcome::{Step, pass_on};

    managed_kind!(
        ParameterGroup, ParameterGroupStatus,
        noun: "DB parameter group", metric: "parameter_group", prefix: "", check: check_group_name
    );

    /// A group with the tags that prove whose it is.
    #[derive(Clone, Debug)]
    pub(crate) struct Observed {
        pub group: DbParameterGroup,
        pub tags: std::collections::BTreeMap<String, String>,
    }

    /// What [`parameters_due`]'s clock is kept by: the group's ARN (unique across accounts and
    /// regions), else its name.
    fn read_key(group: &DbParameterGroup, id: &str) -> String {
        group.arn.clone().unwrap_or_else(|| id.to_string())
    }

    /// How long since the parameters of the group `key` were last read (or the group was first
    /// seen); None the first time paved sees it, whose clock starts now.
    fn since_read<K: ExternalClient>(flow: &Flow<'_, K>, key: &str) -> Option<Duration> {
        let read = flow.ctx.shared.net.parameters_read.lock();
        let mut read = read.unwrap_or_else(|p| p.into_inner());
        match read.get(key) {
            Some(t) => Some(t.elapsed()),
            None => {
                read.insert(key.to_string(), Instant::now());
                None
            }
        }
    }

    /// The parameters of the group `key` were read (and brought to the spec) now.
    fn parameters_read<K: ExternalClient>(flow: &Flow<'_, K>, key: String) {
        let read = flow.ctx.shared.net.parameters_read.lock();
        read.unwrap_or_else(|p| p.into_inner())
            .insert(key, Instant::now());
    }

    /// Set the parameters the spec lists and reset those it no longer lists.
    async fn sync_parameters<K: ExternalClient + Base<ParameterGroup>>(
        flow: &Flow<'_, K>,
        net: &Net,
        id: &str,
    ) -> Result<(), AwsError> {
        let Ok((_, want)) = request(id, &flow.obj.base().spec.for_provider, Default::default())
        else {
            return Ok(());
        };
        let have = net.clients.rds.user_parameters(id).await?;
        let (batches, resets) = parameter_changes(&want, &have);
        for b in &batches {
            net.clients.rds.modify_parameters(id, b).await?;
        }
        for r in &resets {
            net.clients.rds.reset_parameters(id, r).await?;
        }
        Ok(())
    }

    impl NetGroup for ParameterGroup {
        type Found = Observed;
        fn id_and_tags(found: &Observed) -> (&str, &std::collections::BTreeMap<String, String>) {
            (&found.group.name, &found.tags)
        }
        async fn find<K: ExternalClient + Base<Self>>(
            flow: &Flow<'_, K>,
            net: &Net,
            id: &str,
        ) -> Result<Option<Observed>, AwsError> {
            let poll = flow.poll();
            let g = net
                .parameter_groups
                .observe(id, poll, |m| net.clients.rds.list_parameter_groups(m))
                .await?;
            let Some(group) = g else { return Ok(None) };
            let tags = match &group.arn {
                Some(arn) => rds_tags(net, &flow.ctx.shared.net, arn).await?,
                None => Default::default(),
            };
            Ok(Some(Observed { group, tags }))
        }
        async fn remove(net: &Net, aws_id: &str) -> Result<(), AwsError> {
            net.clients.rds.delete_parameter_group(aws_id).await
        }
        fn forget(net: &Net, aws_id: &str) {
            net.parameter_groups.record(aws_id, None);
        }
    }

    impl GroupKind for ParameterGroup {
        async fn create<K: GroupObject<Self>>(
            flow: &mut Flow<'_, K>,
            net: &Net,
            id: &str,
        ) -> Result<Step<Observed>, Error> {
            let fp = &flow.obj.base().spec.for_provider;
            let tags = tags_of(&flow.obj, fp.tags.as_ref());
            let r = request(id, fp, tags.clone());
            let (req, _) = pass_on!(valid(flow, r));
            let group = match net.clients.rds.create_parameter_group(&req).await {
                Ok(g) => g,
                Err(e) => return Ok(flow.aws_failure(e)),
            };
            know_rds_tags(&flow.ctx.shared.net, group.arn.as_deref(), &tags);
            net.parameter_groups.record(id, Some(group.clone()));
            if let Err(e) = sync_parameters(flow, net, id).await {
                return Ok(flow.aws_failure(e));
            }
            parameters_read(flow, read_key(&group, id));
            Ok(Step::Go(Observed { group, tags }))
        }

        async fn update<K: GroupObject<Self>>(
            flow: &mut Flow<'_, K>,
            net: &Net,
            policies: &Policies,
            id: &str,
            mut o: Observed,
        ) -> Result<Step<Observed>, Error> {
            let r = request(id, &flow.obj.base().spec.for_provider, Default::default());
            let (req, _) = pass_on!(valid(flow, r));
            let refused = immutable_drift(&req, &o.group);
            if !refused.is_empty() {
                flow.status.at_provider = Some(at_provider(&o.group));
            }
            if let Some(step) = refuse_immutable(flow, &refused) {
                return Ok(step);
            }
            // The parameters are read when the spec changed since the last success, and a
            // resync interval after the last read (`parameters_due`): not at every poll.
            let synced_gen = get_condition(flow.obj.conditions(), SYNCED)
                .filter(|c| c.status == ConditionStatus::True)
                .and_then(|c| c.observed_generation);
            let key = read_key(&o.group, id);
            let since = since_read(flow, &key);
            let resync = flow.ctx.shared.config.resync;
            if policies.update && parameters_due(synced_gen != flow.generation, since, resync) {
                if let Err(e) = sync_parameters(flow, net, id).await {
                    return Ok(flow.aws_failure(e));
                }
                parameters_read(flow, key);
            }
            let spec_tags = flow.obj.base().spec.for_provider.tags.as_ref();
            if policies.update
                && let Err(e) =
                    fix_rds_tags(flow, net, o.group.arn.as_deref(), &mut o.tags, spec_tags).await
            {
                return Ok(flow.aws_failure(e));
            }
            Ok(Step::Go(o))
        }

        fn observed(o: Observed, status: &mut ParameterGroupStatus) -> Option<String> {
            status.at_provider = Some(at_provider(&o.group));
            None
        }
    }
}
