//! Schemathesis (property-based testing from the served OpenAPI document) against a real server:
//! no request it generates gets a 5xx, every answer matches the document (status codes, content
//! types, schemas), authentication is enforced, and the server never crashes. Bounded in time
//! (`--max-time 90`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::harness::Server;
use crate::kargo_client::Kargo;

/// The `schemathesis` of the test venv (next to its Python).
fn schemathesis() -> PathBuf {
    let python = std::env::var("KARGO_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let bin = PathBuf::from(python).with_file_name("schemathesis");
    assert!(
        bin.exists(),
        "no schemathesis at {}: run scripts/test.sh, which installs it",
        bin.display()
    );
    bin
}

/// Known names the generated requests use part of the time, so that they reach existing objects.
const CONFIG: &str = r#"
[dictionaries.projects]
values = ["fuzz"]
[dictionaries.accounts]
values = ["bot", "kargo-admin"]
[dictionaries.roles]
values = ["dev", "kargo-viewer", "default"]
[dictionaries.tokens]
values = ["bot-token"]

[parameters]
"path.project" = { dictionary = "projects", probability = 0.6 }
"path.serviceaccount" = { dictionary = "accounts", probability = 0.5 }
"path.role" = { dictionary = "roles", probability = 0.5 }
"path.token" = { dictionary = "tokens", probability = 0.5 }
"#;

#[test]
fn schemathesis_finds_no_server_error_in_the_kargo_api() {
    let bin = schemathesis();
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("fuzz");
    admin.service_account("fuzz", "bot");
    admin.token("fuzz", "bot", "bot-token");
    admin.role(
        "fuzz",
        json!({"metadata": {"name": "dev"}, "rules": [{"verbs": ["get"], "resources": ["stages"]}]}),
    );
    let token = admin.token.clone().expect("admin token");
    let config = server.scratch().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let out = Command::new(&bin)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/v1beta1/openapi.json", server.url))
        .arg("--tls-verify")
        .arg(server.ca())
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Every check but the two that expect the API to accept any schema-valid body and refuse
        // any schema-invalid one: the API has rules a schema cannot say (names taken, labels).
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection",
        ])
        .args(["--max-examples", "15", "--max-time", "90"])
        // Logging out would end the session of the token every generated request uses.
        .args(["--exclude-operation-id", "AdminLogout"])
        .args(["--seed", "1", "--no-color"])
        .current_dir(server.scratch())
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (generated, passed) = summary
        .split_once(" generated, ")
        .and_then(|(g, p)| {
            Some((
                g.parse::<u64>().ok()?,
                p.split(' ').next()?.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    assert_eq!(generated, passed, "{stdout}");
    assert!(generated > 500, "{stdout}");
    eprintln!("schemathesis: {summary}");
    // Still serving.
    assert_eq!(admin.get("/v1beta1/projects").code, 200);
}
