//! The registry's statements: tenants, devices, API keys, dashboards.
//!
//! Each is one statement (autocommit), durable before it returns, except the tenant purge
//! and the last-seen batch, which are one transaction each. Secrets arrive and are stored
//! only as their SHA-256 hashes, and no error message ever includes one. Errors match the
//! SQLite backend's: a taken name or secret is [`StoreError::AlreadyExists`] (told apart by
//! constraint name), a tenant that does not exist is [`StoreError::InvalidQuery`]. A
//! device keeps at most two token hashes: the current one and, during a rotation, the
//! previous one with the instant it stops working.

use std::collections::BTreeMap;
use std::time::Duration;

use ingot_core::{JsonText, TenantId, Timestamp};
use ingot_store::{
    ApiKey, Dashboard, Device, DeviceUpdate, Purge, Role, SecretHash, StoreError, Tenant,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{self, corrupt};
use crate::pool::{Conn, prepare_cached};
use crate::schema::Layout;

fn tenant_id(key: i64) -> Result<TenantId, StoreError> {
    u32::try_from(key)
        .map(TenantId)
        .map_err(|_| corrupt(format!("tenant id {key}")))
}

fn unknown_tenant(tenant: TenantId) -> StoreError {
    StoreError::InvalidQuery(format!("tenant {tenant} does not exist"))
}

fn retention(seconds: Option<i64>) -> Option<Duration> {
    seconds.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

async fn rows(
    conn: &mut Conn,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = conn.prepare(sql).await?;
    conn.client
        .query(&statement, params)
        .await
        .map_err(error::pg)
}

/// Prepares `sql` (a failure there is the store's), then executes it, handing an execution
/// error back to the caller to map: a unique violation means something different per
/// statement.
async fn execute(
    conn: &mut Conn,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Result<u64, tokio_postgres::Error>, StoreError> {
    let statement = conn.prepare(sql).await?;
    Ok(conn.client.execute(&statement, params).await)
}

const TENANT_COLUMNS: &str = "id, name, created, retention, disabled, deleting";

fn tenant_from_row(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: tenant_id(row.try_get(0).map_err(error::pg)?)?,
        name: row.try_get(1).map_err(error::pg)?,
        created: Timestamp::from_micros(row.try_get(2).map_err(error::pg)?),
        retention: retention(row.try_get(3).map_err(error::pg)?),
        disabled: row.try_get(4).map_err(error::pg)?,
        deleting: row.try_get(5).map_err(error::pg)?,
    })
}

pub(crate) async fn create_tenant(conn: &mut Conn, name: &str) -> Result<Tenant, StoreError> {
    let created = Timestamp::now();
    let statement = conn
        .prepare("INSERT INTO tenants (name, created) VALUES ($1, $2) RETURNING id")
        .await?;
    match conn
        .client
        .query_one(&statement, &[&name, &created.as_micros()])
        .await
    {
        Ok(row) => Ok(Tenant {
            id: tenant_id(row.try_get(0).map_err(error::pg)?)?,
            name: name.to_owned(),
            created,
            retention: None,
            disabled: false,
            deleting: false,
        }),
        Err(e) if error::unique_violation(&e).is_some() => Err(StoreError::AlreadyExists {
            what: format!("tenant {name}"),
        }),
        Err(e) => Err(error::pg(e)),
    }
}

pub(crate) async fn tenant_by_name(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1");
    rows(conn, &sql, &[&name])
        .await?
        .first()
        .map(tenant_from_row)
        .transpose()
}

pub(crate) async fn tenant(conn: &mut Conn, id: TenantId) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
    rows(conn, &sql, &[&i64::from(id.0)])
        .await?
        .first()
        .map(tenant_from_row)
        .transpose()
}

pub(crate) async fn list_tenants(conn: &mut Conn) -> Result<Vec<Tenant>, StoreError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id");
    rows(conn, &sql, &[])
        .await?
        .iter()
        .map(tenant_from_row)
        .collect()
}

pub(crate) async fn set_tenant_retention(
    conn: &mut Conn,
    tenant: TenantId,
    retention: Option<Duration>,
) -> Result<bool, StoreError> {
    let seconds = retention.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let changed = execute(
        conn,
        "UPDATE tenants SET retention = $2 WHERE id = $1",
        &[&i64::from(tenant.0), &seconds],
    )
    .await?
    .map_err(error::pg)?;
    Ok(changed > 0)
}

pub(crate) async fn set_tenant_disabled(
    conn: &mut Conn,
    tenant: TenantId,
    disabled: bool,
) -> Result<bool, StoreError> {
    let changed = execute(
        conn,
        "UPDATE tenants SET disabled = $2 WHERE id = $1 AND NOT deleting",
        &[&i64::from(tenant.0), &disabled],
    )
    .await?
    .map_err(error::pg)?;
    Ok(changed > 0)
}

pub(crate) async fn mark_tenant_deleting(
    conn: &mut Conn,
    tenant: TenantId,
) -> Result<bool, StoreError> {
    let changed = execute(
        conn,
        "UPDATE tenants SET deleting = true, disabled = true WHERE id = $1",
        &[&i64::from(tenant.0)],
    )
    .await?
    .map_err(error::pg)?;
    Ok(changed > 0)
}

/// Deletes a bounded slice of a deleting tenant's events; once none is left, the rest of it.
pub(crate) async fn purge_tenant(
    conn: &mut Conn,
    layout: Layout,
    tenant: TenantId,
    limit: usize,
) -> Result<Purge, StoreError> {
    let key = i64::from(tenant.0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (client, cache) = conn.parts();
    let tx = client.transaction().await.map_err(error::pg)?;
    let statement = prepare_cached(
        cache,
        &tx,
        "SELECT deleting FROM tenants WHERE id = $1 FOR UPDATE",
    )
    .await?;
    let deleting: Option<bool> = match tx.query_opt(&statement, &[&key]).await.map_err(error::pg)? {
        Some(row) => Some(row.try_get(0).map_err(error::pg)?),
        None => None,
    };
    match deleting {
        Some(true) => {}
        Some(false) => {
            return Err(StoreError::InvalidQuery(format!(
                "tenant {tenant} is not being deleted"
            )));
        }
        None => {
            return Ok(Purge {
                events: 0,
                done: true,
            });
        }
    }
    let ids = match layout {
        Layout::Plain => "",
        Layout::Hypertable => {
            ", ids AS (DELETE FROM event_ids i USING gone WHERE i.tenant = $1 AND i.id = gone.id)"
        }
    };
    let sql = format!(
        "WITH batch AS (SELECT ts, id FROM events WHERE tenant = $1 LIMIT $2), \
         gone AS (DELETE FROM events e USING batch WHERE e.tenant = $1 AND e.ts = batch.ts AND e.id = batch.id RETURNING e.id), \
         pay AS (DELETE FROM payloads p USING gone WHERE p.tenant = $1 AND p.id = gone.id){ids} \
         SELECT count(*) FROM gone"
    );
    let statement = prepare_cached(cache, &tx, &sql).await?;
    let row = tx
        .query_one(&statement, &[&key, &limit])
        .await
        .map_err(error::pg)?;
    let events: i64 = row.try_get(0).map_err(error::pg)?;
    let done = events < limit;
    if done {
        let mut tables = vec!["payloads", "devices", "api_keys", "dashboards"];
        if layout == Layout::Hypertable {
            tables.push("event_ids");
        }
        for table in tables {
            tx.execute(&format!("DELETE FROM {table} WHERE tenant = $1"), &[&key])
                .await
                .map_err(error::pg)?;
        }
        tx.execute("DELETE FROM tenants WHERE id = $1", &[&key])
            .await
            .map_err(error::pg)?;
    }
    tx.commit().await.map_err(error::pg)?;
    Ok(Purge {
        events: u64::try_from(events).unwrap_or(0),
        done,
    })
}

const DEVICE_COLUMNS: &str =
    "tenant, name, created, enabled, labels, last_seen, previous_token_until";

fn device_from_row(row: &Row) -> Result<Device, StoreError> {
    let labels: String = row.try_get(4).map_err(error::pg)?;
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&labels).map_err(|e| corrupt(format!("device labels: {e}")))?;
    Ok(Device {
        tenant: tenant_id(row.try_get(0).map_err(error::pg)?)?,
        name: row.try_get(1).map_err(error::pg)?,
        created: Timestamp::from_micros(row.try_get(2).map_err(error::pg)?),
        enabled: row.try_get(3).map_err(error::pg)?,
        labels,
        last_seen: row
            .try_get::<_, Option<i64>>(5)
            .map_err(error::pg)?
            .map(Timestamp::from_micros),
        previous_token_until: row
            .try_get::<_, Option<i64>>(6)
            .map_err(error::pg)?
            .map(Timestamp::from_micros),
    })
}

async fn devices_where(
    conn: &mut Conn,
    condition: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Device>, StoreError> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices {condition}");
    rows(conn, &sql, params)
        .await?
        .iter()
        .map(device_from_row)
        .collect()
}

fn device_conflict(e: tokio_postgres::Error, tenant: TenantId, name: &str) -> StoreError {
    match error::unique_violation(&e) {
        Some("devices_token_hash_key") => StoreError::AlreadyExists {
            what: "device with this token".to_owned(),
        },
        Some(_) => StoreError::AlreadyExists {
            what: format!("device {name}"),
        },
        None if error::is_foreign_key(&e) => unknown_tenant(tenant),
        None => error::pg(e),
    }
}

pub(crate) async fn create_device(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
    token: &SecretHash,
) -> Result<Device, StoreError> {
    let created = Timestamp::now();
    let result = execute(
        conn,
        "INSERT INTO devices (tenant, name, token_hash, created) VALUES ($1, $2, $3, $4)",
        &[
            &i64::from(tenant.0),
            &name,
            &&token[..],
            &created.as_micros(),
        ],
    )
    .await?;
    match result {
        Ok(_) => Ok(Device {
            tenant,
            name: name.to_owned(),
            created,
            enabled: true,
            labels: BTreeMap::new(),
            last_seen: None,
            previous_token_until: None,
        }),
        Err(e) => Err(device_conflict(e, tenant, name)),
    }
}

pub(crate) async fn delete_device(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let deleted = execute(
        conn,
        "DELETE FROM devices WHERE tenant = $1 AND name = $2",
        &[&i64::from(tenant.0), &name],
    )
    .await?
    .map_err(error::pg)?;
    Ok(deleted > 0)
}

pub(crate) async fn device_by_token(
    conn: &mut Conn,
    token: &SecretHash,
    now: Timestamp,
) -> Result<Option<Device>, StoreError> {
    let token = &token[..];
    let current = devices_where(conn, "WHERE token_hash = $1", &[&token]).await?;
    if let Some(device) = current.into_iter().next() {
        return Ok(Some(device));
    }
    let previous = devices_where(
        conn,
        "WHERE previous_token_hash = $1 AND previous_token_until > $2",
        &[&token, &now.as_micros()],
    )
    .await?;
    Ok(previous.into_iter().next())
}

pub(crate) async fn list_devices(
    conn: &mut Conn,
    tenant: TenantId,
) -> Result<Vec<Device>, StoreError> {
    devices_where(
        conn,
        "WHERE tenant = $1 ORDER BY name",
        &[&i64::from(tenant.0)],
    )
    .await
}

pub(crate) async fn get_device(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Device>, StoreError> {
    Ok(devices_where(
        conn,
        "WHERE tenant = $1 AND name = $2",
        &[&i64::from(tenant.0), &name],
    )
    .await?
    .into_iter()
    .next())
}

pub(crate) async fn update_device(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
    update: &DeviceUpdate,
) -> Result<Option<Device>, StoreError> {
    let labels = match &update.labels {
        Some(labels) => {
            Some(serde_json::to_string(labels).map_err(|e| StoreError::Backend(e.to_string()))?)
        }
        None => None,
    };
    let changed = execute(
        conn,
        "UPDATE devices SET enabled = COALESCE($3, enabled), labels = COALESCE($4, labels) \
         WHERE tenant = $1 AND name = $2",
        &[&i64::from(tenant.0), &name, &update.enabled, &labels],
    )
    .await?
    .map_err(error::pg)?;
    if changed == 0 {
        return Ok(None);
    }
    get_device(conn, tenant, name).await
}

pub(crate) async fn rotate_device_token(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
    token: &SecretHash,
    previous_until: Timestamp,
) -> Result<bool, StoreError> {
    let result = execute(
        conn,
        "UPDATE devices SET previous_token_hash = token_hash, previous_token_until = $4, token_hash = $3 \
         WHERE tenant = $1 AND name = $2",
        &[&i64::from(tenant.0), &name, &&token[..], &previous_until.as_micros()],
    )
    .await?;
    match result {
        Ok(changed) => Ok(changed > 0),
        Err(e) => Err(device_conflict(e, tenant, name)),
    }
}

pub(crate) async fn touch_devices(
    conn: &mut Conn,
    tenant: TenantId,
    seen: &[(String, Timestamp)],
) -> Result<(), StoreError> {
    let names: Vec<&str> = seen.iter().map(|(name, _)| name.as_str()).collect();
    let times: Vec<i64> = seen.iter().map(|(_, at)| at.as_micros()).collect();
    // One statement for the whole batch: unnest the pairs and join them to the devices.
    execute(
        conn,
        "UPDATE devices d SET last_seen = GREATEST(COALESCE(d.last_seen, s.at), s.at) \
         FROM unnest($2::text[], $3::bigint[]) AS s(name, at) \
         WHERE d.tenant = $1 AND d.name = s.name",
        &[&i64::from(tenant.0), &names, &times],
    )
    .await?
    .map_err(error::pg)?;
    Ok(())
}

const KEY_COLUMNS: &str = "id, tenant, role, created, expires";

fn key_from_row(row: &Row) -> Result<ApiKey, StoreError> {
    let role: String = row.try_get(2).map_err(error::pg)?;
    Ok(ApiKey {
        id: row.try_get(0).map_err(error::pg)?,
        tenant: tenant_id(row.try_get(1).map_err(error::pg)?)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("api key role {role:?}")))?,
        created: Timestamp::from_micros(row.try_get(3).map_err(error::pg)?),
        expires: row
            .try_get::<_, Option<i64>>(4)
            .map_err(error::pg)?
            .map(Timestamp::from_micros),
    })
}

pub(crate) async fn create_api_key(
    conn: &mut Conn,
    tenant: TenantId,
    id: &str,
    role: Role,
    key: &SecretHash,
    expires: Option<Timestamp>,
) -> Result<ApiKey, StoreError> {
    let created = Timestamp::now();
    let result = execute(
        conn,
        "INSERT INTO api_keys (id, tenant, role, key_hash, created, expires) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&id, &i64::from(tenant.0), &role.as_str(), &&key[..], &created.as_micros(), &expires.map(Timestamp::as_micros)],
    )
    .await?;
    match result {
        Ok(_) => Ok(ApiKey {
            id: id.to_owned(),
            tenant,
            role,
            created,
            expires,
        }),
        Err(e) => Err(match error::unique_violation(&e) {
            Some("api_keys_key_hash_key") => StoreError::AlreadyExists {
                what: "api key with this secret".to_owned(),
            },
            Some(_) => StoreError::AlreadyExists {
                what: format!("api key {id}"),
            },
            None if error::is_foreign_key(&e) => unknown_tenant(tenant),
            None => error::pg(e),
        }),
    }
}

pub(crate) async fn api_key_by_hash(
    conn: &mut Conn,
    key: &SecretHash,
    now: Timestamp,
) -> Result<Option<ApiKey>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked IS NULL \
         AND (expires IS NULL OR expires > $2)"
    );
    rows(conn, &sql, &[&&key[..], &now.as_micros()])
        .await?
        .first()
        .map(key_from_row)
        .transpose()
}

pub(crate) async fn list_api_keys(
    conn: &mut Conn,
    tenant: TenantId,
) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1 AND revoked IS NULL ORDER BY created, id"
    );
    rows(conn, &sql, &[&i64::from(tenant.0)])
        .await?
        .iter()
        .map(key_from_row)
        .collect()
}

pub(crate) async fn revoke_api_key(
    conn: &mut Conn,
    tenant: TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let changed = execute(
        conn,
        "UPDATE api_keys SET revoked = $3 WHERE tenant = $1 AND id = $2 AND revoked IS NULL",
        &[&i64::from(tenant.0), &id, &Timestamp::now().as_micros()],
    )
    .await?
    .map_err(error::pg)?;
    Ok(changed > 0)
}

fn dashboard_from_row(row: &Row) -> Result<Dashboard, StoreError> {
    Ok(Dashboard {
        tenant: tenant_id(row.try_get(0).map_err(error::pg)?)?,
        id: row.try_get(1).map_err(error::pg)?,
        name: row.try_get(2).map_err(error::pg)?,
        // Only JsonText is ever written to this column.
        spec: JsonText::from_trusted(row.try_get::<_, String>(3).map_err(error::pg)?),
        updated: Timestamp::from_micros(row.try_get(4).map_err(error::pg)?),
    })
}

pub(crate) async fn list_dashboards(
    conn: &mut Conn,
    tenant: TenantId,
) -> Result<Vec<Dashboard>, StoreError> {
    let sql =
        "SELECT tenant, id, name, spec, updated FROM dashboards WHERE tenant = $1 ORDER BY id";
    rows(conn, sql, &[&i64::from(tenant.0)])
        .await?
        .iter()
        .map(dashboard_from_row)
        .collect()
}

pub(crate) async fn get_dashboard(
    conn: &mut Conn,
    tenant: TenantId,
    id: &str,
) -> Result<Option<Dashboard>, StoreError> {
    let sql =
        "SELECT tenant, id, name, spec, updated FROM dashboards WHERE tenant = $1 AND id = $2";
    rows(conn, sql, &[&i64::from(tenant.0), &id])
        .await?
        .first()
        .map(dashboard_from_row)
        .transpose()
}

pub(crate) async fn put_dashboard(conn: &mut Conn, d: &Dashboard) -> Result<(), StoreError> {
    let result = execute(
        conn,
        "INSERT INTO dashboards (tenant, id, name, spec, updated) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, spec = excluded.spec, updated = excluded.updated",
        &[&i64::from(d.tenant.0), &d.id, &d.name, &d.spec.as_str(), &d.updated.as_micros()],
    )
    .await?;
    match result {
        Ok(_) => Ok(()),
        Err(e) if error::is_foreign_key(&e) => Err(unknown_tenant(d.tenant)),
        Err(e) => Err(error::pg(e)),
    }
}

pub(crate) async fn delete_dashboard(
    conn: &mut Conn,
    tenant: TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let deleted = execute(
        conn,
        "DELETE FROM dashboards WHERE tenant = $1 AND id = $2",
        &[&i64::from(tenant.0), &id],
    )
    .await?
    .map_err(error::pg)?;
    Ok(deleted > 0)
}
