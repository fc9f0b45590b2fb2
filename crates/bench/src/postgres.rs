//! `postgres` (issue #3): the PostgreSQL store beside a raw binary `COPY` of the same
//! rows, by running `crates/store/postgres/examples/copy_vs_ingot.rs` (built by
//! `bench/run`) three times against the server `INGOT_TEST_POSTGRES_URL` names.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use ingot_sim::report::group;

use crate::{machine, mmm};

fn rows_per_s(output: &str, prefix: &str) -> Option<f64> {
    output
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l[prefix.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The `postgres` suite.
pub fn run(example: &Path, url: &str, quick: bool) -> anyhow::Result<String> {
    let events = if quick { 100_000 } else { 300_000 };
    let (mut peer, mut ours) = (Vec::new(), Vec::new());
    let mut server = String::new();
    for run in 0..3 {
        eprintln!("PostgreSQL: run {} of 3 ({events} events) ...", run + 1);
        let output = Command::new(example)
            .arg(url)
            .arg(events.to_string())
            .output()
            .with_context(|| format!("cannot run {}", example.display()))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "{} failed: {}{}",
                example.display(),
                text,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let p = rows_per_s(&text, "raw binary COPY (peer):").context("no peer figure")?;
        let o = rows_per_s(&text, "ingot write_batch:").context("no ingot figure")?;
        peer.push(p);
        ours.push(o);
        if server.is_empty() {
            server = text
                .lines()
                .take(2)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    let (pa, pb, pc) = mmm(&mut peer);
    let (oa, ob, oc) = mmm(&mut ours);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### PostgreSQL store beside raw COPY (issue #3)\n\nCommand: `bench/run{}` ({}), which runs \
         `cargo run --release -p ingot-store-postgres --example copy_vs_ingot -- \"$INGOT_TEST_POSTGRES_URL\" {events}` \
         three times: batches of 10,000 realistic events written both ways, alternating. Server: {server}.\n",
        if quick { " --quick" } else { "" },
        machine()
    );
    let _ = writeln!(
        out,
        "| measure | Ingot `write_batch` (idempotent, with checkpoint) | raw binary `COPY` | ratio | target |\n|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| rows/s | {} / **{}** / {} | {} / **{}** / {} | {:.2} | ≥ 0.5 |\n",
        group(oa),
        group(ob),
        group(oc),
        group(pa),
        group(pb),
        group(pc),
        ob / pb
    );
    Ok(out)
}
