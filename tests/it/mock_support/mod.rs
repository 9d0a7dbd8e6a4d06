//! Shared helpers: a started sample server and an authenticated client.

#![allow(dead_code)]

use matterbak::mock::{MockServer, SAMPLE_TOKEN, Workspace};
use reqwest::{Method, Response};
use serde_json::Value;

pub struct Ctx {
    pub server: MockServer,
    pub http: reqwest::Client,
    pub token: String,
}

impl Ctx {
    pub async fn sample() -> Ctx {
        Self::with(Workspace::sample()).await
    }

    pub async fn with(workspace: Workspace) -> Ctx {
        let server = MockServer::start(workspace).await.expect("start mock");
        Ctx {
            server,
            http: reqwest::Client::new(),
            token: SAMPLE_TOKEN.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v4{path}", self.server.url())
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("send")
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json body")
    }

    pub fn ws<R>(&self, f: impl FnOnce(&mut Workspace) -> R) -> R {
        self.server.with_workspace(f)
    }

    pub fn channel(&self, team: &str, name: &str) -> String {
        self.ws(|ws| ws.channel_id(team, name))
    }
}

/// The `id` of a JSON error body, after checking the status.
pub async fn error_id(response: Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error json");
    assert_eq!(body["status_code"], status);
    body["id"].as_str().unwrap_or_default().to_owned()
}

pub fn order(list: &Value) -> Vec<String> {
    list["order"]
        .as_array()
        .expect("order array")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn create_at(list: &Value, id: &str) -> i64 {
    list["posts"][id]["create_at"].as_i64().expect("create_at")
}

/// Opens `n` new group channels of alice with 2 to 4 other users of the sample workspace,
/// each a different set and none the same as a sample group; their ids.
pub fn create_groups(ws: &mut Workspace, n: usize) -> Vec<String> {
    let others = ["bob", "carol", "dave", "erin", "frank", "helperbot", "zed"];
    // The sample's groups with alice: {bob, carol} and {bob, carol, erin}.
    let taken = [0b11, 0b1011];
    (0u32..1 << others.len())
        .filter(|mask| (2..=4).contains(&mask.count_ones()) && !taken.contains(mask))
        .take(n)
        .map(|mask| {
            let mut members = vec!["alice"];
            members.extend(
                (0..others.len())
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| others[i]),
            );
            ws.create_group_channel(&members)
        })
        .collect()
}
