//! The web UI in headless Chromium: runs the Playwright suite of `dashboard/e2e/` (sign-in,
//! Discover, a syntax error, Series, dashboards saved and reloaded, Devices, a reader key)
//! against this build's `ingot` binary, so `cargo test --workspace` covers the UI too.
//!
//! Needs Node, `dashboard/node_modules` (`npm ci` in `dashboard/`) and Chromium
//! (`/usr/bin/chromium`, Debian's `chromium` package, or `$CHROMIUM_PATH`). Without them the
//! test prints a note and passes, except with `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ingot_log_nats::testing::in_ci;

use crate::support::BIN;

/// What the suite needs, or why it cannot run.
fn prerequisites(dashboard: &Path) -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Err(format!(
            "no Chromium at {} (apt-get install -y chromium, or set CHROMIUM_PATH)",
            chromium.display()
        ));
    }
    let cli = dashboard.join("node_modules/@playwright/test/cli.js");
    if !cli.exists() {
        return Err(format!("no {} (run `npm ci` in dashboard/)", cli.display()));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Err("no `node` on PATH".to_owned());
    }
    Ok((chromium, cli))
}

#[test]
fn the_ui_passes_its_browser_tests() {
    let dashboard = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let (chromium, cli) = match prerequisites(&dashboard) {
        Ok(found) => found,
        Err(missing) if in_ci() => panic!("CI=true and the UI tests cannot run: {missing}"),
        Err(missing) => {
            eprintln!("note: skipping the UI's browser tests: {missing}");
            return;
        }
    };
    let started = Instant::now();
    let output = Command::new("node")
        .arg(&cli)
        .arg("test")
        .current_dir(&dashboard)
        .env("INGOT_BIN", BIN)
        .env("CHROMIUM_PATH", &chromium)
        .env_remove("SCREENSHOTS")
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Playwright suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(" passed") && !stdout.contains(" failed"),
        "unexpected Playwright report:\n{stdout}\n{stderr}"
    );
    eprintln!(
        "the UI's browser tests passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
