//! Plain words: what paved tells a user when something goes wrong, against the real API server
//! and the emulator (through the fault proxy where the emulator cannot misbehave by itself).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A hung AWS endpoint is never silent: with `--aws-timeout 3s`, a new Instance whose endpoint
/// accepts calls and never answers says, within a few seconds, Synced=False AWSUnavailable
/// naming the endpoint and the timeout, and its Warning Event says it without a countdown.
#[tokio::test]
async fn a_hung_endpoint_is_named_within_the_timeout() {
    let (proxy, env, ctl) = behind_a_hung_endpoint("words-hang", "ap-east-1").await;
    let started = Instant::now();
    env.create("hung", json!({})).await;
    let i = env.wait_synced_false("hung", "AWSUnavailable", 20).await;
    let waited = started.elapsed();
    let c = cond(&i, "Synced").unwrap();
    let want = format!("no answer from {} within 3 s", proxy.url());
    assert!(c.message.contains(&want), "{}", c.message);
    for bad in ["{", "Some(", "SdkBody", "TimeoutError"] {
        assert!(!c.message.contains(bad), "{}", c.message);
    }
    // one timeout, not four retries of it (nor the 30 s default)
    assert!(waited < Duration::from_secs(12), "took {waited:?}");

    let events = wait_event(&env.client, &env.ns, "hung", 20, |r, n| {
        r == "AWSUnavailable" && n.contains(&want)
    })
    .await;
    assert!(
        events.iter().all(|(_, n)| !n.contains("retrying in")),
        "{events:?}"
    );
    proxy.set_stall(false);
    ctl.stop().await;
}

/// The network kinds say the same as the Instance when AWS hangs: a SubnetGroup (aws-sdk-rds)
/// and a SecurityGroup (aws-sdk-ec2) behind an endpoint that never answers are Synced=False
/// AWSUnavailable naming that endpoint and the timeout (not "the AWS API"), within a few
/// seconds, and the Warning Event says it too.
#[tokio::test]
async fn a_hung_endpoint_is_named_by_the_network_kinds_too() {
    use kube::api::{Api, PostParams};
    use paved::api::{SecurityGroup, SubnetGroup};
    let (proxy, env, ctl) = behind_a_hung_endpoint("words-nethang", "ap-southeast-5").await;
    let pc = json!({"name": env.pc});
    let sngs: Api<SubnetGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let sgs: Api<SecurityGroup> = Api::namespaced(env.client.clone(), &env.ns);
    let started = Instant::now();
    let sng: SubnetGroup = serde_json::from_value(json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "SubnetGroup",
        "metadata": {"name": "net"},
        "spec": {"providerConfigRef": pc, "forProvider": {"region": env.region, "subnetIds": ["subnet-0a", "subnet-0b"]}}
    }))
    .unwrap();
    sngs.create(&PostParams::default(), &sng).await.unwrap();
    let sg: SecurityGroup = serde_json::from_value(json!({
        "apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "SecurityGroup",
        "metadata": {"name": "db"},
        "spec": {"providerConfigRef": pc, "forProvider": {"region": env.region, "vpcId": "vpc-0a"}}
    }))
    .unwrap();
    sgs.create(&PostParams::default(), &sg).await.unwrap();
    let want = format!("no answer from {} within 3 s", proxy.url());
    let hung = |c: Option<&paved::api::common::Condition>| {
        c.is_some_and(|c| c.reason == "AWSUnavailable" && c.message.contains(&want))
    };
    let s = wait_for(&sngs, "net", 25, "Synced=False AWSUnavailable", |o| {
        hung(cond(o, "Synced"))
    })
    .await;
    let g = wait_for(&sgs, "db", 25, "Synced=False AWSUnavailable", |o| {
        hung(cond(o, "Synced"))
    })
    .await;
    let waited = started.elapsed();
    for (what, c) in [
        ("SubnetGroup", cond(&s, "Synced")),
        ("SecurityGroup", cond(&g, "Synced")),
    ] {
        let m = &c.unwrap().message;
        assert!(!m.contains("the AWS API"), "{what}: {m}");
        for bad in ["{", "Some(", "SdkBody", "TimeoutError"] {
            assert!(!m.contains(bad), "{what}: {m}");
        }
    }
    // one 3 s timeout per object, not the 30 s default (with room for a loaded machine)
    assert!(waited < Duration::from_secs(20), "took {waited:?}");
    wait_event(&env.client, &env.ns, "db", 20, |r, n| {
        r == "AWSUnavailable" && n.contains(&want)
    })
    .await;
    proxy.set_stall(false);
    ctl.stop().await;
}

/// Compositions get feedback when applied, before any claim uses them: an invalid one gets
/// Valid=False naming the resource and field, and a Warning Event; fixed, it gets Valid=True;
/// an unchanged Composition is not written again.
#[tokio::test]
async fn an_invalid_composition_is_told_so_when_applied() {
    let client = client().await;
    install_crds(&client).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let feedback = tokio::spawn(paved::composition::run(client.clone(), async move {
        let _ = stop_rx.await;
    }));
    let name = format!("words-{}", random_suffix(6));
    // A claim type of its own, so that no claim test ever chooses this Composition.
    let type_ref = json!({"apiVersion": "words.example.com/v1", "kind": "WordsDatabase"});
    let instance = |resource: &str, to: &str| {
        json!({
            "name": resource,
            "base": {
                "apiVersion": "rds.aws.upbound.io/v1beta1",
                "kind": "Instance",
                "spec": {"forProvider": {"region": "eu-west-1", "engine": "postgres"}},
            },
            "patches": [{"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": to}],
        })
    };
    let cases: Vec<(&str, serde_json::Value, Vec<&str>)> = vec![
        (
            "duplicate resource names",
            json!({"compositeTypeRef": type_ref, "resources": [
                instance("db", "spec.forProvider.allocatedStorage"),
                instance("db", "spec.forProvider.allocatedStorage"),
            ]}),
            vec!["duplicate resource name", "\"db\""],
        ),
        (
            "a patch to a path the Instance's schema lacks",
            json!({"compositeTypeRef": type_ref, "resources": [
                instance("db", "spec.forProvder.allocatedStorage"),
            ]}),
            vec!["spec.forProvder.allocatedStorage"],
        ),
        (
            "an unknown key in a function input",
            json!({"compositeTypeRef": type_ref, "mode": "Pipeline", "pipeline": [{
                "step": "patch-and-transform",
                "functionRef": {"name": "function-patch-and-transform"},
                "input": {
                    "apiVersion": "pt.fn.crossplane.io/v1beta1",
                    "kind": "Resources",
                    "resources": [instance("db", "spec.forProvider.allocatedStorage")],
                    "patchSet": [],
                },
            }]}),
            vec!["patchSet"],
        ),
    ];
    for (what, spec, needles) in cases {
        let c = json!({
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition",
            "metadata": {"name": name},
            "spec": spec,
        });
        apply_json(&client, &c, None, false).await.unwrap();
        let got = wait_valid(&client, &name, "False", 30, what).await;
        let message = got["message"].as_str().unwrap_or_default().to_string();
        for n in &needles {
            assert!(message.contains(n), "{what}: {message}");
        }
        assert!(
            !message.contains("Some(") && !message.contains("{"),
            "{what}: {message}"
        );
        // This case's Event (an earlier case's, with the same reason, is listed too).
        let reason = got["reason"].as_str().unwrap();
        wait_event(&client, "default", &name, 30, |r, n| {
            r == reason && needles.iter().all(|w| n.contains(w))
        })
        .await;
    }

    // Fixed: Valid=True.
    let fixed = json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {"compositeTypeRef": type_ref, "resources": [instance("db", "spec.forProvider.allocatedStorage")]},
    });
    apply_json(&client, &fixed, None, false).await.unwrap();
    wait_valid(&client, &name, "True", 30, "fixed").await;

    // Nothing changed: nothing written (the resourceVersion stays).
    let api: kube::Api<paved::api::Composition> = kube::Api::all(client.clone());
    let rv = api.get(&name).await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.get(&name).await.unwrap().metadata.resource_version, rv);

    api.delete(&name, &Default::default()).await.unwrap();
    let _ = stop_tx.send(());
    let _ = feedback.await;
}

/// Under a `watchNamespaces` install, paved may create Events only in the watched namespaces and
/// its own: the Warning Event about an invalid (cluster-scoped) Composition goes to paved's own
/// namespace, and is accepted there with exactly the RBAC the chart renders. Run as the
/// chart's ServiceAccount (impersonated), with the RBAC of a release of its own.
///
/// What a user sees, asked with kubectl: `kubectl get events -n <paved's namespace>` lists the
/// Event; `kubectl describe composition` shows the Valid condition's message. It does not list
/// the Event: describe selects Events whose involvedObject.namespace is empty, and the API server
/// accepts such an Event only in kube-system (1.20; `default` too later), never in paved's
/// namespace.
#[tokio::test]
async fn composition_events_land_in_paveds_namespace_under_watch_namespaces() {
    let admin = client().await;
    install_crds(&admin).await;
    let release_ns = test_namespace(&admin, "words-release").await;
    let team_ns = test_namespace(&admin, "words-team").await;
    let release = format!("paved-wn-{}", random_suffix(5));
    let values = json!({"watchNamespaces": [team_ns]}).to_string();
    let rendered = yaml_docs(&chart::run_python(
        "tests/helm/render.py",
        &[
            "template",
            "--values",
            &values,
            "--name",
            &release,
            "--namespace",
            &release_ns,
        ],
        None,
    ));
    let rbac: Vec<&serde_json::Value> = rendered
        .iter()
        .filter(|o| common::chart::is_rbac(o))
        .collect();
    for o in &rbac {
        apply_json(&admin, o, None, false).await.unwrap();
    }
    let mut cleanup = ClusterCleanup::new(&e2e_env());
    cleanup
        .objects
        .push(("clusterrole".into(), release.clone()));
    cleanup
        .objects
        .push(("clusterrolebinding".into(), release.clone()));
    let sa = rbac
        .iter()
        .find(|o| o["kind"] == "ServiceAccount")
        .and_then(|o| o["metadata"]["name"].as_str())
        .unwrap()
        .to_string();
    let user = format!("system:serviceaccount:{release_ns}:{sa}");
    // The old place, `default`, is what this install refuses.
    // `kubectl auth can-i <verb> <resource> [-n <ns>] --as <user>`: "yes" or "no".
    let can_i = |verb: &str, resource: &str, ns: Option<&str>| {
        let mut args = vec!["auth", "can-i", verb, resource, "--as", &user];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let out = kubectl(&args);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let events = "events.events.k8s.io";
    assert_eq!(can_i("create", events, Some("default")), "no");
    let deadline = Instant::now() + Duration::from_secs(15);
    while can_i("create", events, Some(&release_ns)) != "yes" {
        assert!(
            Instant::now() < deadline,
            "{user} may not create Events in {release_ns}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // paved's Composition feedback as that ServiceAccount, its namespace the release's. The
    // validate step is driven directly rather than through a Composition controller of this
    // test's own: every controller the other tests run (in process, or the binary) validates
    // every Composition, and the first to write the condition is the one that publishes the
    // Event, in its own namespace. The step's watch is what the chart must allow too.
    for verb in ["list", "watch"] {
        assert_eq!(
            can_i(verb, "compositions.apiextensions.crossplane.io", None),
            "yes",
            "{user} may not {verb} Compositions"
        );
    }
    let kc = kube::config::Kubeconfig::read_from(&e2e_env().kubeconfig).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    config.auth_info.impersonate = Some(user.clone());
    let as_paved = kube::Client::try_from(config).unwrap();
    let recorder = paved::kube::events::Recorder::new(
        as_paved.clone(),
        kube::runtime::events::Reporter {
            controller: paved::composition::validate::MANAGER.into(),
            instance: None,
        },
    );

    let name = format!("words-wn-{}", random_suffix(6));
    cleanup.composition(&name);
    let c = json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": "words.example.com/v1", "kind": "WordsDatabase"},
            "resources": [
                {"name": "db", "base": {"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                    "spec": {"forProvider": {"region": "eu-west-1"}}}},
                {"name": "db", "base": {"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
                    "spec": {"forProvider": {"region": "eu-west-1"}}}},
            ],
        },
    });
    apply_json(&admin, &c, None, false).await.unwrap();
    // As paved read it (as that ServiceAccount), before any verdict: whatever another test's
    // controller has written since is what this step, as the first to judge it, overwrites.
    let compositions: kube::Api<paved::api::Composition> = kube::Api::all(as_paved.clone());
    let mut read = compositions.get(&name).await.unwrap();
    read.status = None;
    paved::composition::validate::write(&read, &compositions, &recorder, &release_ns)
        .await
        .unwrap();
    let got = wait_valid(&admin, &name, "False", 30, "duplicate names").await;
    let reason = got["reason"].as_str().unwrap().to_string();
    wait_event(&admin, &release_ns, &name, 30, |r, n| {
        r == reason && n.contains("duplicate resource name")
    })
    .await;

    // kubectl, as a user would ask.
    let listed = kubectl(&[
        "get",
        "events",
        "-n",
        &release_ns,
        "--field-selector",
        &format!("involvedObject.kind=Composition,involvedObject.name={name}"),
    ]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains(&reason) && listed.contains("duplicate resource name"),
        "kubectl get events -n {release_ns}:\n{listed}"
    );
    let described = kubectl(&["describe", "composition", &name]);
    let described = String::from_utf8_lossy(&described.stdout).to_string();
    assert!(
        described.contains("duplicate resource name") && described.contains(&reason),
        "kubectl describe composition {name}:\n{described}"
    );

    drop(cleanup);
}

/// Wait until the Composition's Valid condition has this status (and the current generation).
async fn wait_valid(
    client: &kube::Client,
    name: &str,
    status: &str,
    secs: u64,
    what: &str,
) -> serde_json::Value {
    let api: kube::Api<paved::api::Composition> = kube::Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let c = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
        if let Some(v) = condition(&c, "Valid")
            && v["status"] == status
            && v["observedGeneration"] == c["metadata"]["generation"]
        {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: Valid={status} not within {secs} s: {}",
            conditions_text(&c)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
