//! Who is calling: device tokens, API keys with roles, and the first-start bootstrap.
//!
//! Secrets are 32 random bytes, shown to their owner once in base64url with a prefix that
//! says what they are (`idt_` device token, `ik_` API key) and stored only as SHA-256. A
//! fast hash is right here: the secrets are uniformly random 256-bit values, so there is
//! nothing for a slow password hash to protect against, and every request checks one.
//!
//! [`Authenticator`] turns a bearer secret into an [`Identity`], caching hits for a short
//! time so ingest does not query the registry per request. Deleting a device or revoking a
//! key through this process invalidates the cache at once; another replica's cache entry
//! lives at most [`CACHE_TTL`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ingot_core::error::{ErrorExt, ErrorKind};
use ingot_core::{TenantId, Timestamp};
use ingot_store::{Registry, Role, SecretHash, StoreError};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// How long a resolved credential is trusted without asking the registry again.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// The tenant created on first start, and the one anonymous devices write into.
pub const DEFAULT_TENANT: &str = "default";

/// The file under the data directory that holds the first admin key.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A device, by its token: writes only as itself.
    Device {
        /// Its tenant.
        tenant: TenantId,
        /// Its name.
        device: String,
    },
    /// A person or service, by API key.
    Key {
        /// The key's tenant.
        tenant: TenantId,
        /// What it may do.
        role: Role,
        /// The key's public id.
        key_id: String,
    },
    /// Nobody, accepted only when the server runs with `--allow-anonymous`.
    Anonymous {
        /// The default tenant.
        tenant: TenantId,
    },
}

impl Identity {
    /// The tenant this identity acts in.
    pub fn tenant(&self) -> TenantId {
        match self {
            Identity::Device { tenant, .. }
            | Identity::Key { tenant, .. }
            | Identity::Anonymous { tenant } => *tenant,
        }
    }

    /// The role of an API key, `None` for devices and anonymous callers.
    pub fn role(&self) -> Option<Role> {
        match self {
            Identity::Key { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// Checks that this is an API key with at least `min` (System ≥ Admin ≥ Writer ≥ Reader).
    pub fn require(&self, min: Role) -> Result<(), AuthError> {
        match self.role() {
            Some(role) if role >= min => Ok(()),
            Some(role) => Err(AuthError::Forbidden(format!(
                "this needs an API key with role {} or higher; this key is {}",
                min.as_str(),
                role.as_str()
            ))),
            None => Err(AuthError::Forbidden(format!(
                "this needs an API key with role {} or higher, not a device token",
                min.as_str()
            ))),
        }
    }
}

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials where they are required.
    #[error("missing credentials: send `Authorization: Bearer <device token or API key>`")]
    Missing,
    /// Credentials that match no device or live key.
    #[error("invalid credentials: the token or key is unknown, revoked or deleted")]
    Invalid,
    /// Valid credentials that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorExt for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Missing | AuthError::Invalid => ErrorKind::Unauthenticated,
            AuthError::Forbidden(_) => ErrorKind::PermissionDenied,
            AuthError::Store(e) => e.kind(),
        }
    }
}

/// The kind of a secret, shown as its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `idt_`: a device token.
    DeviceToken,
    /// `ik_`: an API key.
    ApiKey,
}

/// A new random secret of `kind`.
pub fn generate_secret(kind: SecretKind) -> String {
    let prefix = match kind {
        SecretKind::DeviceToken => "idt_",
        SecretKind::ApiKey => "ik_",
    };
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// A new public id for an API key (16 hex digits).
pub fn generate_key_id() -> String {
    hex::encode(random_bytes::<8>())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // A machine without an OS random source cannot issue credentials safely: refuse loudly.
    getrandom::fill(&mut bytes).expect("the OS random source failed; cannot create secrets");
    bytes
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Resolves bearer secrets to identities, with a short-lived cache.
pub struct Authenticator {
    registry: Arc<dyn Registry>,
    default_tenant: TenantId,
    allow_anonymous: bool,
    /// Resolved credentials and until when they may be trusted.
    cache: Mutex<HashMap<SecretHash, (Cached, Instant)>>,
    tenants: Mutex<HashMap<TenantId, (TenantState, Instant)>>,
    seen: Mutex<HashMap<(TenantId, String), Timestamp>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("default_tenant", &self.default_tenant)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

/// Most cached credentials; beyond this the cache is cleared (a bound, not an LRU).
const CACHE_MAX: usize = 100_000;

impl Authenticator {
    /// An authenticator over `registry`; anonymous callers get `default_tenant` when allowed.
    pub fn new(
        registry: Arc<dyn Registry>,
        default_tenant: TenantId,
        allow_anonymous: bool,
    ) -> Authenticator {
        Authenticator {
            registry,
            default_tenant,
            allow_anonymous,
            cache: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether unauthenticated devices may write into the default tenant.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// The identity behind `secret` (a device token or an API key), or anonymous when no
    /// secret is given and the server allows it. Refuses disabled devices, and the
    /// credentials of a disabled tenant or one being deleted.
    pub async fn authenticate(&self, secret: Option<&str>) -> Result<Identity, AuthError> {
        let identity = match secret {
            Some(secret) => self.resolve(secret).await?,
            None if self.allow_anonymous => Identity::Anonymous {
                tenant: self.default_tenant,
            },
            None => return Err(AuthError::Missing),
        };
        self.check_tenant(identity.tenant()).await?;
        if let Identity::Device { tenant, device } = &identity {
            self.seen
                .lock()
                .insert((*tenant, device.clone()), Timestamp::now());
        }
        Ok(identity)
    }

    async fn resolve(&self, secret: &str) -> Result<Identity, AuthError> {
        let hash = hash_secret(secret);
        if let Some((cached, expires)) = self.cache.lock().get(&hash)
            && Instant::now() < *expires
        {
            return cached.clone().into_result();
        }
        let now = Timestamp::now();
        // How long the answer may be trusted: the cache's TTL, but never past a deadline the
        // registry knows of (a rotation's grace, a key's expiry).
        let deadline;
        let cached = if secret.starts_with("idt_") {
            match self.registry.device_by_token(&hash, now).await? {
                Some(d) => {
                    deadline = d.previous_token_until.filter(|&until| until > now);
                    if d.enabled {
                        Cached::Ok(Identity::Device {
                            tenant: d.tenant,
                            device: d.name,
                        })
                    } else {
                        Cached::DisabledDevice(d.tenant, d.name)
                    }
                }
                None => return Err(AuthError::Invalid),
            }
        } else {
            match self.registry.api_key_by_hash(&hash, now).await? {
                Some(k) => {
                    deadline = k.expires;
                    Cached::Ok(Identity::Key {
                        tenant: k.tenant,
                        role: k.role,
                        key_id: k.id,
                    })
                }
                None => return Err(AuthError::Invalid),
            }
        };
        let ttl = match deadline {
            Some(at) => {
                let left = u64::try_from(at.as_micros() - now.as_micros()).unwrap_or(0);
                CACHE_TTL.min(Duration::from_micros(left))
            }
            None => CACHE_TTL,
        };
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (cached.clone(), Instant::now() + ttl));
        cached.into_result()
    }

    async fn check_tenant(&self, tenant: TenantId) -> Result<(), AuthError> {
        let cached = self
            .tenants
            .lock()
            .get(&tenant)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(s, _)| *s);
        let state = match cached {
            Some(state) => state,
            None => {
                let state = match self.registry.tenant(tenant).await? {
                    None => TenantState::Gone,
                    Some(t) if t.deleting => TenantState::Gone,
                    Some(t) if t.disabled => TenantState::Disabled,
                    Some(_) => TenantState::Active,
                };
                self.tenants.lock().insert(tenant, (state, Instant::now()));
                state
            }
        };
        match state {
            TenantState::Active => Ok(()),
            TenantState::Disabled => Err(AuthError::Forbidden("this tenant is disabled".into())),
            TenantState::Gone => Err(AuthError::Invalid),
        }
    }

    /// Forgets cached credentials of a device (after it is deleted, disabled, or its token
    /// changes).
    pub fn forget_device(&self, tenant: TenantId, name: &str) {
        self.cache.lock().retain(|_, (cached, _)| match cached {
            Cached::Ok(Identity::Device { tenant: t, device })
            | Cached::DisabledDevice(t, device) => !(*t == tenant && device == name),
            _ => true,
        });
    }

    /// Forgets a cached API key (after it is revoked).
    pub fn forget_key(&self, tenant: TenantId, id: &str) {
        self.cache.lock().retain(|_, (cached, _)| {
            !matches!(cached, Cached::Ok(Identity::Key { tenant: t, key_id, .. }) if *t == tenant && key_id == id)
        });
    }

    /// Forgets a tenant's cached state (after it is disabled, enabled or deleted).
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.tenants.lock().remove(&tenant);
    }

    /// Writes the last-seen times recorded since the previous flush to the registry.
    pub async fn flush_last_seen(&self) -> Result<usize, StoreError> {
        let seen = std::mem::take(&mut *self.seen.lock());
        let mut by_tenant: HashMap<TenantId, Vec<(String, Timestamp)>> = HashMap::new();
        for ((tenant, device), at) in seen {
            by_tenant.entry(tenant).or_default().push((device, at));
        }
        let mut written = 0;
        for (tenant, devices) in by_tenant {
            written += devices.len();
            self.registry.touch_devices(tenant, &devices).await?;
        }
        Ok(written)
    }

    /// Flushes last-seen times every `every` until `shutdown`, and once more then.
    pub async fn run_last_seen(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let stop = tokio::select! {
                () = tokio::time::sleep(every) => false,
                () = shutdown.cancelled() => true,
            };
            if let Err(error) = self.flush_last_seen().await {
                tracing::warn!(%error, "could not record when devices were last seen");
            }
            if stop {
                return;
            }
        }
    }
}

/// A resolved credential, as cached.
#[derive(Debug, Clone)]
enum Cached {
    Ok(Identity),
    DisabledDevice(TenantId, String),
}

impl Cached {
    fn into_result(self) -> Result<Identity, AuthError> {
        match self {
            Cached::Ok(identity) => Ok(identity),
            Cached::DisabledDevice(..) => {
                Err(AuthError::Forbidden("this device is disabled".into()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TenantState {
    Active,
    Disabled,
    Gone,
}

/// What the first start created.
#[derive(Debug)]
pub struct Bootstrap {
    /// The default tenant's id.
    pub default_tenant: TenantId,
    /// The new admin key, on the start that created it (print it once); `None` afterwards.
    pub admin_key: Option<String>,
    /// Where the admin key is kept.
    pub admin_key_path: PathBuf,
}

/// Why the bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Writing the admin key file failed.
    #[error("cannot write the admin key to {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// On first start, creates tenant `default` with a system admin key written to
/// `<data_dir>/admin.key` (mode 0600); later starts only look the tenant up.
///
/// The key file is written and synced before the key is registered, so a crash in between
/// leaves a file whose key does not work yet and the next start makes a new one, never a
/// registered key nobody was told.
pub async fn bootstrap(
    registry: &dyn Registry,
    data_dir: &Path,
) -> Result<Bootstrap, BootstrapError> {
    let admin_key_path = data_dir.join(ADMIN_KEY_FILE);
    if let Some(tenant) = registry.tenant_by_name(DEFAULT_TENANT).await? {
        return Ok(Bootstrap {
            default_tenant: tenant.id,
            admin_key: None,
            admin_key_path,
        });
    }
    let key = generate_secret(SecretKind::ApiKey);
    write_private(&admin_key_path, &format!("{key}\n")).map_err(|source| {
        BootstrapError::KeyFile {
            path: admin_key_path.display().to_string(),
            source,
        }
    })?;
    let tenant = registry.create_tenant(DEFAULT_TENANT).await?;
    registry
        .create_api_key(
            tenant.id,
            &generate_key_id(),
            Role::System,
            &hash_secret(&key),
            None,
        )
        .await?;
    Ok(Bootstrap {
        default_tenant: tenant.id,
        admin_key: Some(key),
        admin_key_path,
    })
}

/// Writes `contents` to `path` readable by the owner only, durably.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
