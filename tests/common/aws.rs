//! The RDS emulator, directly (not through paved, nor through the fault proxy): what the tests
//! use to look behind paved's back and to reset their own region. The emulator partitions its
//! state by region, so a test owns a region and resets only that (`purge_region`); a global
//! reset would pull the ground from under the tests running in parallel.

use aws_sdk_rds::types::DbInstance;
use paved::rds::client::{StaticCredentials, http_client, sdk_client};

/// An aws-sdk-rds client talking straight to the shared emulator in `region`, built with
/// paved's own client constructor.
pub async fn emulator_rds(region: &str) -> aws_sdk_rds::Client {
    emulator_rds_at(&super::e2e_env().moto_url, region).await
}

/// An aws-sdk-rds client for the emulator at `endpoint` (a control plane of a test's own, or the
/// fault proxy) in `region`, with the emulator's dummy keys.
pub async fn emulator_rds_at(endpoint: &str, region: &str) -> aws_sdk_rds::Client {
    paved::init_crypto();
    let creds = StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    };
    sdk_client(
        http_client(),
        region,
        Some(endpoint),
        Some(creds),
        paved::rds::client::DEFAULT_AWS_TIMEOUT,
    )
    .await
    .client
}

/// Identifiers of every instance in the client's region (all pages).
pub async fn list_ids(rds: &aws_sdk_rds::Client) -> Vec<String> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = rds
            .describe_db_instances()
            .set_marker(marker.clone())
            .max_records(100)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "DescribeDBInstances on the emulator: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            });
        ids.extend(
            out.db_instances()
                .iter()
                .filter_map(|i| i.db_instance_identifier().map(str::to_string)),
        );
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return ids;
        }
    }
}

/// Identifiers of the RDS instances in `region` of the emulator at `moto_url`.
pub async fn rds_identifiers(moto_url: &str, region: &str) -> Vec<String> {
    list_ids(&emulator_rds_at(moto_url, region).await).await
}

/// Delete every instance left in the client's region by earlier runs (deletion protection off
/// first, no final snapshot). Only for a region no other test uses: see [`purge_where`].
pub async fn purge_region(rds: &aws_sdk_rds::Client) {
    purge_where(rds, |_| true).await
}

/// Delete the instances of the client's region whose identifier `select` picks: a test that
/// shares its region purges only the leftovers of its own earlier runs.
pub async fn purge_where(rds: &aws_sdk_rds::Client, select: impl Fn(&str) -> bool) {
    for id in list_ids(rds).await.into_iter().filter(|id| select(id)) {
        let _ = rds
            .modify_db_instance()
            .db_instance_identifier(&id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await;
        let _ = rds
            .delete_db_instance()
            .db_instance_identifier(&id)
            .skip_final_snapshot(true)
            .send()
            .await;
    }
}

/// The instance `id`, or None when the emulator says DBInstanceNotFound.
pub async fn describe(rds: &aws_sdk_rds::Client, id: &str) -> Option<DbInstance> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => out.db_instances().first().cloned(),
        Err(e) => {
            let code = aws_sdk_rds::error::ProvideErrorMetadata::code(&e).map(str::to_string);
            assert_eq!(code.as_deref(), Some("DBInstanceNotFound"), "{e:?}");
            None
        }
    }
}

/// Create an instance behind paved's back (someone else's, or one to adopt).
pub async fn create_direct(rds: &aws_sdk_rds::Client, id: &str, tags: &[(&str, &str)]) {
    let mut req = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.small")
        .allocated_storage(30)
        .master_username("someone")
        .master_user_password("someone-elses-password");
    for (k, v) in tags {
        req = req.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
    }
    req.send().await.unwrap();
}

/// Identifiers in `region` whose tags mention `needle` (for example the namespace).
pub async fn ids_tagged_with(region: &str, needle: &str) -> Vec<String> {
    let rds = emulator_rds(region).await;
    let out = rds.describe_db_instances().send().await.unwrap();
    let mut ids = vec![];
    for db in out.db_instances() {
        let tagged = db
            .tag_list()
            .iter()
            .any(|t| t.value().is_some_and(|v| v.contains(needle)));
        if tagged {
            ids.push(db.db_instance_identifier().unwrap_or_default().to_string());
        }
    }
    ids
}

/// The emulator's EC2 API in `region`, directly (the platform team's side of the network).
pub async fn emulator_ec2(region: &str) -> aws_sdk_ec2::Client {
    paved::init_crypto();
    let creds = StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    };
    paved::rds::ec2_client::sdk_client(
        http_client(),
        region,
        Some(&super::e2e_env().moto_url),
        Some(creds),
        paved::rds::client::DEFAULT_AWS_TIMEOUT,
    )
    .await
}

/// The platform team's existing network: a VPC with a subnet in each of two zones; (VPC id,
/// subnet ids).
pub async fn existing_network(ec2: &aws_sdk_ec2::Client, region: &str) -> (String, Vec<String>) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.20.{}.0/24", i + 1))
            .availability_zone(format!("{region}{az}"))
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().and_then(|s| s.subnet_id()).unwrap().to_string());
    }
    (vpc, subnets)
}

/// A Composition for the built-in claim that wires the network: a subnet group, a security
/// group, an ingress rule (selecting its group by controller), and the Instance selecting both
/// by controller, all through ProviderConfig `pc`.
pub fn network_composition(
    name: &str,
    region: &str,
    pc: &str,
    vpc: &str,
    subnets: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": "database.example.com/v1alpha1", "kind": "PostgreSQLInstance"},
            "resources": [
                {"name": "subnet-group", "base": {
                    "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
                    "spec": {"providerConfigRef": {"name": pc},
                             "forProvider": {"region": region, "description": "db subnets", "subnetIds": subnets}}}},
                {"name": "security-group", "base": {
                    "apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "SecurityGroup",
                    "spec": {"providerConfigRef": {"name": pc},
                             "forProvider": {"region": region, "vpcId": vpc, "description": "postgres"}}}},
                {"name": "postgres-ingress", "base": {
                    "apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "SecurityGroupRule",
                    "spec": {"providerConfigRef": {"name": pc},
                             "forProvider": {"region": region, "type": "ingress", "protocol": "tcp",
                                             "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.20.0.0/16"],
                                             "securityGroupIdSelector": {"matchControllerRef": true}}}}},
                {"name": "rds-instance", "base": {
                    "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                    "spec": {"providerConfigRef": {"name": pc},
                             "forProvider": {"region": region, "engine": "postgres", "engineVersion": "16.3",
                                             "instanceClass": "db.t3.micro", "allocatedStorage": 20,
                                             "skipFinalSnapshot": true,
                                             "dbSubnetGroupNameSelector": {"matchControllerRef": true},
                                             "vpcSecurityGroupIdSelector": {"matchControllerRef": true}}}},
                 "patches": [{"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"}]}
            ]
        }
    })
}

/// The security group `sg_id` and the DB subnet group `group_name` are gone from the emulator.
pub async fn assert_network_gone(
    ec2: &aws_sdk_ec2::Client,
    rds: &aws_sdk_rds::Client,
    sg_id: &str,
    group_name: &str,
) {
    let groups = ec2.describe_security_groups().group_ids(sg_id).send().await;
    assert!(
        groups
            .as_ref()
            .map_or(true, |g| g.security_groups().is_empty()),
        "security group {sg_id} is gone: {groups:?}"
    );
    let left = rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(group_name)
        .send()
        .await;
    assert!(left.is_err() || left.unwrap().db_subnet_groups().is_empty());
}
