//! The registry's statements: tenants, devices, API keys.
//!
//! Plain blocking functions over a [`Connection`]; `lib.rs` runs them in blocking tasks.
//! Secrets arrive and are stored only as their SHA-256 hashes, and no error message ever
//! includes one.

use std::time::Duration;

use ingot_core::{TenantId, Timestamp};
use ingot_store::{ApiKey, Device, Role, SecretHash, StoreError, Tenant};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{self, Conflict, corrupt};

fn tenant_id(rowid: i64) -> Result<TenantId, StoreError> {
    u32::try_from(rowid)
        .map(TenantId)
        .map_err(|_| corrupt(format!("tenant id {rowid}")))
}

fn unknown_tenant(tenant: TenantId) -> StoreError {
    StoreError::InvalidQuery(format!("tenant {tenant} does not exist"))
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
    })
}

fn retention(seconds: Option<i64>) -> Option<Duration> {
    seconds.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

pub(crate) fn tenant_by_name(conn: &Connection, name: &str) -> Result<Option<Tenant>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, created, retention FROM tenants WHERE name = ?1")
        .map_err(error::sqlite)?;
    let row = stmt
        .query_row([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .optional()
        .map_err(error::sqlite)?;
    row.map(|(id, created, seconds)| {
        Ok(Tenant {
            id: tenant_id(id)?,
            name: name.to_owned(),
            created: Timestamp::from_micros(created),
            retention: retention(seconds),
        })
    })
    .transpose()
}

pub(crate) fn list_tenants(conn: &Connection) -> Result<Vec<Tenant>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, created, retention FROM tenants ORDER BY id")
        .map_err(error::sqlite)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .map_err(error::sqlite)?;
    let mut tenants = Vec::new();
    for row in rows {
        let (id, name, created, seconds) = row.map_err(error::sqlite)?;
        tenants.push(Tenant {
            id: tenant_id(id)?,
            name,
            created: Timestamp::from_micros(created),
            retention: retention(seconds),
        });
    }
    Ok(tenants)
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
        }),
        Err(e) => Err(match error::conflict(&e) {
            Some((Conflict::Unique, msg)) if msg.contains("token_hash") => {
                StoreError::AlreadyExists {
                    what: "device with this token".to_owned(),
                }
            }
            Some(_) => StoreError::AlreadyExists {
                what: format!("device {name}"),
            },
            None if error::is_foreign_key(&e) => unknown_tenant(tenant),
            None => error::sqlite(e),
        }),
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
) -> Result<Option<Device>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT tenant, name, created FROM devices WHERE token_hash = ?1")
        .map_err(error::sqlite)?;
    let row = stmt
        .query_row([&token[..]], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()
        .map_err(error::sqlite)?;
    row.map(|(tenant, name, created)| {
        Ok(Device {
            tenant: tenant_id(tenant)?,
            name,
            created: Timestamp::from_micros(created),
        })
    })
    .transpose()
}

pub(crate) fn create_api_key(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
    role: Role,
    key: &SecretHash,
) -> Result<ApiKey, StoreError> {
    let created = Timestamp::now();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO api_keys (id, tenant, role, key_hash, created) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(error::sqlite)?;
    match stmt.execute((id, tenant.0, role.as_str(), &key[..], created.as_micros())) {
        Ok(_) => Ok(ApiKey {
            id: id.to_owned(),
            tenant,
            role,
            created,
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

pub(crate) fn api_key_by_hash(
    conn: &Connection,
    key: &SecretHash,
) -> Result<Option<ApiKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, tenant, role, created FROM api_keys \
             WHERE key_hash = ?1 AND revoked IS NULL",
        )
        .map_err(error::sqlite)?;
    let row = stmt
        .query_row([&key[..]], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()
        .map_err(error::sqlite)?;
    row.map(|(id, tenant, role, created)| {
        let role = Role::parse(&role).ok_or_else(|| corrupt(format!("api key role {role:?}")))?;
        Ok(ApiKey {
            id,
            tenant: tenant_id(tenant)?,
            role,
            created: Timestamp::from_micros(created),
        })
    })
    .transpose()
}

pub(crate) fn revoke_api_key(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE api_keys SET revoked = ?3 \
             WHERE tenant = ?1 AND id = ?2 AND revoked IS NULL",
        )
        .map_err(error::sqlite)?;
    let changed = stmt
        .execute((tenant.0, id, Timestamp::now().as_micros()))
        .map_err(error::sqlite)?;
    Ok(changed > 0)
}
