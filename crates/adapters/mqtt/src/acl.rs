//! Who a connection is and which topics it may use.
//!
//! | credentials | publish | subscribe |
//! |---|---|---|
//! | device token (user name = the device or absent) | `ingot/<device>/…` | `ingot/<device>/commands` and below |
//! | API key, reader | nothing | any filter of its tenant |
//! | API key, writer, admin, system | any topic of its tenant | any filter of its tenant |
//! | anonymous with a user name (only with `--allow-anonymous`) | as the device named by the user name | as that device |
//! | anonymous without a user name | `ingot/<any device>/…` | `ingot/<a named device>/commands` and below |
//!
//! Nobody publishes under `$SYS` (the server's namespace). Tenants never meet: every topic
//! tree is per tenant (see `broker`), so these rules only ever speak of one tenant.

use ingot_auth::Identity;
use ingot_codec_mqtt::ReasonCode;
use ingot_core::name;
use ingot_store::Role;

/// The authenticated party behind a connection.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// The identity ingest sees.
    pub identity: Identity,
    /// The one device this connection acts as, if it is pinned to one.
    pub device: Option<String>,
    /// Sessions are keyed by this and the client id, so a client can only ever resume
    /// sessions of its own credentials.
    pub owner: String,
}

impl Principal {
    /// The principal of `identity` connecting with `username`; a refusal is a CONNACK
    /// reason code and a reason string.
    pub fn new(
        identity: Identity,
        username: Option<&str>,
    ) -> Result<Principal, (ReasonCode, String)> {
        let (device, owner) = match &identity {
            Identity::Device { device, .. } => {
                if let Some(user) = username
                    && !user.is_empty()
                    && user != device
                {
                    return Err((
                        ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                        format!(
                            "the user name `{user}` is not the device of this token; use the device name `{device}` or none"
                        ),
                    ));
                }
                (Some(device.clone()), format!("d:{device}"))
            }
            Identity::Key { key_id, .. } => (None, format!("k:{key_id}")),
            Identity::Anonymous { .. } => match username.filter(|u| !u.is_empty()) {
                Some(user) => {
                    name::validate(user).map_err(|reason| {
                        (
                            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                            format!("the user name names the device and {reason}"),
                        )
                    })?;
                    (Some(user.to_owned()), format!("a:{user}"))
                }
                None => (None, "a:".to_owned()),
            },
        };
        Ok(Principal {
            identity,
            device,
            owner,
        })
    }

    /// Whether this principal may publish to `topic`; the error is a reason string for
    /// reason code 0x87.
    pub fn may_publish(&self, topic: &str) -> Result<(), String> {
        if topic == "$SYS" || topic.starts_with("$SYS/") {
            return Err("topics under $SYS belong to the server".into());
        }
        if let Some(device) = &self.device {
            return match device_of(topic) {
                Some(d) if d == device => Ok(()),
                _ => Err(format!(
                    "device `{device}` may publish only under ingot/{device}/"
                )),
            };
        }
        match &self.identity {
            Identity::Key { role, .. } if *role >= Role::Writer => Ok(()),
            Identity::Key { .. } => Err("a reader key may subscribe but not publish".into()),
            Identity::Anonymous { .. } => match device_of(topic) {
                Some(d) if name::validate(d).is_ok() => Ok(()),
                _ => Err("anonymous clients may publish only under ingot/<device>/".into()),
            },
            Identity::Device { .. } => Err("a device needs a device name".into()),
        }
    }

    /// Whether this principal may subscribe to the (valid, unshared) filter `filter`; the
    /// error is a reason string for reason code 0x87.
    pub fn may_subscribe(&self, filter: &str) -> Result<(), String> {
        let commands_of = |device: &str| {
            let base = format!("ingot/{device}/commands");
            filter == base
                || filter
                    .strip_prefix(&base)
                    .is_some_and(|r| r.starts_with('/'))
        };
        if let Some(device) = &self.device {
            return if commands_of(device) {
                Ok(())
            } else {
                Err(format!(
                    "device `{device}` may subscribe only to ingot/{device}/commands and below"
                ))
            };
        }
        match &self.identity {
            Identity::Key { .. } => Ok(()),
            _ => match device_of(filter) {
                Some(d) if name::validate(d).is_ok() && commands_of(d) => Ok(()),
                _ => Err(
                    "anonymous clients may subscribe only to ingot/<device>/commands and below"
                        .into(),
                ),
            },
        }
    }
}

/// The second level of `ingot/<device>/...` (at least three levels).
fn device_of(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("ingot/")?;
    let (device, rest) = rest.split_once('/')?;
    (!device.is_empty() && !rest.is_empty()).then_some(device)
}

#[cfg(test)]
mod tests {
    use ingot_core::TenantId;

    use super::*;

    fn device(name: &str) -> Principal {
        Principal::new(
            Identity::Device {
                tenant: TenantId(1),
                device: name.into(),
            },
            Some(name),
        )
        .unwrap()
    }

    fn key(role: Role) -> Principal {
        Principal::new(
            Identity::Key {
                tenant: TenantId(1),
                role,
                key_id: "k1".into(),
            },
            Some("anything"),
        )
        .unwrap()
    }

    #[test]
    fn devices_stay_in_their_namespace() {
        let p = device("probe-7");
        assert!(p.may_publish("ingot/probe-7/events").is_ok());
        assert!(p.may_publish("ingot/probe-7/events/t1").is_ok());
        assert!(p.may_publish("ingot/probe-7/status").is_ok());
        for bad in [
            "ingot/probe-8/events",
            "ingot/probe-7",
            "ingot/probe-77/events",
            "other/probe-7/events",
            "$SYS/x",
        ] {
            assert!(p.may_publish(bad).is_err(), "{bad}");
        }
        assert!(p.may_subscribe("ingot/probe-7/commands").is_ok());
        assert!(p.may_subscribe("ingot/probe-7/commands/#").is_ok());
        assert!(p.may_subscribe("ingot/probe-7/commands/+").is_ok());
        for bad in [
            "ingot/probe-7/#",
            "ingot/+/commands",
            "ingot/probe-7/commandsX",
            "ingot/probe-8/commands",
            "#",
        ] {
            assert!(p.may_subscribe(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_device_token_with_another_devices_user_name_is_refused() {
        let e = Principal::new(
            Identity::Device {
                tenant: TenantId(1),
                device: "a".into(),
            },
            Some("b"),
        )
        .unwrap_err();
        assert_eq!(e.0, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    }

    #[test]
    fn keys_by_role() {
        let reader = key(Role::Reader);
        assert!(reader.may_subscribe("#").is_ok());
        assert!(reader.may_publish("ingot/d/commands").is_err());
        let writer = key(Role::Writer);
        assert!(writer.may_publish("ingot/d/commands").is_ok());
        assert!(writer.may_publish("any/topic").is_ok());
        assert!(writer.may_publish("$SYS/broker").is_err());
    }

    #[test]
    fn anonymous_clients_are_pinned_by_their_user_name() {
        let anon = |user: Option<&str>| {
            Principal::new(
                Identity::Anonymous {
                    tenant: TenantId(1),
                },
                user,
            )
        };
        let pinned = anon(Some("probe-1")).unwrap();
        assert_eq!(pinned.device.as_deref(), Some("probe-1"));
        assert!(pinned.may_publish("ingot/probe-2/events").is_err());
        let free = anon(None).unwrap();
        assert!(free.may_publish("ingot/probe-2/events").is_ok());
        assert!(free.may_publish("elsewhere/x").is_err());
        assert!(free.may_subscribe("ingot/probe-2/commands").is_ok());
        assert!(free.may_subscribe("ingot/+/commands").is_err());
        assert!(anon(Some("bad name")).is_err());
    }
}
