//! The registry's statements: tenants, devices, API keys.
//!
//! Each is one statement (autocommit), durable before it returns. Secrets arrive and are
//! stored only as their SHA-256 hashes, and no error message ever includes one. Errors
//! match the SQLite backend's: a taken name or secret is [`StoreError::AlreadyExists`]
//! (told apart by constraint name), a tenant that does not exist is
//! [`StoreError::InvalidQuery`].

use std::time::Duration;

use ingot_core::{TenantId, Timestamp};
use ingot_store::{ApiKey, Device, Role, SecretHash, StoreError, Tenant};
use tokio_postgres::Row;

use crate::error::{self, corrupt};
use crate::pool::Conn;

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

fn tenant_from_row(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: tenant_id(row.try_get(0).map_err(error::pg)?)?,
        name: row.try_get(1).map_err(error::pg)?,
        created: Timestamp::from_micros(row.try_get(2).map_err(error::pg)?),
        retention: retention(row.try_get(3).map_err(error::pg)?),
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
    let statement = conn
        .prepare("SELECT id, name, created, retention FROM tenants WHERE name = $1")
        .await?;
    let row = conn
        .client
        .query_opt(&statement, &[&name])
        .await
        .map_err(error::pg)?;
    row.as_ref().map(tenant_from_row).transpose()
}

pub(crate) async fn list_tenants(conn: &mut Conn) -> Result<Vec<Tenant>, StoreError> {
    let statement = conn
        .prepare("SELECT id, name, created, retention FROM tenants ORDER BY id")
        .await?;
    let rows = conn
        .client
        .query(&statement, &[])
        .await
        .map_err(error::pg)?;
    rows.iter().map(tenant_from_row).collect()
}

pub(crate) async fn set_tenant_retention(
    conn: &mut Conn,
    tenant: TenantId,
    retention: Option<Duration>,
) -> Result<bool, StoreError> {
    let seconds = retention.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let statement = conn
        .prepare("UPDATE tenants SET retention = $2 WHERE id = $1")
        .await?;
    let changed = conn
        .client
        .execute(&statement, &[&i64::from(tenant.0), &seconds])
        .await
        .map_err(error::pg)?;
    Ok(changed > 0)
}

pub(crate) async fn create_device(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
    token: &SecretHash,
) -> Result<Device, StoreError> {
    let created = Timestamp::now();
    let statement = conn
        .prepare("INSERT INTO devices (tenant, name, token_hash, created) VALUES ($1, $2, $3, $4)")
        .await?;
    let result = conn
        .client
        .execute(
            &statement,
            &[
                &i64::from(tenant.0),
                &name,
                &&token[..],
                &created.as_micros(),
            ],
        )
        .await;
    match result {
        Ok(_) => Ok(Device {
            tenant,
            name: name.to_owned(),
            created,
        }),
        Err(e) => Err(match error::unique_violation(&e) {
            Some("devices_token_hash_key") => StoreError::AlreadyExists {
                what: "device with this token".to_owned(),
            },
            Some(_) => StoreError::AlreadyExists {
                what: format!("device {name}"),
            },
            None if error::is_foreign_key(&e) => unknown_tenant(tenant),
            None => error::pg(e),
        }),
    }
}

pub(crate) async fn delete_device(
    conn: &mut Conn,
    tenant: TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let statement = conn
        .prepare("DELETE FROM devices WHERE tenant = $1 AND name = $2")
        .await?;
    let deleted = conn
        .client
        .execute(&statement, &[&i64::from(tenant.0), &name])
        .await
        .map_err(error::pg)?;
    Ok(deleted > 0)
}

pub(crate) async fn device_by_token(
    conn: &mut Conn,
    token: &SecretHash,
) -> Result<Option<Device>, StoreError> {
    let statement = conn
        .prepare("SELECT tenant, name, created FROM devices WHERE token_hash = $1")
        .await?;
    let row = conn
        .client
        .query_opt(&statement, &[&&token[..]])
        .await
        .map_err(error::pg)?;
    row.map(|row| {
        Ok(Device {
            tenant: tenant_id(row.try_get(0).map_err(error::pg)?)?,
            name: row.try_get(1).map_err(error::pg)?,
            created: Timestamp::from_micros(row.try_get(2).map_err(error::pg)?),
        })
    })
    .transpose()
}

pub(crate) async fn create_api_key(
    conn: &mut Conn,
    tenant: TenantId,
    id: &str,
    role: Role,
    key: &SecretHash,
) -> Result<ApiKey, StoreError> {
    let created = Timestamp::now();
    let statement = conn
        .prepare(
            "INSERT INTO api_keys (id, tenant, role, key_hash, created) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    let result = conn
        .client
        .execute(
            &statement,
            &[
                &id,
                &i64::from(tenant.0),
                &role.as_str(),
                &&key[..],
                &created.as_micros(),
            ],
        )
        .await;
    match result {
        Ok(_) => Ok(ApiKey {
            id: id.to_owned(),
            tenant,
            role,
            created,
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
) -> Result<Option<ApiKey>, StoreError> {
    let statement = conn
        .prepare(
            "SELECT id, tenant, role, created FROM api_keys \
             WHERE key_hash = $1 AND revoked IS NULL",
        )
        .await?;
    let row = conn
        .client
        .query_opt(&statement, &[&&key[..]])
        .await
        .map_err(error::pg)?;
    row.map(|row| {
        let role: String = row.try_get(2).map_err(error::pg)?;
        let role = Role::parse(&role).ok_or_else(|| corrupt(format!("api key role {role:?}")))?;
        Ok(ApiKey {
            id: row.try_get(0).map_err(error::pg)?,
            tenant: tenant_id(row.try_get(1).map_err(error::pg)?)?,
            role,
            created: Timestamp::from_micros(row.try_get(3).map_err(error::pg)?),
        })
    })
    .transpose()
}

pub(crate) async fn revoke_api_key(
    conn: &mut Conn,
    tenant: TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let statement = conn
        .prepare(
            "UPDATE api_keys SET revoked = $3 \
             WHERE tenant = $1 AND id = $2 AND revoked IS NULL",
        )
        .await?;
    let changed = conn
        .client
        .execute(
            &statement,
            &[&i64::from(tenant.0), &id, &Timestamp::now().as_micros()],
        )
        .await
        .map_err(error::pg)?;
    Ok(changed > 0)
}
