//! Issue 18, items 4, 8 and 9: kube-rs, the Rust Kubernetes client, against the server. A
//! program applies ServiceAccounts with `Patch::Apply` and keeps three caches with kube-rs'
//! reflector: a list-then-watch watcher, a streaming-list watcher (`sendInitialEvents`) and a
//! metadata watcher (`PartialObjectMetadata`). Each cache must converge to the store's content
//! while objects come and go, through a server restart and with the store compacted every
//! second (so a resumed watch may meet `410 Gone` and relist).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams, PartialObjectMeta, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, Resource};

use crate::harness::{Server, on_both_stores};

const NS: &str = "kube-rs";

async fn client(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("the admin kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a kube-rs config");
    Client::try_from(config).expect("a kube-rs client")
}

/// The names a cache holds.
fn names<K: Resource + Clone>(store: &Store<K>) -> BTreeSet<String>
where
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    store
        .state()
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

/// Waits up to 30 s until every cache holds exactly `expected` (and the `default` account).
fn converge(
    rt: &tokio::runtime::Runtime,
    caches: &[(&str, &dyn Fn() -> BTreeSet<String>)],
    expected: &[String],
) {
    let mut want: BTreeSet<String> = expected.iter().cloned().collect();
    want.insert("default".to_owned());
    let deadline = Instant::now() + Duration::from_secs(30);
    for (what, names) in caches {
        loop {
            let have = names();
            if have == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the {what} cache did not converge:\n have {have:?}\n want {want:?}"
            );
            rt.block_on(tokio::time::sleep(Duration::from_millis(100)));
        }
    }
}

fn apply(rt: &tokio::runtime::Runtime, api: &Api<ServiceAccount>, name: &str) {
    let account = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "labels": {"app": "kube-rs"}},
    });
    rt.block_on(api.patch(
        name,
        &PatchParams::apply("kube-rs-test"),
        &Patch::Apply(&account),
    ))
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

fn delete(rt: &tokio::runtime::Runtime, api: &Api<ServiceAccount>, name: &str) {
    rt.block_on(api.delete(name, &DeleteParams::default()))
        .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
}

on_both_stores!(
    kube_rs_reflectors_converge_through_restarts_and_compaction,
    reflectors
);

fn reflectors(store: &[String]) {
    let mut server =
        Server::start_with(&[store, &["--compaction-interval".into(), "1s".into()]].concat());
    server.kubectl(&["create", "namespace", NS]).ok();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let client = rt.block_on(client(&server.admin_kubeconfig()));
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    // An Api of PartialObjectMeta asks for metadata only (as=PartialObjectMetadataList).
    let metadata_api: Api<PartialObjectMeta<ServiceAccount>> = Api::namespaced(client, NS);

    // Short server-side timeouts, so that every watch is resumed many times.
    let listing = watcher::Config::default().timeout(3);
    let streaming = watcher::Config::default().timeout(3).streaming_lists();
    let (listed, writer) = reflector::store();
    let _guard = rt.enter();
    tokio::spawn(
        reflector::reflector(
            writer,
            watcher(api.clone(), listing.clone()).default_backoff(),
        )
        .for_each(|_| async {}),
    );
    let (streamed, writer) = reflector::store();
    tokio::spawn(
        reflector::reflector(writer, watcher(api.clone(), streaming).default_backoff())
            .for_each(|_| async {}),
    );
    let (metadata, writer) = reflector::store();
    tokio::spawn(
        reflector::reflector(writer, watcher(metadata_api, listing).default_backoff())
            .for_each(|_| async {}),
    );
    let caches: [(&str, &dyn Fn() -> BTreeSet<String>); 3] = [
        ("list-then-watch", &|| names(&listed)),
        ("streaming-list", &|| names(&streamed)),
        ("metadata", &|| names(&metadata)),
    ];

    let mut expected: Vec<String> = (0..10).map(|i| format!("sa-{i}")).collect();
    for name in &expected {
        apply(&rt, &api, name);
    }
    converge(&rt, &caches, &expected);
    for name in expected.drain(..3) {
        delete(&rt, &api, &name);
    }
    // Applying again changes nothing; the caches keep it.
    apply(&rt, &api, "sa-5");
    converge(&rt, &caches, &expected);

    server.restart(true);
    for i in 10..15 {
        let name = format!("sa-{i}");
        apply(&rt, &api, &name);
        expected.push(name);
    }
    for name in ["sa-3", "sa-11"] {
        delete(&rt, &api, name);
        expected.retain(|n| n != name);
    }
    converge(&rt, &caches, &expected);

    // Long after several compactions (and watch timeouts), still exact.
    rt.block_on(tokio::time::sleep(Duration::from_secs(4)));
    apply(&rt, &api, "sa-late");
    expected.push("sa-late".to_owned());
    converge(&rt, &caches, &expected);
    let applied = rt.block_on(api.get("sa-late")).expect("sa-late");
    assert_eq!(
        applied.metadata.labels.and_then(|l| l.get("app").cloned()),
        Some("kube-rs".to_owned())
    );
}
