//! The sandbox's databases are real: `e2e/env.sh up` puts a PostgreSQL server behind the RDS
//! emulator's instances (e2e/lib/rds_backend.py), so an application logs in with what paved wrote
//! to the claim's connection Secret. The seed Composition and claim, `paved run` as a process,
//! and a real PostgreSQL client (tests/common/postgres.rs):
//! - the golden path: the Secret's `uri`, and its host/port/username/password, both log in;
//! - password rotation: the new password logs in, the old one is refused by the server;
//! - deletion with the final snapshot: the snapshot's pg_dump holds the rows the test wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Instant;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use paved::api::{Instance, PostgreSQLInstance};
use serde_json::json;

const REGION: &str = "ap-northeast-2"; // the seed Composition's region
const CLAIM: &str = "my-app-db";
const SECRET: &str = "my-app-db-credentials";
const INSTANCE: &str = "my-app-db-rds-instance";

fn ready(c: &PostgreSQLInstance) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == paved::api::ConditionStatus::True)
    })
}

/// The seed claim in a namespace of its own, provisioned by a `paved run` watching only it.
struct Provisioned {
    ns: String,
    paved: Paved,
    claims: Api<PostgreSQLInstance>,
    instances: Api<Instance>,
    secrets: Api<Secret>,
    identifier: String,
}

impl Provisioned {
    async fn new(prefix: &str) -> Provisioned {
        let t0 = Instant::now();
        let admin = client().await;
        install_crds(&admin).await;
        let ns = test_namespace(&admin, prefix).await;
        let mut paved = Paved::start(&["--namespaces", &ns], None, &format!("{ns}-paved"));
        paved.wait_ready(std::time::Duration::from_secs(90)).await;
        let composition = yaml_docs(&read_project_file("examples/seed/composition.yaml")).remove(0);
        apply_json(&admin, &composition, None, false).await.unwrap();
        let claim = yaml_docs(&read_project_file("examples/seed/claim.yaml")).remove(0);
        apply_json(&admin, &claim, Some(&ns), false).await.unwrap();
        let claims: Api<PostgreSQLInstance> = Api::namespaced(admin.clone(), &ns);
        wait_for(&claims, CLAIM, 120, "Ready", ready).await;
        let instances: Api<Instance> = Api::namespaced(admin.clone(), &ns);
        let identifier = instances
            .get(INSTANCE)
            .await
            .unwrap()
            .metadata
            .annotations
            .unwrap_or_default()
            .get("crossplane.io/external-name")
            .cloned()
            .expect("external-name");
        println!(
            "[{prefix}] claim Ready after {:.1} s (RDS instance {identifier})",
            t0.elapsed().as_secs_f64()
        );
        Provisioned {
            ns: ns.clone(),
            paved,
            claims,
            instances,
            secrets: Api::namespaced(admin, &ns),
            identifier,
        }
    }

    async fn credentials(&self) -> std::collections::BTreeMap<String, String> {
        postgres::secret_strings(&self.secrets.get(SECRET).await.unwrap())
    }
}

#[tokio::test]
async fn golden_path_secret_logs_in_with_uri_and_with_fields() {
    let p = Provisioned::new("sandbox-golden").await;
    let creds = p.credentials().await;

    // The endpoint AWS reports is the sandbox's, and it is what the Secret names.
    let rds = emulator_rds(REGION).await;
    let described = rds
        .describe_db_instances()
        .db_instance_identifier(&p.identifier)
        .send()
        .await
        .unwrap();
    let endpoint = described.db_instances()[0].endpoint().unwrap();
    assert_eq!(endpoint.address(), Some("127.0.0.1"));
    assert_eq!(creds["host"], "127.0.0.1");
    assert_eq!(creds["port"], endpoint.port().unwrap().to_string());
    assert!(
        creds["uri"].ends_with("?sslmode=require"),
        "{}",
        creds["uri"]
    );

    let t = Instant::now();
    let (user, db) = postgres::login_with_secret(SECRET, &creds).await;
    println!(
        "[sandbox-golden] logged in twice (uri, fields) in {:.0} ms as {user} on {db}",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // the server-side names are the instance's (one shared server, see e2e/lib/rds_backend.py):
    // <name>@<identifier>, shortened with a hash past PostgreSQL's 63 bytes
    let qualified = |name: &str| {
        let full = format!("{name}@{}", p.identifier);
        if full.len() <= 63 {
            full
        } else {
            full[..52].to_string()
        }
    };
    assert!(
        user.starts_with(&qualified(&creds["username"])),
        "current_user {user}"
    );
    assert!(
        db.starts_with(&qualified("postgres")),
        "current_database() {db}"
    );

    // a real database: the master user can create and use tables
    let c = postgres::connect_uri(&creds["uri"]).await.unwrap();
    c.batch_execute("create table hello (id int primary key, greeting text); insert into hello values (1, 'hi')")
        .await
        .unwrap();
    let row = c
        .query_one("select greeting from hello where id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "hi");

    // TLS is required by the Secret (sslmode=require) and offered by the endpoint; a wrong
    // password is refused by the server itself
    let port: u16 = creds["port"].parse().unwrap();
    let wrong = postgres::connect_parts(
        "127.0.0.1",
        port,
        &creds["username"],
        "not-the-password",
        None,
    )
    .await;
    match wrong {
        Err(e) => assert!(
            postgres::is_password_refused(&e),
            "{}",
            postgres::describe(&e)
        ),
        Ok(_) => panic!("a wrong password logged in"),
    }
    drop(p.paved);
}

#[tokio::test]
async fn rotated_password_logs_in_and_the_old_one_is_refused() {
    let p = Provisioned::new("sandbox-rotate").await;
    let before = p.credentials().await;
    postgres::login_with_secret(SECRET, &before).await;
    let old = before["password"].clone();

    let new = "Rotated-sandbox-password-0123456789";
    let t = Instant::now();
    p.secrets
        .patch(
            &format!("{INSTANCE}-master-password"),
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": new}})),
        )
        .await
        .unwrap();
    wait_for(
        &p.secrets,
        SECRET,
        60,
        "the claim's Secret with the rotated password",
        move |s: &Secret| {
            s.data
                .as_ref()
                .and_then(|d| d.get("password"))
                .is_some_and(|v| v.0 == new.as_bytes())
        },
    )
    .await;
    println!(
        "[sandbox-rotate] the claim's Secret had the new password {:.1} s after the rotation",
        t.elapsed().as_secs_f64()
    );

    let after = p.credentials().await;
    postgres::login_with_secret(SECRET, &after).await;
    let port: u16 = after["port"].parse().unwrap();
    for refused in [
        postgres::connect_uri(&after["uri"].replace(new, &old))
            .await
            .err(),
        postgres::connect_parts(&after["host"], port, &after["username"], &old, None)
            .await
            .err(),
    ] {
        let e = refused.expect("invariant: the old password no longer logs in");
        assert!(
            postgres::is_password_refused(&e),
            "the old password is refused as a wrong password: {}",
            postgres::describe(&e)
        );
    }
    drop(p.paved);
}

#[tokio::test]
async fn deleting_with_a_final_snapshot_keeps_a_dump_of_the_rows() {
    let p = Provisioned::new("sandbox-snapshot").await;
    let creds = p.credentials().await;
    let c = postgres::connect_uri(&creds["uri"]).await.unwrap();
    c.batch_execute(
        "create table orders (id int primary key, item text not null);
         insert into orders values (1, 'espresso'), (2, 'flat white'), (3, 'cortado')",
    )
    .await
    .unwrap();
    drop(c);

    // The seed does not skip the final snapshot: deleting the claim deletes the instance with one.
    let t = Instant::now();
    delete_until_gone(&p.claims, CLAIM, 120).await;
    wait_deleted(&p.instances, INSTANCE, 120).await;
    println!(
        "[sandbox-snapshot] claim and Instance gone {:.1} s after the delete",
        t.elapsed().as_secs_f64()
    );

    let rds = emulator_rds(REGION).await;
    let snaps = rds
        .describe_db_snapshots()
        .db_instance_identifier(&p.identifier)
        .send()
        .await
        .unwrap();
    let snapshot = snaps
        .db_snapshots()
        .iter()
        // the final snapshot, not an automated one (those are kept: deleteAutomatedBackups is
        // false by default)
        .filter(|s| s.snapshot_type() != Some("automated"))
        .find_map(|s| {
            s.db_snapshot_identifier()
                .filter(|id| !id.starts_with("rds:"))
        })
        .unwrap_or_else(|| panic!("no final snapshot of {}", p.identifier));
    let dir = postgres::snapshots_dir(&e2e_env().vars);
    let path = postgres::snapshot_dump(&dir, REGION, snapshot, "postgres");
    let dump = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the final snapshot's dump {}: {e}", path.display()));
    let rows = postgres::dumped_rows(&dump, "orders")
        .unwrap_or_else(|| panic!("{} has no table orders", path.display()));
    assert_eq!(
        rows,
        vec!["1\tespresso", "2\tflat white", "3\tcortado"],
        "the final snapshot holds the rows written before the delete"
    );
    println!(
        "[sandbox-snapshot] {}: final snapshot {snapshot}: {} ({} bytes), {} rows of orders",
        p.ns,
        path.display(),
        dump.len(),
        rows.len()
    );

    // the database went with the instance: its endpoint no longer takes connections
    let port: u16 = creds["port"].parse().unwrap();
    assert!(
        postgres::connect_parts(
            "127.0.0.1",
            port,
            &creds["username"],
            &creds["password"],
            None
        )
        .await
        .is_err(),
        "the deleted instance's endpoint still logs in"
    );
    drop(p.paved);
}

/// Not something paved does, but the sandbox's RDS does it for real: a snapshot taken through the
/// API restores into a new instance with the source's master user, password and rows, at an
/// endpoint of its own; the source instance is untouched.
#[tokio::test]
async fn a_snapshot_restores_into_a_new_instance_with_its_rows() {
    let region = "ap-southeast-1"; // no other test of this file uses it
    let rds = emulator_rds(region).await;
    let suffix: String = (0..6)
        .map(|_| (b'a' + rand::random_range(0..26u8)) as char)
        .collect();
    let (source, copy, snapshot) = (
        format!("sandbox-src-{suffix}"),
        format!("sandbox-copy-{suffix}"),
        format!("sandbox-snap-{suffix}"),
    );
    let password = "Sandbox-restore-0123456789";
    let created = rds
        .create_db_instance()
        .db_instance_identifier(&source)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password(password)
        .db_name("shop")
        .send()
        .await
        .unwrap();
    let ep = created.db_instance().unwrap().endpoint().unwrap();
    let (host, port) = (ep.address().unwrap().to_string(), ep.port().unwrap() as u16);
    let c = postgres::connect_parts(&host, port, "app", password, Some("shop"))
        .await
        .unwrap();
    c.batch_execute(
        "create table items (sku text primary key); insert into items values ('a-1'), ('b-2')",
    )
    .await
    .unwrap();
    rds.create_db_snapshot()
        .db_instance_identifier(&source)
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    c.batch_execute("insert into items values ('after-the-snapshot')")
        .await
        .unwrap();

    let restored = rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&copy)
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    let ep2 = restored.db_instance().unwrap().endpoint().unwrap();
    assert_eq!(ep2.address(), Some("127.0.0.1"));
    assert_ne!(
        ep2.port(),
        Some(port as i32),
        "the copy has an endpoint of its own"
    );
    let c2 = postgres::connect_parts(
        &host,
        ep2.port().unwrap() as u16,
        "app",
        password,
        Some("shop"),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "the restored copy with the source's credentials: {}",
            postgres::describe(&e)
        )
    });
    let skus: Vec<String> = c2
        .query("select sku from items order by sku", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        skus,
        ["a-1", "b-2"],
        "the copy holds the rows of the snapshot, not later ones"
    );
    let source_rows: i64 = c
        .query_one("select count(*) from items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(source_rows, 3, "the source is untouched");

    for id in [&source, &copy] {
        rds.delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
            .unwrap();
    }
    rds.delete_db_snapshot()
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    let dir = postgres::snapshots_dir(&e2e_env().vars);
    assert!(
        !dir.join(region).join(&snapshot).exists(),
        "DeleteDBSnapshot removes the dump"
    );
}
