//! The ParameterGroup kind against the real API server and the emulator: paved's SDK client of
//! DB parameter groups (CreateDBParameterGroup, ModifyDBParameterGroup in batches,
//! DescribeDBParameters over its pages, ResetDBParameterGroup, DeleteDBParameterGroup), driven
//! by the RDS controller and read back from the emulator directly. The emulator's shim answers
//! the paging and the reset as AWS does (moto alone has neither).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kube::ResourceExt;
use kube::api::Api;
use paved::api::ParameterGroup;
use serde_json::{Value, json};

/// More parameters than one page of DescribeDBParameters (100) holds, and than one
/// ModifyDBParameterGroup or ResetDBParameterGroup takes (20): all are set in batches. A change
/// of one value on the second page is one call (paved read every page: had it read one, it
/// would set the thirty it missed again); thirty parameters dropped are reset in two calls;
/// deleted, the group leaves AWS.
///
/// paved reads a group's parameters when its spec changed since they were last applied, and
/// once a resync interval (`managed::parameter_group::parameters_due`): here 2 s, and the call
/// counts show that a read that finds no drift changes nothing. A parameter changed outside
/// paved is put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_groups_parameters_are_set_over_pages_changed_reset_and_deleted() {
    let region = "us-west-2";
    let env = RdsEnv::new("params", region, None).await;
    let cfg = paved::rds::RdsConfig {
        resync: Duration::from_secs(2),
        ..fast()
    };
    let rds = RdsController::start(&env.client, &env.ns, cfg).await;
    let groups: Api<ParameterGroup> = Api::namespaced(env.client.clone(), &env.ns);
    // The emulator does not know a family's parameters: any name is accepted, as none would be
    // on AWS. What is tested is how many there are.
    let wanted = |n: usize, changed: Option<usize>| -> BTreeMap<String, String> {
        (0..n)
            .map(|i| {
                let value = if Some(i) == changed { "2" } else { "1" };
                (format!("paved_test_{i:03}"), value.to_string())
            })
            .collect()
    };
    let group = |parameters: &BTreeMap<String, String>| -> Value {
        let list: Vec<Value> = parameters
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        json!({
            "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "ParameterGroup",
            "metadata": {"name": "tuned", "namespace": env.ns},
            "spec": {
                "providerConfigRef": {"name": env.pc},
                "forProvider": {
                    "region": region,
                    "family": "postgres16",
                    "description": "tuned by paved's tests",
                    "parameter": list,
                },
            },
        })
    };
    let calls = |op: &str| rds.metrics.calls(op);

    // Created: all 130 set, 20 to a call.
    let first = wanted(130, None);
    apply_json(&env.client, &group(&first), Some(&env.ns), false)
        .await
        .unwrap();
    let ready = wait_synced(&groups, 60).await;
    assert!(is_true_cond(&ready, "Ready"));
    let name = ready
        .annotations()
        .get("crossplane.io/external-name")
        .cloned()
        .unwrap();
    let at = ready.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert_eq!(at.id.as_deref(), Some(name.as_str()));
    assert_eq!(at.family.as_deref(), Some("postgres16"));
    assert_eq!(at.description.as_deref(), Some("tuned by paved's tests"));
    assert_eq!(emulator_parameters(&env.rds, &name).await, first);
    assert_eq!(
        calls("ModifyDBParameterGroup"),
        7,
        "130 parameters, 20 to a call"
    );
    assert_eq!(calls("ResetDBParameterGroup"), 0);

    // One value changed, on the second page of DescribeDBParameters: one call.
    let second = wanted(130, Some(120));
    let modifies = calls("ModifyDBParameterGroup");
    apply_json(&env.client, &group(&second), Some(&env.ns), false)
        .await
        .unwrap();
    wait_synced(&groups, 60).await;
    assert_eq!(emulator_parameters(&env.rds, &name).await, second);
    assert_eq!(calls("ModifyDBParameterGroup"), modifies + 1);
    assert_eq!(calls("ResetDBParameterGroup"), 0);
    assert!(calls("DescribeDBParameters") >= 2);

    // Thirty dropped: reset to the family's defaults, 20 to a call; nothing set.
    let third = wanted(100, None);
    apply_json(&env.client, &group(&third), Some(&env.ns), false)
        .await
        .unwrap();
    wait_synced(&groups, 60).await;
    assert_eq!(emulator_parameters(&env.rds, &name).await, third);
    assert_eq!(calls("ResetDBParameterGroup"), 2, "30 resets, 20 to a call");
    assert_eq!(calls("ModifyDBParameterGroup"), modifies + 1);

    // Changed outside paved: put back at a resync, and only that one.
    let describes = calls("DescribeDBParameters");
    env.rds
        .modify_db_parameter_group()
        .db_parameter_group_name(&name)
        .parameters(
            aws_sdk_rds::types::Parameter::builder()
                .parameter_name("paved_test_042")
                .parameter_value("9")
                .apply_method(aws_sdk_rds::types::ApplyMethod::Immediate)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while emulator_parameters(&env.rds, &name).await != third {
        assert!(
            Instant::now() < deadline,
            "paved_test_042=9, set outside paved, not put back within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(calls("DescribeDBParameters") > describes);
    assert_eq!(calls("ModifyDBParameterGroup"), modifies + 2);
    assert_eq!(calls("ResetDBParameterGroup"), 2);

    // Deleted: the group leaves AWS (moto lists none by that name, where AWS says
    // DBParameterGroupNotFound).
    delete_until_gone(&groups, "tuned", 60).await;
    let listed = env
        .rds
        .describe_db_parameter_groups()
        .db_parameter_group_name(&name)
        .send()
        .await;
    match listed {
        Ok(out) => assert!(out.db_parameter_groups().is_empty(), "{out:?}"),
        Err(e) => assert_eq!(
            e.as_service_error().and_then(|e| e.meta().code()),
            Some("DBParameterGroupNotFound"),
            "{e:?}"
        ),
    }
    rds.stop().await;
}

/// The group `tuned` once Synced=True at its current generation (its parameters applied).
async fn wait_synced(api: &Api<ParameterGroup>, secs: u64) -> ParameterGroup {
    wait_for(api, "tuned", secs, "Synced at its generation", |g| {
        cond(g, "Synced").is_some_and(|c| {
            c.status == paved::api::ConditionStatus::True
                && c.observed_generation == g.metadata.generation
        })
    })
    .await
}

/// The parameters set on the group (Source `user`), read from the emulator page by page (20 to a
/// page, the least AWS allows, so that the shim's paging is exercised here too).
async fn emulator_parameters(rds: &aws_sdk_rds::Client, group: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let out = rds
            .describe_db_parameters()
            .db_parameter_group_name(group)
            .source("user")
            .max_records(20)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert!(out.parameters().len() <= 20, "a page of at most 20");
        for p in out.parameters() {
            all.insert(
                p.parameter_name().unwrap_or_default().to_string(),
                p.parameter_value().unwrap_or_default().to_string(),
            );
        }
        match out.marker() {
            Some(m) if !m.is_empty() && marker.as_deref() != Some(m) => marker = Some(m.into()),
            _ => return all,
        }
    }
}
