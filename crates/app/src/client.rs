//! The admin commands: thin wrappers over the HTTP API (`ingot device add`, ...).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};

/// Where the server is and which key to use.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(
        long,
        env = "INGOT_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,

    /// An API key [default: the contents of <data-dir>/admin.key].
    #[arg(long, env = "INGOT_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,

    /// Where to find admin.key when no --api-key is given.
    #[arg(
        long,
        env = "INGOT_DATA_DIR",
        default_value = "ingot-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Print the server's JSON answer as is.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    fn key(&self) -> anyhow::Result<String> {
        if let Some(key) = &self.api_key {
            return Ok(key.clone());
        }
        let path = self.data_dir.join(ingot_auth::ADMIN_KEY_FILE);
        let key = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no --api-key given and cannot read {} (is this the server's data directory?)",
                path.display()
            )
        })?;
        Ok(key.trim().to_owned())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    /// Sends one request and returns the JSON answer, or the server's error message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let client = reqwest::Client::new();
        let mut request = client
            .request(method.clone(), self.url(path))
            .bearer_auth(self.key()?);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.server))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!("{method} {path} failed ({status}): {message}");
        }
        Ok(value)
    }

    fn print(&self, value: &Value, lines: &[(&str, &str)], note: Option<&str>) {
        if self.json {
            println!("{value}");
            return;
        }
        for (label, key) in lines {
            println!("{label:<8} {}", value[*key].as_str().unwrap_or_default());
        }
        if let Some(note) = note {
            println!("\n{note}");
        }
    }
}

/// `ingot device add NAME`.
pub async fn device_add(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let value = args
        .call(
            reqwest::Method::POST,
            "/api/v1/devices",
            Some(json!({ "name": name })),
        )
        .await?;
    args.print(
        &value,
        &[("device", "device"), ("token", "token")],
        Some("The token is shown only now: store it on the device."),
    );
    Ok(())
}

/// `ingot device rm NAME`.
pub async fn device_rm(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    args.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/devices/{name}"),
        None,
    )
    .await?;
    if !args.json {
        println!("device {name} removed; its token no longer works");
    }
    Ok(())
}

/// `ingot key add --role ROLE`.
pub async fn key_add(args: &ClientArgs, role: &str) -> anyhow::Result<()> {
    let value = args
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(json!({ "role": role })),
        )
        .await?;
    args.print(
        &value,
        &[("id", "id"), ("role", "role"), ("key", "key")],
        Some("The key is shown only now."),
    );
    Ok(())
}

/// `ingot key rm ID`.
pub async fn key_rm(args: &ClientArgs, id: &str) -> anyhow::Result<()> {
    args.call(reqwest::Method::DELETE, &format!("/api/v1/keys/{id}"), None)
        .await?;
    if !args.json {
        println!("key {id} revoked");
    }
    Ok(())
}

/// `ingot tenant add NAME`.
pub async fn tenant_add(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let value = args
        .call(
            reqwest::Method::POST,
            "/api/v1/tenants",
            Some(json!({ "name": name })),
        )
        .await?;
    args.print(
        &value,
        &[("tenant", "tenant"), ("key id", "id"), ("key", "key")],
        Some("This is the tenant's first admin key, shown only now."),
    );
    Ok(())
}
