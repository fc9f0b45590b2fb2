use super::*;
use async_trait::async_trait;
use ingot_core::Timestamp;
use ingot_store::{ApiKey, Device, Tenant};

/// An in-memory registry, enough to exercise the authenticator and the bootstrap.
#[derive(Debug, Default)]
struct MemRegistry {
    tenants: Mutex<Vec<Tenant>>,
    devices: Mutex<Vec<(Device, SecretHash)>>,
    keys: Mutex<Vec<(ApiKey, SecretHash, bool)>>,
    lookups: Mutex<usize>,
}

#[async_trait]
impl Registry for MemRegistry {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let mut tenants = self.tenants.lock();
        if tenants.iter().any(|t| t.name == name) {
            return Err(StoreError::AlreadyExists {
                what: format!("tenant {name}"),
            });
        }
        let tenant = Tenant {
            id: TenantId(tenants.len() as u32 + 1),
            name: name.into(),
            created: Timestamp::now(),
            retention: None,
        };
        tenants.push(tenant.clone());
        Ok(tenant)
    }
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.tenants.lock().iter().find(|t| t.name == name).cloned())
    }
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        Ok(self.tenants.lock().clone())
    }
    async fn set_tenant_retention(
        &self,
        tenant: TenantId,
        retention: Option<std::time::Duration>,
    ) -> Result<bool, StoreError> {
        let mut tenants = self.tenants.lock();
        let found = tenants.iter_mut().find(|t| t.id == tenant);
        Ok(found.map(|t| t.retention = retention).is_some())
    }
    async fn create_device(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
    ) -> Result<Device, StoreError> {
        let device = Device {
            tenant,
            name: name.into(),
            created: Timestamp::now(),
        };
        self.devices.lock().push((device.clone(), *token));
        Ok(device)
    }
    async fn delete_device(&self, tenant: TenantId, name: &str) -> Result<bool, StoreError> {
        let mut devices = self.devices.lock();
        let before = devices.len();
        devices.retain(|(d, _)| !(d.tenant == tenant && d.name == name));
        Ok(devices.len() < before)
    }
    async fn device_by_token(&self, token: &SecretHash) -> Result<Option<Device>, StoreError> {
        *self.lookups.lock() += 1;
        Ok(self
            .devices
            .lock()
            .iter()
            .find(|(_, h)| h == token)
            .map(|(d, _)| d.clone()))
    }
    async fn create_api_key(
        &self,
        tenant: TenantId,
        id: &str,
        role: Role,
        key: &SecretHash,
    ) -> Result<ApiKey, StoreError> {
        let api_key = ApiKey {
            id: id.into(),
            tenant,
            role,
            created: Timestamp::now(),
        };
        self.keys.lock().push((api_key.clone(), *key, false));
        Ok(api_key)
    }
    async fn api_key_by_hash(&self, key: &SecretHash) -> Result<Option<ApiKey>, StoreError> {
        *self.lookups.lock() += 1;
        Ok(self
            .keys
            .lock()
            .iter()
            .find(|(_, h, revoked)| h == key && !revoked)
            .map(|(k, ..)| k.clone()))
    }
    async fn revoke_api_key(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError> {
        let mut keys = self.keys.lock();
        let found = keys
            .iter_mut()
            .find(|(k, _, revoked)| k.tenant == tenant && k.id == id && !revoked);
        Ok(found.map(|(_, _, revoked)| *revoked = true).is_some())
    }
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
    let dir = tempfile::tempdir().unwrap();
    let registry = MemRegistry::default();
    let first = bootstrap(&registry, dir.path()).await.unwrap();
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
    let again = bootstrap(&registry, dir.path()).await.unwrap();
    assert_eq!(again.admin_key, None);
    assert_eq!(again.default_tenant, first.default_tenant);

    let auth = Authenticator::new(Arc::new(registry), first.default_tenant, false);
    let identity = auth.authenticate(Some(&key)).await.unwrap();
    assert_eq!(identity.role(), Some(Role::System));
    assert!(identity.require(Role::Admin).is_ok());
}

#[tokio::test]
async fn devices_keys_and_anonymous() {
    let registry = Arc::new(MemRegistry::default());
    let tenant = registry.create_tenant("acme").await.unwrap().id;
    let token = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "probe-7", &hash_secret(&token))
        .await
        .unwrap();
    let reader = generate_secret(SecretKind::ApiKey);
    registry
        .create_api_key(tenant, "k1", Role::Reader, &hash_secret(&reader))
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
}

#[tokio::test]
async fn cache_serves_hits_and_forgets_deleted_credentials() {
    let registry = Arc::new(MemRegistry::default());
    let tenant = registry.create_tenant("acme").await.unwrap().id;
    let token = generate_secret(SecretKind::DeviceToken);
    registry
        .create_device(tenant, "probe-7", &hash_secret(&token))
        .await
        .unwrap();
    let key = generate_secret(SecretKind::ApiKey);
    registry
        .create_api_key(tenant, "k1", Role::Admin, &hash_secret(&key))
        .await
        .unwrap();
    let auth = Authenticator::new(registry.clone(), tenant, false);

    for _ in 0..5 {
        auth.authenticate(Some(&token)).await.unwrap();
        auth.authenticate(Some(&key)).await.unwrap();
    }
    assert_eq!(
        *registry.lookups.lock(),
        2,
        "repeated hits come from the cache"
    );

    registry.delete_device(tenant, "probe-7").await.unwrap();
    auth.forget_device(tenant, "probe-7");
    assert!(matches!(
        auth.authenticate(Some(&token)).await,
        Err(AuthError::Invalid)
    ));
    registry.revoke_api_key(tenant, "k1").await.unwrap();
    auth.forget_key(tenant, "k1");
    assert!(matches!(
        auth.authenticate(Some(&key)).await,
        Err(AuthError::Invalid)
    ));
}
