//! The registry's statements: tenants, devices, API keys, dashboards.
//!
//! Plain blocking functions over a [`Connection`]; `lib.rs` runs them in blocking tasks.
//! Secrets arrive and are stored only as their SHA-256 hashes, and no error message ever
//! includes one. A device keeps at most two token hashes: the current one and, during a
//! rotation, the previous one with the instant it stops working.

use std::collections::BTreeMap;
use std::time::Duration;

use ingot_core::{JsonText, TenantId, Timestamp};
use ingot_store::{
    ApiKey, Dashboard, Device, DeviceUpdate, Purge, Role, SecretHash, StoreError, Tenant,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::{self, Conflict, corrupt};

fn tenant_id(rowid: i64) -> Result<TenantId, StoreError> {
    u32::try_from(rowid)
        .map(TenantId)
        .map_err(|_| corrupt(format!("tenant id {rowid}")))
}

fn unknown_tenant(tenant: TenantId) -> StoreError {
    StoreError::InvalidQuery(format!("tenant {tenant} does not exist"))
}

fn retention(seconds: Option<i64>) -> Option<Duration> {
    seconds.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

const TENANT_COLUMNS: &str = "id, name, created, retention, disabled, deleting";

fn tenant_from_row(r: &Row<'_>) -> Result<Tenant, StoreError> {
    let get = |e| error::sqlite(e);
    Ok(Tenant {
        id: tenant_id(r.get(0).map_err(get)?)?,
        name: r.get(1).map_err(get)?,
        created: Timestamp::from_micros(r.get(2).map_err(get)?),
        retention: retention(r.get(3).map_err(get)?),
        disabled: r.get::<_, i64>(4).map_err(get)? != 0,
        deleting: r.get::<_, i64>(5).map_err(get)? != 0,
    })
}

fn tenants_where(
    conn: &Connection,
    condition: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Vec<Tenant>, StoreError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants {condition} ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql).map_err(error::sqlite)?;
    let mut rows = stmt.query([param]).map_err(error::sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error::sqlite)? {
        out.push(tenant_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn create_tenant(conn: &Connection, name: &str) -> Result<Tenant, StoreError> {
    let created = Timestamp::now();
    let mut stmt = conn
        .prepare_cached("INSERT INTO tenants (name, created) VALUES (?1, ?2)")
        .map_err(error::sqlite)?;
    match stmt.execute((name, created.as_micros())) {
        Ok(_) => {}
        Err(e) if error::conflict(&e).is_some() => {
            return Err(StoreError::AlreadyExists {
                what: format!("tenant {name}"),
            });
        }
        Err(e) => return Err(error::sqlite(e)),
    }
    let id = tenant_id(conn.last_insert_rowid())?;
    Ok(Tenant {
        id,
        name: name.to_owned(),
        created,
        retention: None,
        disabled: false,
        deleting: false,
    })
}

pub(crate) fn tenant_by_name(conn: &Connection, name: &str) -> Result<Option<Tenant>, StoreError> {
    Ok(tenants_where(conn, "WHERE name = ?1", &name)?
        .into_iter()
        .next())
}

pub(crate) fn tenant(conn: &Connection, id: TenantId) -> Result<Option<Tenant>, StoreError> {
    Ok(tenants_where(conn, "WHERE id = ?1", &id.0)?
        .into_iter()
        .next())
}

pub(crate) fn list_tenants(conn: &Connection) -> Result<Vec<Tenant>, StoreError> {
    tenants_where(conn, "WHERE ?1 = 1", &1)
}

pub(crate) fn set_tenant_retention(
    conn: &Connection,
    tenant: TenantId,
    retention: Option<Duration>,
) -> Result<bool, StoreError> {
    let seconds = retention.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let changed = conn
        .prepare_cached("UPDATE tenants SET retention = ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute((tenant.0, seconds)))
        .map_err(error::sqlite)?;
    Ok(changed > 0)
}

pub(crate) fn set_tenant_disabled(
    conn: &Connection,
    tenant: TenantId,
    disabled: bool,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached("UPDATE tenants SET disabled = ?2 WHERE id = ?1 AND deleting = 0")
        .and_then(|mut stmt| stmt.execute((tenant.0, i64::from(disabled))))
        .map_err(error::sqlite)?;
    Ok(changed > 0)
}

pub(crate) fn mark_tenant_deleting(
    conn: &Connection,
    tenant: TenantId,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached("UPDATE tenants SET deleting = 1, disabled = 1 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([tenant.0]))
        .map_err(error::sqlite)?;
    Ok(changed > 0)
}

/// Deletes a bounded slice of a deleting tenant's events; once none is left, the rest of it.
pub(crate) fn purge_tenant(
    conn: &mut Connection,
    tenant: TenantId,
    limit: usize,
) -> Result<Purge, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    let deleting: Option<i64> = tx
        .query_row(
            "SELECT deleting FROM tenants WHERE id = ?1",
            [tenant.0],
            |r| r.get(0),
        )
        .optional()
        .map_err(error::sqlite)?;
    match deleting {
        Some(1) => {}
        Some(_) => {
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
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let some = "SELECT tenant, ts, id FROM events WHERE tenant = ?1 LIMIT ?2";
    tx.execute(
        &format!("DELETE FROM payloads WHERE (tenant, id) IN (SELECT tenant, id FROM ({some}))"),
        (tenant.0, limit),
    )
    .map_err(error::sqlite)?;
    let events = tx
        .execute(
            &format!("DELETE FROM events WHERE (tenant, ts, id) IN ({some})"),
            (tenant.0, limit),
        )
        .map_err(error::sqlite)? as u64;
    let done = i64::try_from(events).unwrap_or(i64::MAX) < limit;
    if done {
        for table in ["payloads", "devices", "api_keys", "dashboards"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE tenant = ?1"),
                [tenant.0],
            )
            .map_err(error::sqlite)?;
        }
        tx.execute("DELETE FROM tenants WHERE id = ?1", [tenant.0])
            .map_err(error::sqlite)?;
    }
    tx.commit().map_err(error::sqlite)?;
    Ok(Purge { events, done })
}

const DEVICE_COLUMNS: &str =
    "tenant, name, created, enabled, labels, last_seen, previous_token_until";

fn device_from_row(r: &Row<'_>) -> Result<Device, StoreError> {
    let get = |e| error::sqlite(e);
    let labels: String = r.get(4).map_err(get)?;
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&labels).map_err(|e| corrupt(format!("device labels: {e}")))?;
    Ok(Device {
        tenant: tenant_id(r.get(0).map_err(get)?)?,
        name: r.get(1).map_err(get)?,
        created: Timestamp::from_micros(r.get(2).map_err(get)?),
        enabled: r.get::<_, i64>(3).map_err(get)? != 0,
        labels,
        last_seen: r
            .get::<_, Option<i64>>(5)
            .map_err(get)?
            .map(Timestamp::from_micros),
        previous_token_until: r
            .get::<_, Option<i64>>(6)
            .map_err(get)?
            .map(Timestamp::from_micros),
    })
}

fn devices_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Device>, StoreError> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices {condition}");
    let mut stmt = conn.prepare_cached(&sql).map_err(error::sqlite)?;
    let mut rows = stmt.query(params).map_err(error::sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error::sqlite)? {
        out.push(device_from_row(row)?);
    }
    Ok(out)
}

/// Maps a failed insert or update of a device's token.
fn device_conflict(e: rusqlite::Error, tenant: TenantId, name: &str) -> StoreError {
    match error::conflict(&e) {
        Some((Conflict::Unique, msg)) if msg.contains("token_hash") => StoreError::AlreadyExists {
            what: "device with this token".to_owned(),
        },
        Some(_) => StoreError::AlreadyExists {
            what: format!("device {name}"),
        },
        None if error::is_foreign_key(&e) => unknown_tenant(tenant),
        None => error::sqlite(e),
    }
}

pub(crate) fn create_device(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
    token: &SecretHash,
) -> Result<Device, StoreError> {
    let created = Timestamp::now();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO devices (tenant, name, token_hash, created) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(error::sqlite)?;
    match stmt.execute((tenant.0, name, &token[..], created.as_micros())) {
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

pub(crate) fn delete_device(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM devices WHERE tenant = ?1 AND name = ?2")
        .map_err(error::sqlite)?;
    let deleted = stmt.execute((tenant.0, name)).map_err(error::sqlite)?;
    Ok(deleted > 0)
}

pub(crate) fn device_by_token(
    conn: &Connection,
    token: &SecretHash,
    now: Timestamp,
) -> Result<Option<Device>, StoreError> {
    let current = devices_where(conn, "WHERE token_hash = ?1", [&token[..]])?;
    if let Some(device) = current.into_iter().next() {
        return Ok(Some(device));
    }
    let previous = devices_where(
        conn,
        "WHERE previous_token_hash = ?1 AND previous_token_until > ?2",
        (&token[..], now.as_micros()),
    )?;
    Ok(previous.into_iter().next())
}

pub(crate) fn list_devices(conn: &Connection, tenant: TenantId) -> Result<Vec<Device>, StoreError> {
    devices_where(conn, "WHERE tenant = ?1 ORDER BY name", [tenant.0])
}

pub(crate) fn get_device(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Device>, StoreError> {
    Ok(
        devices_where(conn, "WHERE tenant = ?1 AND name = ?2", (tenant.0, name))?
            .into_iter()
            .next(),
    )
}

pub(crate) fn update_device(
    conn: &Connection,
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
    let changed = conn
        .prepare_cached(
            "UPDATE devices SET enabled = COALESCE(?3, enabled), labels = COALESCE(?4, labels) \
             WHERE tenant = ?1 AND name = ?2",
        )
        .and_then(|mut stmt| stmt.execute((tenant.0, name, update.enabled.map(i64::from), labels)))
        .map_err(error::sqlite)?;
    if changed == 0 {
        return Ok(None);
    }
    get_device(conn, tenant, name)
}

pub(crate) fn rotate_device_token(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
    token: &SecretHash,
    previous_until: Timestamp,
) -> Result<bool, StoreError> {
    let result = conn
        .prepare_cached(
            "UPDATE devices SET previous_token_hash = token_hash, previous_token_until = ?4, \
             token_hash = ?3 WHERE tenant = ?1 AND name = ?2",
        )
        .and_then(|mut stmt| {
            stmt.execute((tenant.0, name, &token[..], previous_until.as_micros()))
        });
    match result {
        Ok(changed) => Ok(changed > 0),
        Err(e) => Err(device_conflict(e, tenant, name)),
    }
}

pub(crate) fn touch_devices(
    conn: &mut Connection,
    tenant: TenantId,
    seen: &[(String, Timestamp)],
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE devices SET last_seen = max(COALESCE(last_seen, ?3), ?3) WHERE tenant = ?1 AND name = ?2",
            )
            .map_err(error::sqlite)?;
        for (name, at) in seen {
            stmt.execute((tenant.0, name, at.as_micros()))
                .map_err(error::sqlite)?;
        }
    }
    tx.commit().map_err(error::sqlite)
}

const KEY_COLUMNS: &str = "id, tenant, role, created, expires";

fn key_from_row(r: &Row<'_>) -> Result<ApiKey, StoreError> {
    let get = |e| error::sqlite(e);
    let role: String = r.get(2).map_err(get)?;
    Ok(ApiKey {
        id: r.get(0).map_err(get)?,
        tenant: tenant_id(r.get(1).map_err(get)?)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("api key role {role:?}")))?,
        created: Timestamp::from_micros(r.get(3).map_err(get)?),
        expires: r
            .get::<_, Option<i64>>(4)
            .map_err(get)?
            .map(Timestamp::from_micros),
    })
}

pub(crate) fn create_api_key(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
    role: Role,
    key: &SecretHash,
    expires: Option<Timestamp>,
) -> Result<ApiKey, StoreError> {
    let created = Timestamp::now();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO api_keys (id, tenant, role, key_hash, created, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(error::sqlite)?;
    let result = stmt.execute((
        id,
        tenant.0,
        role.as_str(),
        &key[..],
        created.as_micros(),
        expires.map(Timestamp::as_micros),
    ));
    match result {
        Ok(_) => Ok(ApiKey {
            id: id.to_owned(),
            tenant,
            role,
            created,
            expires,
        }),
        Err(e) => Err(match error::conflict(&e) {
            Some((Conflict::Unique, msg)) if msg.contains("key_hash") => {
                StoreError::AlreadyExists {
                    what: "api key with this secret".to_owned(),
                }
            }
            Some(_) => StoreError::AlreadyExists {
                what: format!("api key {id}"),
            },
            None if error::is_foreign_key(&e) => unknown_tenant(tenant),
            None => error::sqlite(e),
        }),
    }
}

fn keys_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys {condition}");
    let mut stmt = conn.prepare_cached(&sql).map_err(error::sqlite)?;
    let mut rows = stmt.query(params).map_err(error::sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error::sqlite)? {
        out.push(key_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn api_key_by_hash(
    conn: &Connection,
    key: &SecretHash,
    now: Timestamp,
) -> Result<Option<ApiKey>, StoreError> {
    let found = keys_where(
        conn,
        "WHERE key_hash = ?1 AND revoked IS NULL AND (expires IS NULL OR expires > ?2)",
        (&key[..], now.as_micros()),
    )?;
    Ok(found.into_iter().next())
}

pub(crate) fn list_api_keys(
    conn: &Connection,
    tenant: TenantId,
) -> Result<Vec<ApiKey>, StoreError> {
    keys_where(
        conn,
        "WHERE tenant = ?1 AND revoked IS NULL ORDER BY created, id",
        [tenant.0],
    )
}

pub(crate) fn revoke_api_key(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE api_keys SET revoked = ?3 WHERE tenant = ?1 AND id = ?2 AND revoked IS NULL",
        )
        .map_err(error::sqlite)?;
    let changed = stmt
        .execute((tenant.0, id, Timestamp::now().as_micros()))
        .map_err(error::sqlite)?;
    Ok(changed > 0)
}

fn dashboards_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Dashboard>, StoreError> {
    let sql = format!("SELECT tenant, id, name, spec, updated FROM dashboards {condition}");
    let mut stmt = conn.prepare_cached(&sql).map_err(error::sqlite)?;
    let mut rows = stmt.query(params).map_err(error::sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(error::sqlite)? {
        let get = |e| error::sqlite(e);
        out.push(Dashboard {
            tenant: tenant_id(r.get(0).map_err(get)?)?,
            id: r.get(1).map_err(get)?,
            name: r.get(2).map_err(get)?,
            // Only JsonText is ever written to this column.
            spec: JsonText::from_trusted(r.get::<_, String>(3).map_err(get)?),
            updated: Timestamp::from_micros(r.get(4).map_err(get)?),
        });
    }
    Ok(out)
}

pub(crate) fn list_dashboards(
    conn: &Connection,
    tenant: TenantId,
) -> Result<Vec<Dashboard>, StoreError> {
    dashboards_where(conn, "WHERE tenant = ?1 ORDER BY id", [tenant.0])
}

pub(crate) fn get_dashboard(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<Dashboard>, StoreError> {
    Ok(
        dashboards_where(conn, "WHERE tenant = ?1 AND id = ?2", (tenant.0, id))?
            .into_iter()
            .next(),
    )
}

pub(crate) fn put_dashboard(conn: &Connection, d: &Dashboard) -> Result<(), StoreError> {
    let result = conn
        .prepare_cached(
            "INSERT INTO dashboards (tenant, id, name, spec, updated) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, spec = excluded.spec, \
             updated = excluded.updated",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                d.tenant.0,
                &d.id,
                &d.name,
                d.spec.as_str(),
                d.updated.as_micros(),
            ))
        });
    match result {
        Ok(_) => Ok(()),
        Err(e) if error::is_foreign_key(&e) => Err(unknown_tenant(d.tenant)),
        Err(e) => Err(error::sqlite(e)),
    }
}

pub(crate) fn delete_dashboard(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM dashboards WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute((tenant.0, id)))
        .map_err(error::sqlite)?;
    Ok(deleted > 0)
}
