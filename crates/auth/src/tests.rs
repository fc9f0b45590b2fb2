use ingot_store::{DeviceUpdate, Registry as _};
use ingot_store_sqlite::SqliteStore;

use super::*;

/// A real registry in a temp dir (the SQLite store; any backend passes the same suite).
fn registry() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    (dir, store)
}

#[test]
fn secrets_are_prefixed_random_and_hashed() {
    let a = generate_secret(SecretKind::DeviceToken);
    let b = generate_secret(SecretKind::DeviceToken);
    assert!(a.starts_with("idt_") && a.len() == 4 + 43, "{a}");
    assert_ne!(a, b);
    assert!(generate_secret(SecretKind::ApiKey).starts_with("ik_"));
    assert_eq!(hash_secret("abc"), hash_secret("abc"));
    assert_ne!(hash_secret(&a), hash_secret(&b));
    assert_eq!(generate_key_id().len(), 16);
}

#[tokio::test]
async fn bootstrap_creates_the_default_tenant_and_key_once() {
    let (dir, registry) = registry();
    let first = bootstrap(&*registry, dir.path()).await.unwrap();
    let key = first.admin_key.clone().unwrap();
    let on_disk = std::fs::read_to_string(&first.admin_key_path).unwrap();
    assert_eq!(on_disk.trim(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&first.admin_key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = bootstrap(&*registry, dir.path()).await.unwrap();
    assert_eq!(again.admin_key, None);
    assert_eq!(again.default_tenant, first.default_tenant);

    let auth = Authenticator::new(registry, first.default_tenant, false);
    let identity = auth.authenticate(Some(&key)).await.unwrap();
    assert_eq!(identity.role(), Some(Role::System));
    assert!(identity.require(Role::Admin).is_ok());
}

#[tokio::test]
async fn devices_keys_and_anonymous() {
    let (_dir, registry) = registry();
    let tenant = registry.create_tenant("acme").await.unwrap().id;
    let token = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "probe-7", &hash_secret(&token))
        .await
        .unwrap();
    let reader = generate_secret(SecretKind::ApiKey);
    registry
        .create_api_key(tenant, "k1", Role::Reader, &hash_secret(&reader), None)
        .await
        .unwrap();

    let auth = Authenticator::new(registry.clone(), tenant, false);
    let device = auth.authenticate(Some(&token)).await.unwrap();
    assert_eq!(
        device,
        Identity::Device {
            tenant,
            device: "probe-7".into()
        }
    );
    assert!(
        matches!(device.require(Role::Reader), Err(AuthError::Forbidden(m)) if m.contains("not a device token"))
    );
    let key = auth.authenticate(Some(&reader)).await.unwrap();
    assert!(
        matches!(key.require(Role::Writer), Err(AuthError::Forbidden(m)) if m.contains("this key is reader"))
    );
    assert!(matches!(
        auth.authenticate(None).await,
        Err(AuthError::Missing)
    ));
    assert!(matches!(
        auth.authenticate(Some("idt_nope")).await,
        Err(AuthError::Invalid)
    ));
    assert!(matches!(
        auth.authenticate(Some("ik_nope")).await,
        Err(AuthError::Invalid)
    ));

    let open = Authenticator::new(registry.clone(), tenant, true);
    assert_eq!(
        open.authenticate(None).await.unwrap(),
        Identity::Anonymous { tenant }
    );

    // An expired key is refused.
    let old = generate_secret(SecretKind::ApiKey);
    registry
        .create_api_key(
            tenant,
            "k2",
            Role::Admin,
            &hash_secret(&old),
            Some(Timestamp::from_millis(1)),
        )
        .await
        .unwrap();
    assert!(matches!(
        auth.authenticate(Some(&old)).await,
        Err(AuthError::Invalid)
    ));
}

#[tokio::test]
async fn disabled_devices_and_tenants_are_refused() {
    let (_dir, registry) = registry();
    let tenant = registry.create_tenant("acme").await.unwrap().id;
    let token = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "probe-7", &hash_secret(&token))
        .await
        .unwrap();
    let key = generate_secret(SecretKind::ApiKey);
    registry
        .create_api_key(tenant, "k1", Role::Admin, &hash_secret(&key), None)
        .await
        .unwrap();
    let auth = Authenticator::new(registry.clone(), tenant, false);
    auth.authenticate(Some(&token)).await.unwrap();

    registry
        .update_device(
            tenant,
            "probe-7",
            &DeviceUpdate {
                enabled: Some(false),
                labels: None,
            },
        )
        .await
        .unwrap();
    auth.forget_device(tenant, "probe-7");
    assert!(
        matches!(auth.authenticate(Some(&token)).await, Err(AuthError::Forbidden(m)) if m.contains("device is disabled"))
    );
    registry
        .update_device(
            tenant,
            "probe-7",
            &DeviceUpdate {
                enabled: Some(true),
                labels: None,
            },
        )
        .await
        .unwrap();
    auth.forget_device(tenant, "probe-7");
    auth.authenticate(Some(&token)).await.unwrap();

    registry.set_tenant_disabled(tenant, true).await.unwrap();
    auth.forget_tenant(tenant);
    for secret in [&token, &key] {
        assert!(
            matches!(auth.authenticate(Some(secret)).await, Err(AuthError::Forbidden(m)) if m.contains("tenant is disabled"))
        );
    }
    registry.set_tenant_disabled(tenant, false).await.unwrap();
    auth.forget_tenant(tenant);
    auth.authenticate(Some(&key)).await.unwrap();
    registry.mark_tenant_deleting(tenant).await.unwrap();
    auth.forget_tenant(tenant);
    assert!(
        matches!(auth.authenticate(Some(&key)).await, Err(AuthError::Invalid)),
        "a tenant being deleted is gone"
    );
}

#[tokio::test]
async fn cache_serves_hits_forgets_deleted_credentials_and_records_last_seen() {
    let (_dir, registry) = registry();
    let tenant = registry.create_tenant("acme").await.unwrap().id;
    let token = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "probe-7", &hash_secret(&token))
        .await
        .unwrap();
    let key = generate_secret(SecretKind::ApiKey);
    registry
        .create_api_key(tenant, "k1", Role::Admin, &hash_secret(&key), None)
        .await
        .unwrap();
    let auth = Authenticator::new(registry.clone(), tenant, false);

    // Once cached, a credential resolves even if the registry no longer has it (until
    // forgotten or the TTL ends): the cache really is what answers.
    auth.authenticate(Some(&token)).await.unwrap();
    registry.delete_device(tenant, "probe-7").await.unwrap();
    assert!(
        auth.authenticate(Some(&token)).await.is_ok(),
        "served from the cache"
    );
    auth.forget_device(tenant, "probe-7");
    assert!(matches!(
        auth.authenticate(Some(&token)).await,
        Err(AuthError::Invalid)
    ));

    auth.authenticate(Some(&key)).await.unwrap();
    registry.revoke_api_key(tenant, "k1").await.unwrap();
    auth.forget_key(tenant, "k1");
    assert!(matches!(
        auth.authenticate(Some(&key)).await,
        Err(AuthError::Invalid)
    ));

    // Last seen is recorded in memory and written in one flush (first, what the
    // authentications above recorded).
    auth.flush_last_seen().await.unwrap();
    let other = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "cam-1", &hash_secret(&other))
        .await
        .unwrap();
    let before = Timestamp::now();
    auth.authenticate(Some(&other)).await.unwrap();
    assert_eq!(
        registry
            .get_device(tenant, "cam-1")
            .await
            .unwrap()
            .unwrap()
            .last_seen,
        None
    );
    assert_eq!(auth.flush_last_seen().await.unwrap(), 1);
    let seen = registry
        .get_device(tenant, "cam-1")
        .await
        .unwrap()
        .unwrap()
        .last_seen
        .unwrap();
    assert!(seen >= before);
    assert_eq!(
        auth.flush_last_seen().await.unwrap(),
        0,
        "nothing new to write"
    );
}

#[tokio::test]
async fn a_rotated_token_stops_at_the_end_of_its_grace_even_when_cached() {
    let (_dir, registry) = registry();
    let tenant = registry.create_tenant("acme").await.unwrap().id;
    let old = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "probe-7", &hash_secret(&old))
        .await
        .unwrap();
    let auth = Authenticator::new(registry.clone(), tenant, false);
    auth.authenticate(Some(&old)).await.unwrap();
    let new = generate_secret(SecretKind::DeviceToken);
    let grace_end = Timestamp::now().saturating_add_micros(300_000);
    registry
        .rotate_device_token(tenant, "probe-7", &hash_secret(&new), grace_end)
        .await
        .unwrap();
    auth.forget_device(tenant, "probe-7");
    // Both work during the grace, the old one from the cache on the second call.
    for _ in 0..2 {
        auth.authenticate(Some(&old)).await.unwrap();
        auth.authenticate(Some(&new)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        matches!(auth.authenticate(Some(&old)).await, Err(AuthError::Invalid)),
        "the cache did not outlive the grace"
    );
    auth.authenticate(Some(&new)).await.unwrap();
}
