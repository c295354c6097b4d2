//! A real OpenID provider for the SSO tests: `tests/oidc/provider.mjs` (npm `oidc-provider`, the
//! certified implementation) run by node on loopback TLS with a certificate made here (rcgen), and
//! a scripted user agent that signs people in through its real authorization endpoint.
//!
//! The provider has two public clients, [`CLIENT_ID`] (the server's `--oidc-client-id`) and
//! [`CLI_CLIENT_ID`] (`--oidc-cli-client-id`), both PKCE-only and accepting
//! `http://localhost:<any port>/auth/callback`, and the people of [`User::defaults`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::KeyPair;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The client id of the server (`--oidc-client-id`).
pub const CLIENT_ID: &str = "kargo";
/// The client id of the CLI (`--oidc-cli-client-id`).
pub const CLI_CLIENT_ID: &str = "kargo-cli";
/// A client of the same provider that is not Kargo (a wrong audience).
pub const OTHER_CLIENT_ID: &str = "other-app";
/// The scopes the tests ask for.
pub const SCOPES: &str = "openid email profile groups offline_access";
/// alice@example.com, in the group `devops`.
pub const ALICE: &str = "alice@example.com";
/// bob@example.com, in the group `qa`.
pub const BOB: &str = "bob@example.com";
/// carol@example.com, in no group.
pub const CAROL: &str = "carol@example.com";

/// A person the provider knows.
#[derive(Debug, Clone)]
pub struct User {
    /// The `sub` claim.
    pub sub: String,
    /// The `email` claim, and the login name on the form.
    pub email: String,
    /// The password on the form.
    pub password: String,
    /// The `name` claim.
    pub name: String,
    /// The `groups` claim.
    pub groups: Vec<String>,
    /// More ID-token claims (a CI job's `repository`, `ref`, `workflow`, `job_workflow_ref`).
    pub claims: BTreeMap<String, String>,
}

impl User {
    /// A person whose password is `<sub>-password`.
    pub fn new(sub: &str, email: &str, name: &str, groups: &[&str]) -> User {
        User {
            sub: sub.to_owned(),
            email: email.to_owned(),
            password: format!("{sub}-password"),
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            claims: BTreeMap::new(),
        }
    }

    /// A CI job of GitHub Actions shape: `sub` `repo:<repository>:ref:<git_ref>`, the claims
    /// `repository`, `ref`, `workflow` and `job_workflow_ref`, signing in as `email`.
    pub fn ci_job(email: &str, repository: &str, git_ref: &str, workflow: &str) -> User {
        let mut user = User::new(
            &format!("repo:{repository}:ref:{git_ref}"),
            email,
            "CI job",
            &[],
        );
        user.password = format!("{email}-password");
        for (name, value) in [
            ("repository", repository.to_owned()),
            ("ref", git_ref.to_owned()),
            ("workflow", workflow.to_owned()),
            (
                "job_workflow_ref",
                format!("{repository}/.github/workflows/{workflow}.yml@{git_ref}"),
            ),
        ] {
            user.claims.insert(name.to_owned(), value);
        }
        user
    }

    /// Alice ([`ALICE`], groups `devops`), Bob ([`BOB`], `qa`) and Carol ([`CAROL`], none).
    pub fn defaults() -> Vec<User> {
        vec![
            User::new("alice", ALICE, "Alice Anders", &["devops"]),
            User::new("bob", BOB, "Bob Berg", &["qa"]),
            User::new("carol", CAROL, "Carol Chen", &[]),
        ]
    }
}

/// How to start the provider.
#[derive(Debug, Clone)]
pub struct Options {
    /// The ID tokens' lifetime.
    pub id_token_ttl: Duration,
    /// The signing algorithm: `RS256` or `ES256`.
    pub alg: &'static str,
    /// The people.
    pub users: Vec<User>,
    /// A fixed port (the issuer URL is known before the provider runs); `None`: any free port.
    pub port: Option<u16>,
    /// Redirect URIs of a web client `kargo-web` (the web UI's sign-in callback); none: no
    /// such client.
    pub web_redirect_uris: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            id_token_ttl: Duration::from_secs(300),
            alg: "RS256",
            users: User::defaults(),
            port: None,
            web_redirect_uris: Vec::new(),
        }
    }
}

/// The tokens the provider's token endpoint answered.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The ID token (a JWT).
    pub id_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

/// A running provider; stopped when dropped.
pub struct Provider {
    child: Option<Child>,
    dir: TempDir,
    issuer: String,
    admin: String,
    options: Options,
    agent: Agent,
}

impl Provider {
    /// Starts a provider with the default [`Options`].
    pub fn start() -> Provider {
        Provider::start_with(Options::default())
    }

    /// Starts a provider and waits until it serves.
    pub fn start_with(options: Options) -> Provider {
        let dir = tempfile::tempdir().expect("tempdir");
        write_certificates(dir.path());
        let mut provider = Provider {
            child: None,
            agent: Agent::new(&dir.path().join("ca.crt")),
            dir,
            issuer: String::new(),
            admin: String::new(),
            options,
        };
        provider.spawn();
        provider
    }

    /// A free loopback port, for [`Options::port`].
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    fn spawn(&mut self) {
        let oidc_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
        assert!(
            oidc_dir.join("node_modules/oidc-provider").exists(),
            "no tests/oidc/node_modules: run scripts/test.sh, or `npm ci --prefix tests/oidc`"
        );
        let users: Vec<Value> = self
            .options
            .users
            .iter()
            .map(|u| {
                json!({"sub": u.sub, "email": u.email, "password": u.password, "name": u.name,
                       "groups": u.groups, "claims": u.claims})
            })
            .collect();
        let config = json!({
            "cert": self.dir.path().join("tls.crt"),
            "key": self.dir.path().join("tls.key"),
            "idTokenTtl": self.options.id_token_ttl.as_secs(),
            "alg": self.options.alg,
            "port": self.options.port.unwrap_or(0),
            "users": users,
            "webRedirectUris": self.options.web_redirect_uris,
        });
        let config_path = self.dir.path().join("config.json");
        std::fs::write(&config_path, config.to_string()).expect("write the provider's config");
        let mut child = Command::new("node")
            .arg(oidc_dir.join("provider.mjs"))
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node (is node installed?)");
        // The provider's errors reach the test's output; its start-up warnings (the in-memory
        // adapter, the Node.js release) do not.
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if !line.starts_with("oidc-provider WARNING") {
                    eprintln!("oidc-provider: {line}");
                }
            }
        });
        // The ready line is awaited on another thread, so that a provider that hangs before it
        // fails the test after 30 s instead of blocking it.
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let ready = lines.find(|line| line.starts_with("oidc-provider ready "));
            let _ = ready_tx.send(ready);
            for _ in lines {}
        });
        let line = match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the OIDC provider exited: {:?}", child.wait()),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the OIDC provider did not start within 30 s");
            }
        };
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name))
                .expect("a field of the ready line")
                .to_owned()
        };
        self.issuer = field("issuer=");
        self.admin = field("admin=");
        self.child = Some(child);
    }

    /// Stops the provider (the issuer is unreachable until [`Provider::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped provider again on the same port (new signing key, no sessions).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.issuer.rsplit(':').next().and_then(|p| p.parse().ok());
        self.options.port = port;
        self.spawn();
    }

    /// `https://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The CA certificate of the provider's TLS certificate (for `--oidc-ca-file`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The `kargo server` flags for this provider: issuer, both client ids and the CA.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--oidc-issuer-url".into(),
            self.issuer.clone(),
            "--oidc-client-id".into(),
            CLIENT_ID.into(),
            "--oidc-cli-client-id".into(),
            CLI_CLIENT_ID.into(),
            "--oidc-ca-file".into(),
            self.ca().to_str().expect("a UTF-8 path").into(),
        ]
    }

    /// The person signed in as `email`.
    pub fn user(&self, email: &str) -> &User {
        self.options
            .users
            .iter()
            .find(|u| u.email == email)
            .unwrap_or_else(|| panic!("no user {email}"))
    }

    /// `(id_token, refresh_token)` for `email` and the CLI's client, got through the real
    /// authorization endpoint (login form, consent form, code + PKCE at the token endpoint).
    pub fn id_token(&self, email: &str) -> (String, String) {
        let tokens = self.tokens(CLI_CLIENT_ID, email);
        (tokens.id_token, tokens.refresh_token)
    }

    /// The tokens for `email` as client `client_id` (its ID token's `aud`).
    pub fn tokens(&self, client_id: &str, email: &str) -> Tokens {
        let verifier = random_text(64);
        let state = random_text(24);
        let redirect_uri = "http://localhost:8085/auth/callback";
        let url = self.authorization_url(client_id, redirect_uri, &verifier, &state);
        let callback = self.sign_in(&url, email, &self.user(email).password);
        let query = query_of(&callback);
        assert_eq!(query.get("state").map(String::as_str), Some(state.as_str()));
        let code = query
            .get("code")
            .unwrap_or_else(|| panic!("no code in {callback}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &verifier),
        ];
        self.token_endpoint(&form)
    }

    /// New tokens for a refresh token (as client [`CLI_CLIENT_ID`]); panics when refused.
    pub fn refresh(&self, refresh_token: &str) -> Tokens {
        self.token_endpoint(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLI_CLIENT_ID),
        ])
    }

    fn token_endpoint(&self, form: &[(&str, &str)]) -> Tokens {
        let (code, _, body) =
            self.agent
                .request("POST", &format!("{}/token", self.issuer), Some(form));
        assert_eq!(code, 200, "token endpoint: {body}");
        let body: Value = serde_json::from_str(&body).expect("token endpoint JSON");
        Tokens {
            id_token: body["id_token"].as_str().expect("id_token").to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }

    /// An authorization request URL (code flow, PKCE S256) as a client would build it.
    pub fn authorization_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        state: &str,
    ) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ));
        let params = [
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", SCOPES),
            ("state", state),
            ("nonce", &random_text(16)),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        format!("{}/auth?{}", self.issuer, form_encode(&params))
    }

    /// Drives an authorization URL (for example the one `kargo login --sso` prints) through
    /// the provider as `email` with `password`, posting the login and consent forms, up to the
    /// redirect to the client's callback; returns that callback URL (with `code` and `state`).
    /// Panics when the provider answers anything else (a refused login, an error page).
    pub fn sign_in(&self, authorization_url: &str, email: &str, password: &str) -> String {
        self.agent.sign_in(authorization_url, email, password)
    }

    /// Drives `authorization_url` as `email` (see [`Provider::sign_in`]) and then opens the
    /// callback URL, as a browser would, so the CLI's local callback server receives the code;
    /// returns what the callback answered: `(status, body)`.
    pub fn complete_login(&self, authorization_url: &str, email: &str) -> (u16, String) {
        let callback = self.sign_in(authorization_url, email, &self.user(email).password);
        let (code, _, body) = self.agent.request("GET", &callback, None);
        (code, body)
    }

    /// The authorization URL in a command's output (the line starting with the issuer's
    /// authorization endpoint), if any.
    pub fn find_authorization_url(&self, output: &str) -> Option<String> {
        let prefix = format!("{}/auth?", self.issuer);
        output
            .split_whitespace()
            .find(|word| word.starts_with(&prefix))
            .map(str::to_owned)
    }

    /// The provider's JWKS document.
    pub fn jwks(&self) -> Value {
        let (code, _, body) = self
            .agent
            .request("GET", &format!("{}/jwks", self.issuer), None);
        assert_eq!(code, 200, "jwks: {body}");
        serde_json::from_str(&body).expect("JWKS JSON")
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let (code, _, body) = self.agent.request("GET", &url, None);
        assert_eq!(code, 200, "discovery: {body}");
        serde_json::from_str(&body).expect("discovery JSON")
    }

    /// Rotates the signing key: the JWKS serves the new key first and keeps the previous one
    /// (`keep_previous`) or drops it. Returns the new `kid`.
    pub fn rotate_key(&self, keep_previous: bool) -> String {
        let url = format!(
            "{}/rotate{}",
            self.admin,
            if keep_previous { "" } else { "?drop=1" }
        );
        let (code, _, body) = self.agent.request("POST", &url, Some(&[]));
        assert_eq!(code, 200, "rotate: {body}");
        let body: Value = serde_json::from_str(&body).expect("rotate JSON");
        body["kid"].as_str().expect("kid").to_owned()
    }

    /// The `kid` the provider signs with now.
    pub fn kid(&self) -> String {
        let (code, _, body) = self
            .agent
            .request("GET", &format!("{}/kid", self.admin), None);
        assert_eq!(code, 200, "kid: {body}");
        let body: Value = serde_json::from_str(&body).expect("kid JSON");
        body["kid"].as_str().expect("kid").to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A scripted user agent: a cookie jar, no automatic redirects, and form posting.
struct Agent {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// Cookies by name (sent to every path of the provider; their names do not collide).
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Agent {
    fn new(ca: &Path) -> Agent {
        let pem = std::fs::read(ca).expect("read the CA");
        let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("the CA");
        let http = reqwest::Client::builder()
            .tls_certs_only(certs)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Agent {
            runtime,
            http,
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    /// A request with the jar's cookies; a form body when `form` is given. Returns
    /// `(status, Location, body)` and keeps the cookies the answer sets.
    fn request(
        &self,
        method: &str,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> (u16, Option<String>, String) {
        let cookie_header = {
            let jar = self.cookies.lock().expect("jar");
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, url);
        if !cookie_header.is_empty() {
            request = request.header("cookie", cookie_header);
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_encode(form));
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e:?}"));
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            {
                let mut jar = self.cookies.lock().expect("jar");
                for value in response.headers().get_all("set-cookie") {
                    let text = value.to_str().unwrap_or("");
                    let pair = text.split(';').next().unwrap_or("");
                    if let Some((name, value)) = pair.split_once('=') {
                        let expired = text
                            .to_ascii_lowercase()
                            .contains("expires=thu, 01 jan 1970")
                            || value.is_empty();
                        if expired {
                            jar.remove(name.trim());
                        } else {
                            jar.insert(name.trim().to_owned(), value.to_owned());
                        }
                    }
                }
            }
            let body = response.text().await.unwrap_or_default();
            (status, location, body)
        })
    }

    /// Signs in as a fresh browser would (an empty cookie jar: no session at the provider).
    fn sign_in(&self, authorization_url: &str, email: &str, password: &str) -> String {
        self.cookies.lock().expect("jar").clear();
        let redirect_uri = query_of(authorization_url)
            .remove("redirect_uri")
            .unwrap_or_else(|| panic!("no redirect_uri in {authorization_url}"));
        let mut url = authorization_url.to_owned();
        let mut answer = self.request("GET", &url, None);
        let mut logins = 0;
        for _ in 0..20 {
            match answer {
                (300..=399, Some(location), _) => {
                    let next = resolve(&url, &location);
                    if next.starts_with(&format!("{redirect_uri}?")) {
                        return next;
                    }
                    url = next;
                    answer = self.request("GET", &url, None);
                }
                (200, _, ref page) if page.contains("<form") => {
                    let form = Form::parse(page);
                    let mut fields = form.fields;
                    if fields.contains_key("login") {
                        logins += 1;
                        assert_eq!(logins, 1, "the login of {email} was refused:\n{page}");
                        fields.insert("login".into(), email.into());
                        fields.insert("password".into(), password.into());
                    }
                    let pairs: Vec<(&str, &str)> = fields
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    url = resolve(&url, &form.action);
                    answer = self.request("POST", &url, Some(&pairs));
                }
                (code, location, body) => {
                    panic!("sign-in at {url}: {code} {location:?}\n{body}")
                }
            }
        }
        panic!("sign-in did not reach {redirect_uri}");
    }
}

/// The first POST form of a page: its action and its named inputs with their values.
struct Form {
    action: String,
    fields: BTreeMap<String, String>,
}

impl Form {
    fn parse(page: &str) -> Form {
        let start = page.find("<form").expect("a form");
        let end = page[start..]
            .find("</form>")
            .map_or(page.len(), |e| start + e);
        let form = &page[start..end];
        let tag_end = form.find('>').expect("a form tag");
        let action = attribute(&form[..tag_end], "action").unwrap_or_default();
        let mut fields = BTreeMap::new();
        for input in form.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            if let Some(name) = attribute(tag, "name") {
                fields.insert(name, attribute(tag, "value").unwrap_or_default());
            }
        }
        Form {
            action: unescape(&action),
            fields,
        }
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

fn unescape(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// `location` resolved against `base` (absolute URLs, or absolute paths).
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let scheme_end = base.find("://").expect("an absolute URL") + 3;
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    assert!(location.starts_with('/'), "a relative location: {location}");
    format!("{}{location}", &base[..origin_end])
}

/// The query parameters of a URL, decoded.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `value` percent-encoded for a query or form (everything but `A-Za-z0-9-._~`).
pub fn form_encode_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode_value(k), form_encode_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `len` random characters of `A-Za-z0-9` (PKCE verifiers, states, nonces).
pub fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A CA and a serving certificate for 127.0.0.1 and localhost: `ca.crt`, `tls.crt`, `tls.key`.
fn write_certificates(dir: &Path) {
    let ca = kargo_store::testing::TestCa::new("kargo-test-oidc-ca");
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write ca.crt");
    let (cert, key) = ca.serving("kargo-test-oidc");
    std::fs::write(dir.join("tls.crt"), cert).expect("write tls.crt");
    std::fs::write(dir.join("tls.key"), key).expect("write tls.key");
}

/// The claims of a JWT, decoded without verification (to look at what the provider issued).
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// The header of a JWT, decoded.
pub fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

/// `claims` signed (RS256) with a fresh RSA key the provider never had, under the header `kid`:
/// a re-signed or forged token.
pub fn sign_with_foreign_key(kid: &str, claims: &Value) -> String {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes())
        .expect("an RSA encoding key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}
