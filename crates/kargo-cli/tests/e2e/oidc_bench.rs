//! The read rate of a person signed in through the tests' OpenID provider (`oidc`) beside a
//! ServiceAccount token's, on one server in one run (`bench/oidc.sh`; docs/performance.md,
//! "People signed in with OIDC"). Ignored by default: it is a measurement, not a check, and wants
//! a release build and a quiet machine.
//!
//! Alice (claim `groups=devops`) and a ServiceAccount get the same role (get on serviceaccounts)
//! in one project; `wrk -t2 -c32` reads one ServiceAccount alternately with each token, in
//! interleaved rounds, as `bench/ab.sh` does. Each round prints (on stderr) requests per second and the
//! server's CPU per request (from `/proc/<pid>/stat`), the end prints the medians and the
//! OIDC/ServiceAccount ratios. It asserts nothing about speed (the machine's load moves single
//! rounds by 10% or more), only that every request was answered 2xx.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::Server;
use crate::kargo_client::Kargo;
use crate::oidc::{ALICE, Options, Provider};

/// One wrk run: requests per second and the server's CPU per request in µs.
struct Rate {
    per_second: f64,
    cpu_us: f64,
}

/// The server's user + system CPU so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// The value after `label` on the line of wrk's output that holds it.
fn field<'a>(out: &'a str, label: &str) -> Option<&'a str> {
    out.lines().find_map(|line| {
        let at = line.find(label)?;
        line[at + label.len()..].split_whitespace().next()
    })
}

/// Runs `wrk -t2 -c32` for `seconds` against `url` with `token`; panics on any non-2xx answer.
fn wrk(pid: u32, url: &str, token: &str, seconds: u64, tick: f64) -> Rate {
    let before = cpu_ticks(pid);
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let after = cpu_ticks(pid);
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.contains("Non-2xx"), "non-2xx answers:\n{out}");
    let requests: f64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{out}"));
    assert!(requests > 0.0, "no requests:\n{out}");
    let per_second = field(&out, "Requests/sec:")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{out}"));
    Rate {
        per_second,
        cpu_us: (after - before) as f64 * 1e6 / tick / requests,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if !n.is_multiple_of(2) {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a benchmark: bench/oidc.sh runs it in release"]
fn bench_oidc_read_rate() {
    let rounds = env_or("ROUNDS", 6);
    let seconds = env_or("DURATION", 8);
    let provider = Provider::start_with(Options {
        id_token_ttl: Duration::from_secs(3600),
        ..Options::default()
    });
    let server = Server::start_with(&provider.server_args());
    let admin = Kargo::admin(&server);
    admin.project("read");
    admin.service_account("read", "sa");
    admin.role(
        "read",
        json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]}),
    );
    admin.grant(
        "read",
        json!({"role": "reader", "serviceAccounts": {"serviceAccounts": [{"name": "sa", "namespace": "read"}]}}),
    );
    admin.grant(
        "read",
        json!({"role": "reader", "userClaims": {"claims": [{"name": "groups", "values": ["devops"]}]}}),
    );
    let sa_token = admin.token("read", "sa", "reader-token");
    let (alice_token, _) = provider.id_token(ALICE);
    let path = "/api/v1/namespaces/read/serviceaccounts/sa";
    for (who, token) in [("sa", &sa_token), ("oidc", &alice_token)] {
        let (code, body) = server.curl("GET", path, Some(token), &[], None);
        assert_eq!(code, 200, "{who}: {body}");
    }
    eprintln!(
        "tokens: ServiceAccount {} bytes, Alice's ID token {} bytes",
        sa_token.len(),
        alice_token.len()
    );

    let url = format!("{}{path}", server.url);
    let pid = server.pid();
    let tick = clock_ticks_per_second();
    let (mut sa, mut oidc) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let s = wrk(pid, &url, &sa_token, seconds, tick);
        let o = wrk(pid, &url, &alice_token, seconds, tick);
        eprintln!(
            "round {round}: sa {:.0}/s {:.2}us  oidc {:.0}/s {:.2}us  rate ratio {:.3}  cpu ratio {:.3}",
            s.per_second,
            s.cpu_us,
            o.per_second,
            o.cpu_us,
            o.per_second / s.per_second,
            o.cpu_us / s.cpu_us
        );
        sa.push(s);
        oidc.push(o);
    }
    let rate_ratios = sa
        .iter()
        .zip(&oidc)
        .map(|(s, o)| o.per_second / s.per_second);
    let cpu_ratios = sa.iter().zip(&oidc).map(|(s, o)| o.cpu_us / s.cpu_us);
    let (rate_ratio, cpu_ratio) = (median(rate_ratios.collect()), median(cpu_ratios.collect()));
    let medians = |rates: &[Rate]| {
        (
            median(rates.iter().map(|r| r.per_second).collect()),
            median(rates.iter().map(|r| r.cpu_us).collect()),
        )
    };
    let ((sa_rate, sa_cpu), (oidc_rate, oidc_cpu)) = (medians(&sa), medians(&oidc));
    eprintln!(
        "medians of {rounds} rounds of {seconds}s: sa {sa_rate:.0}/s {sa_cpu:.2}us  oidc {oidc_rate:.0}/s {oidc_cpu:.2}us"
    );
    eprintln!(
        "OIDC / ServiceAccount: rate {:.3} (median of the rounds' ratios {rate_ratio:.3}), CPU per request {:.3} (median of the rounds' ratios {cpu_ratio:.3})",
        oidc_rate / sa_rate,
        oidc_cpu / sa_cpu
    );
}
