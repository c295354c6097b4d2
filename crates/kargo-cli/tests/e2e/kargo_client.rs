//! A small client of the Kargo REST API for the `kargo_*` tests: requests with curl, JSON
//! answers, and `check` helpers that assert a status code and the exact `{"error": ...}`.

use serde_json::{Value, json};

use crate::harness::Server;

/// Requests as one caller (a bearer token) to one server.
pub struct Kargo<'a> {
    /// The server.
    pub server: &'a Server,
    /// The bearer token, if any.
    pub token: Option<String>,
}

/// What a request answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status code.
    pub code: u16,
    /// The body as JSON (`Null` when empty, a string when not JSON).
    pub body: Value,
}

impl Answer {
    /// The `error` of an error body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// What a request should answer: a code and either an exact error message or nothing more.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect<'a> {
    /// A success code.
    Ok(u16),
    /// An error code and its exact message.
    Err(u16, &'a str),
}

impl<'a> Kargo<'a> {
    /// The admin, logged in through the Kargo API.
    pub fn admin(server: &'a Server) -> Kargo<'a> {
        Kargo {
            server,
            token: Some(server.admin_token()),
        }
    }

    /// A caller with `token`.
    pub fn with_token(server: &'a Server, token: &str) -> Kargo<'a> {
        Kargo {
            server,
            token: Some(token.to_owned()),
        }
    }

    /// A raw request.
    pub fn raw(&self, method: &str, path: &str, headers: &[&str], body: Option<&[u8]>) -> Answer {
        let (code, text) = self
            .server
            .curl(method, path, self.token.as_deref(), headers, body);
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer { code, body }
    }

    /// A request with a JSON body (or none).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        self.raw(
            method,
            path,
            &["Content-Type: application/json"],
            bytes.as_deref(),
        )
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None)
    }

    /// `POST path body`.
    pub fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(&body))
    }

    /// `PUT path body`.
    pub fn put(&self, path: &str, body: Value) -> Answer {
        self.call("PUT", path, Some(&body))
    }

    /// Checks a request's answer; returns the body.
    #[track_caller]
    pub fn check(&self, method: &str, path: &str, body: Option<Value>, expect: Expect) -> Value {
        let answer = self.call(method, path, body.as_ref());
        check(&answer, method, path, expect);
        answer.body
    }

    /// Creates a project (201).
    #[track_caller]
    pub fn project(&self, name: &str) -> Value {
        self.check(
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {"name": name}})),
            Expect::Ok(201),
        )
    }

    /// Creates a Kargo ServiceAccount (201).
    #[track_caller]
    pub fn service_account(&self, project: &str, name: &str) -> Value {
        self.check(
            "POST",
            &format!("/v1beta1/projects/{project}/service-accounts"),
            Some(json!({"metadata": {"name": name}})),
            Expect::Ok(201),
        )
    }

    /// Creates a token (201) and returns the JWT.
    #[track_caller]
    pub fn token(&self, project: &str, sa: &str, name: &str) -> String {
        let secret = self.check(
            "POST",
            &format!("/v1beta1/projects/{project}/service-accounts/{sa}/tokens"),
            Some(json!({"name": name})),
            Expect::Ok(201),
        );
        decode(&secret["data"]["token"])
    }

    /// Creates a role (201).
    #[track_caller]
    pub fn role(&self, project: &str, body: Value) -> Value {
        self.check(
            "POST",
            &format!("/v1beta1/projects/{project}/roles"),
            Some(body),
            Expect::Ok(201),
        )
    }

    /// Grants (200).
    #[track_caller]
    pub fn grant(&self, project: &str, body: Value) -> Value {
        self.check(
            "POST",
            &format!("/v1beta1/projects/{project}/roles/grants"),
            Some(body),
            Expect::Ok(200),
        )
    }

    /// An object of the Kubernetes API (admin), or `None` if missing.
    pub fn kube(&self, path: &str) -> Option<Value> {
        let answer = self.get(path);
        match answer.code {
            200 => Some(answer.body),
            404 => None,
            code => panic!("GET {path}: {code} {}", answer.body),
        }
    }

    /// Creates an object through the Kubernetes API (admin), as a declarative tool would.
    #[track_caller]
    pub fn kube_create(&self, path: &str, body: Value) -> Value {
        let answer = self.post(path, body);
        assert_eq!(answer.code, 201, "POST {path}: {}", answer.body);
        answer.body
    }
}

/// Asserts an answer.
#[track_caller]
pub fn check(answer: &Answer, method: &str, path: &str, expect: Expect) {
    match expect {
        Expect::Ok(code) => assert_eq!(
            answer.code, code,
            "{method} {path} answered {}",
            answer.body
        ),
        Expect::Err(code, message) => assert_eq!(
            (answer.code, &answer.body),
            (code, &json!({"error": message})),
            "{method} {path}"
        ),
    }
}

/// A base64 `data` value, decoded.
pub fn decode(value: &Value) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

/// The `metadata.name`s of a list's items (or of a JSON array of roles).
pub fn names(list: &Value) -> Vec<String> {
    let items = list.get("items").unwrap_or(list);
    items
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}
