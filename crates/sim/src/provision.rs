//! `--provision`: registers the simulated devices through Ingot's admin API and hands
//! their tokens to the run — the way an operator would enrol real devices.
//!
//! `POST /api/v1/devices {"name": …}` with an admin key answers the device's token, shown
//! only then. A device that already exists (409, from an earlier run) is deleted and
//! created again to get a fresh token; its stored events stay. Sixteen requests run at
//! once, so ten thousand devices take seconds, not minutes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::error::SimError;

/// Requests at once.
const PARALLEL: usize = 16;

/// Reads an admin key from a file (such as `<data-dir>/admin.key`).
pub fn read_key(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path)
        .map(|key| key.trim().to_owned())
        .map_err(|source| SimError::ApiKey {
            path: path.display().to_string(),
            source,
        })
}

async fn create(
    http: &reqwest::Client,
    server: &str,
    key: &str,
    name: &str,
) -> Result<String, SimError> {
    let fail = |reason: String, status: Option<u16>| SimError::Provision {
        device: name.to_owned(),
        reason,
        status,
    };
    let url = format!("{server}/api/v1/devices");
    for attempt in 0..2 {
        let response = http
            .post(&url)
            .bearer_auth(key)
            .json(&json!({ "name": name }))
            .send()
            .await
            .map_err(|e| fail(format!("cannot reach {server}: {e}"), None))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match status {
            201 => {
                let body: Value = serde_json::from_str(&text)
                    .map_err(|e| fail(format!("unexpected answer: {e}"), Some(status)))?;
                return body["token"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| fail("the answer has no token".into(), Some(status)));
            }
            409 if attempt == 0 => {
                let deleted = http
                    .delete(format!("{url}/{name}"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .map_err(|e| fail(format!("cannot reach {server}: {e}"), None))?;
                if !deleted.status().is_success() {
                    let status = deleted.status().as_u16();
                    let text = deleted.text().await.unwrap_or_default();
                    return Err(fail(
                        format!("it exists and cannot be replaced: {text}"),
                        Some(status),
                    ));
                }
            }
            _ => {
                return Err(fail(
                    format!("the server answered {status}: {text}"),
                    Some(status),
                ));
            }
        }
    }
    Err(fail("it exists and cannot be replaced".into(), Some(409)))
}

/// Creates `names` on `server` (a base URL such as `http://127.0.0.1:8080`) with the admin
/// `key`, and returns their tokens in the same order.
pub async fn provision(server: &str, key: &str, names: &[String]) -> Result<Vec<String>, SimError> {
    let server = server.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| SimError::Provision {
            device: names.first().cloned().unwrap_or_default(),
            reason: e.to_string(),
            status: None,
        })?;
    let names = Arc::new(names.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PARALLEL.min(names.len()) {
        let (http, server, key) = (http.clone(), server.clone(), key.to_owned());
        let (names, next) = (names.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else {
                    return Ok(done);
                };
                match create(&http, &server, &key, name).await {
                    Ok(token) => done.push((i, token)),
                    Err(e) => {
                        // Stop the others early.
                        next.store(names.len(), Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }));
    }
    let mut tokens = vec![String::new(); names.len()];
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(done)) => {
                for (i, token) in done {
                    tokens[i] = token;
                }
            }
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(SimError::Provision {
                    device: String::new(),
                    reason: format!("a provisioning task failed: {e}"),
                    status: None,
                });
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(tokens),
    }
}
