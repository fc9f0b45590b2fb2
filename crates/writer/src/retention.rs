//! Retention: deletes each tenant's events older than its retention, in the background.
//!
//! Every `check_every`, for each tenant, the cut-off is now minus the tenant's own retention
//! (or the server default); events before it are deleted by [`EventStore::delete_before`]
//! in batches of `batch`, with a pause between batches so the store writer (which shares the
//! database's one writer) is never held up for long. A tenant with no retention and no
//! default keeps everything. A tenant marked for deletion whose purge was interrupted (by a
//! restart) is purged to the end.

use std::sync::Arc;
use std::time::Duration;

use ingot_core::Timestamp;
use ingot_store::Store;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// How retention runs.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Applies to tenants without their own retention; `None` keeps everything.
    pub default: Option<Duration>,
    /// How often to look for expired events.
    pub check_every: Duration,
    /// Events deleted per transaction.
    pub batch: usize,
    /// Pause between two batches.
    pub pause: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            default: None,
            check_every: Duration::from_secs(600),
            batch: 5_000,
            pause: Duration::from_millis(20),
        }
    }
}

/// Events deleted by retention.
#[derive(Debug, Clone, Default)]
pub struct RetentionMetrics {
    deleted: Counter,
}

impl RetentionMetrics {
    /// Registers `ingot_store_retention_deleted_total`.
    pub fn register(registry: &mut Registry) -> RetentionMetrics {
        let m = RetentionMetrics::default();
        registry.register(
            "ingot_store_retention_deleted",
            "Events deleted by retention",
            m.deleted.clone(),
        );
        m
    }
}

/// Runs retention until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    config: RetentionConfig,
    metrics: RetentionMetrics,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(error) = sweep(&*store, &config, &metrics, &shutdown).await {
            tracing::warn!(%error, "retention sweep failed; trying again later");
        }
        tokio::select! {
            () = tokio::time::sleep(config.check_every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One pass over every tenant; returns how many events it deleted.
pub async fn sweep(
    store: &dyn Store,
    config: &RetentionConfig,
    metrics: &RetentionMetrics,
    shutdown: &CancellationToken,
) -> Result<u64, ingot_store::StoreError> {
    let mut total = 0;
    for tenant in store.list_tenants().await? {
        if tenant.deleting {
            // A deletion interrupted by a restart: finish it.
            loop {
                if shutdown.is_cancelled() {
                    return Ok(total);
                }
                let step = store.purge_tenant(tenant.id, config.batch).await?;
                metrics.deleted.inc_by(step.events);
                total += step.events;
                if step.done {
                    tracing::info!(tenant = %tenant.name, "tenant deleted");
                    break;
                }
                tokio::time::sleep(config.pause).await;
            }
            continue;
        }
        let Some(keep) = tenant.retention.or(config.default) else {
            continue;
        };
        let cutoff = Timestamp::now()
            .saturating_add_micros(-i64::try_from(keep.as_micros()).unwrap_or(i64::MAX));
        loop {
            if shutdown.is_cancelled() {
                return Ok(total);
            }
            let deleted = store.delete_before(tenant.id, cutoff, config.batch).await?;
            metrics.deleted.inc_by(deleted);
            total += deleted;
            if deleted < config.batch as u64 {
                break;
            }
            tokio::time::sleep(config.pause).await;
        }
        if total > 0 {
            tracing::info!(tenant = %tenant.name, before = %cutoff, deleted = total, "retention deleted expired events");
        }
    }
    Ok(total)
}
