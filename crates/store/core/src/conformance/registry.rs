//! Conformance of the registry's lifecycles: tenants (disable, delete and purge), devices
//! (enable, labels, last seen, token rotation with a grace period), API keys (expiry,
//! listing) and dashboards, each scoped to its tenant.

use std::collections::BTreeMap;

use ingot_core::{Event, EventId, JsonText, TenantId, Timestamp};

use crate::{Checkpoint, Dashboard, DeviceUpdate, ListQuery, Role, SecretHash, Store, StoreError};

fn hash(n: u8) -> SecretHash {
    [n; 32]
}

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn ok<T>(r: Result<T, StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("registry call failed: {e}"))
}

fn event(tenant: TenantId, id: &str, device: &str, ts: i64) -> Event {
    Event {
        id: EventId::parse(id).unwrap_or_else(|e| panic!("{e}")),
        tenant,
        device: device.to_owned(),
        sensor: None,
        ts: t(ts),
        received: t(ts),
        kind: Some("temperature".into()),
        value: Some(1.0),
        data: None,
        payload: None,
    }
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        consumer: "conformance".into(),
        topic: "events".into(),
        offsets: vec![],
    }
}

/// Disabling keeps everything; deleting marks, then purges in bounded steps, leaving other
/// tenants alone.
pub async fn registry_tenant_lifecycle<S: Store + ?Sized>(store: &S) {
    let acme = ok(store.create_tenant("acme").await);
    let city = ok(store.create_tenant("city").await);
    assert!(!acme.disabled && !acme.deleting);
    assert_eq!(
        ok(store.tenant(acme.id).await).map(|t| t.name),
        Some("acme".into())
    );
    assert_eq!(ok(store.tenant(TenantId(9999)).await), None);

    assert!(ok(store.set_tenant_disabled(acme.id, true).await));
    assert!(ok(store.tenant(acme.id).await).is_some_and(|t| t.disabled));
    assert!(ok(store.set_tenant_disabled(acme.id, false).await));
    assert!(ok(store.tenant(acme.id).await).is_some_and(|t| !t.disabled));
    assert!(!ok(store.set_tenant_disabled(TenantId(9999), true).await));

    // Data in both tenants.
    let events: Vec<Event> = (0..25)
        .map(|i| event(acme.id, &format!("a{i}"), "d", i))
        .collect();
    ok(store.write_batch(events, &checkpoint()).await);
    ok(store
        .write_batch(vec![event(city.id, "c0", "d", 0)], &checkpoint())
        .await);
    ok(store.create_device(acme.id, "d", &hash(1)).await);
    ok(store
        .create_api_key(acme.id, "acme-key", Role::Admin, &hash(2), None)
        .await);
    let spec = JsonText::parse(r#"{"widgets":[]}"#).unwrap_or_else(|e| panic!("{e}"));
    ok(store
        .put_dashboard(&Dashboard {
            tenant: acme.id,
            id: "main".into(),
            name: "Main".into(),
            spec,
            updated: t(1),
        })
        .await);

    match store.purge_tenant(acme.id, 10).await {
        Err(StoreError::InvalidQuery(_)) => {}
        other => panic!("purging a tenant not marked deleting must be refused, got {other:?}"),
    }
    assert!(ok(store.mark_tenant_deleting(acme.id).await));
    assert!(ok(store.tenant(acme.id).await).is_some_and(|t| t.deleting));
    assert!(
        !ok(store.set_tenant_disabled(acme.id, false).await),
        "a tenant being deleted stays refused"
    );
    let mut purged = 0;
    let mut calls = 0;
    loop {
        let step = ok(store.purge_tenant(acme.id, 10).await);
        assert!(step.events <= 10);
        purged += step.events;
        calls += 1;
        if step.done || calls > 20 {
            break;
        }
    }
    assert_eq!(purged, 25);
    assert!(calls >= 3, "purged in bounded steps");
    assert_eq!(ok(store.tenant(acme.id).await), None);
    assert_eq!(ok(store.tenant_by_name("acme").await), None);
    assert_eq!(ok(store.device_by_token(&hash(1), t(0)).await), None);
    assert_eq!(ok(store.api_key_by_hash(&hash(2), t(0)).await), None);
    assert!(ok(store.list_dashboards(acme.id).await).is_empty());
    let left = ok(store
        .list_events(
            city.id,
            &ListQuery {
                limit: 10,
                ..ListQuery::default()
            },
        )
        .await);
    assert_eq!(left.events.len(), 1, "the other tenant keeps its events");
    assert_eq!(
        ok(store.list_tenants().await)
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["city"]
    );
    // The name is free again, with a new id.
    let again = ok(store.create_tenant("acme").await);
    assert_ne!(again.id, acme.id);
}

/// Devices: disabled ones are still found (so callers can say why they refuse), labels,
/// last seen, and a rotation whose previous token lasts exactly its grace period.
pub async fn registry_device_lifecycle<S: Store + ?Sized>(store: &S) {
    let acme = ok(store.create_tenant("acme").await).id;
    let city = ok(store.create_tenant("city").await).id;
    let created = ok(store.create_device(acme, "probe-7", &hash(1)).await);
    assert!(created.enabled);
    assert!(created.labels.is_empty());
    assert_eq!(
        (created.last_seen, created.previous_token_until),
        (None, None)
    );
    ok(store.create_device(acme, "cam-1", &hash(2)).await);
    ok(store.create_device(city, "probe-7", &hash(3)).await);
    let names: Vec<String> = ok(store.list_devices(acme).await)
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["cam-1", "probe-7"]);

    let labels: BTreeMap<String, String> = [("site".to_owned(), "plant-7".to_owned())].into();
    let update = DeviceUpdate {
        enabled: Some(false),
        labels: Some(labels.clone()),
    };
    let updated =
        ok(store.update_device(acme, "probe-7", &update).await).unwrap_or_else(|| panic!("device"));
    assert!(!updated.enabled);
    assert_eq!(updated.labels, labels);
    assert_eq!(ok(store.update_device(acme, "nope", &update).await), None);
    let found = ok(store.device_by_token(&hash(1), t(0)).await).unwrap_or_else(|| panic!("device"));
    assert!(
        !found.enabled,
        "a disabled device is found, marked disabled"
    );
    let enable = DeviceUpdate {
        enabled: Some(true),
        labels: None,
    };
    let again =
        ok(store.update_device(acme, "probe-7", &enable).await).unwrap_or_else(|| panic!("device"));
    assert!(again.enabled);
    assert_eq!(again.labels, labels, "labels are kept when not given");
    let city_probe =
        ok(store.get_device(city, "probe-7").await).unwrap_or_else(|| panic!("device"));
    assert!(
        city_probe.enabled && city_probe.labels.is_empty(),
        "the other tenant's device is untouched"
    );

    // Rotation: the old token works until the grace ends, the new one at once.
    let grace_end = t(1_000_000);
    assert!(ok(store
        .rotate_device_token(acme, "probe-7", &hash(10), grace_end)
        .await));
    for (token, now, expected) in [
        (hash(1), t(999_999), true),
        (hash(1), t(1_000_000), false),
        (hash(10), t(0), true),
        (hash(10), t(5_000_000), true),
    ] {
        let got = ok(store.device_by_token(&token, now).await).map(|d| d.name);
        assert_eq!(got.is_some(), expected, "token {} at {now}", token[0]);
    }
    assert_eq!(
        ok(store.get_device(acme, "probe-7").await).and_then(|d| d.previous_token_until),
        Some(grace_end)
    );
    // A second rotation ends the first previous token at once.
    assert!(ok(store
        .rotate_device_token(acme, "probe-7", &hash(11), t(9_000_000))
        .await));
    assert_eq!(ok(store.device_by_token(&hash(1), t(0)).await), None);
    assert!(ok(store.device_by_token(&hash(10), t(0)).await).is_some());
    assert!(!ok(store
        .rotate_device_token(acme, "nope", &hash(12), grace_end)
        .await));
    match store
        .rotate_device_token(acme, "cam-1", &hash(11), grace_end)
        .await
    {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!("a token hash in use must be refused, got {other:?}"),
    }

    // Last seen never moves backwards; unknown names are ignored.
    ok(store
        .touch_devices(acme, &[("cam-1".into(), t(500)), ("ghost".into(), t(1))])
        .await);
    ok(store.touch_devices(acme, &[("cam-1".into(), t(100))]).await);
    assert_eq!(
        ok(store.get_device(acme, "cam-1").await).and_then(|d| d.last_seen),
        Some(t(500))
    );
    ok(store.touch_devices(city, &[("cam-1".into(), t(900))]).await);
    assert_eq!(
        ok(store.get_device(acme, "cam-1").await).and_then(|d| d.last_seen),
        Some(t(500)),
        "scoped to its tenant"
    );
}

/// Keys expire, are listed without revoked ones, and stay in their tenant.
pub async fn registry_api_key_expiry_and_listing<S: Store + ?Sized>(store: &S) {
    let acme = ok(store.create_tenant("acme").await).id;
    let city = ok(store.create_tenant("city").await).id;
    let k1 = ok(store
        .create_api_key(acme, "k1", Role::Reader, &hash(1), Some(t(1_000)))
        .await);
    assert_eq!(k1.expires, Some(t(1_000)));
    ok(store
        .create_api_key(acme, "k2", Role::Writer, &hash(2), None)
        .await);
    ok(store
        .create_api_key(acme, "k3", Role::Admin, &hash(3), None)
        .await);
    ok(store
        .create_api_key(city, "k4", Role::Admin, &hash(4), None)
        .await);
    assert!(ok(store.api_key_by_hash(&hash(1), t(999)).await).is_some());
    assert_eq!(
        ok(store.api_key_by_hash(&hash(1), t(1_000)).await),
        None,
        "expired at its instant"
    );
    assert!(ok(store.api_key_by_hash(&hash(2), Timestamp::MAX).await).is_some());
    assert!(ok(store.revoke_api_key(acme, "k3").await));
    let listed: Vec<(String, Role, Option<Timestamp>)> = ok(store.list_api_keys(acme).await)
        .into_iter()
        .map(|k| (k.id, k.role, k.expires))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("k1".into(), Role::Reader, Some(t(1_000))),
            ("k2".into(), Role::Writer, None)
        ]
    );
    assert_eq!(ok(store.list_api_keys(city).await).len(), 1);
}

/// Dashboards are replaced by id and kept per tenant.
pub async fn registry_dashboards<S: Store + ?Sized>(store: &S) {
    let acme = ok(store.create_tenant("acme").await).id;
    let city = ok(store.create_tenant("city").await).id;
    let spec = |text: &str| JsonText::parse(text).unwrap_or_else(|e| panic!("{e}"));
    let a = Dashboard {
        tenant: acme,
        id: "fleet".into(),
        name: "Fleet".into(),
        spec: spec(r#"{"widgets":[{"type":"pie"}]}"#),
        updated: t(1),
    };
    ok(store.put_dashboard(&a).await);
    ok(store
        .put_dashboard(&Dashboard {
            id: "cities".into(),
            name: "Cities".into(),
            ..a.clone()
        })
        .await);
    ok(store
        .put_dashboard(&Dashboard {
            tenant: city,
            ..a.clone()
        })
        .await);
    let replaced = Dashboard {
        name: "Fleet overview".into(),
        spec: spec(r#"{"widgets":[]}"#),
        updated: t(2),
        ..a.clone()
    };
    ok(store.put_dashboard(&replaced).await);
    let got = ok(store.get_dashboard(acme, "fleet").await).unwrap_or_else(|| panic!("dashboard"));
    assert_eq!((got.name.as_str(), got.updated), ("Fleet overview", t(2)));
    assert_eq!(got.spec.to_value(), serde_json::json!({"widgets": []}));
    let ids: Vec<String> = ok(store.list_dashboards(acme).await)
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["cities", "fleet"]);
    assert!(ok(store.delete_dashboard(acme, "fleet").await));
    assert!(!ok(store.delete_dashboard(acme, "fleet").await));
    assert!(
        ok(store.get_dashboard(city, "fleet").await).is_some(),
        "the other tenant keeps its own"
    );
}

/// Per-device counts and newest time in a window.
pub async fn device_activity_counts_a_window<S: Store + ?Sized>(store: &S) {
    let a = TenantId(21);
    let b = TenantId(22);
    let mut events = Vec::new();
    for i in 0..30 {
        events.push(event(
            a,
            &format!("e{i}"),
            ["d1", "d2", "d3"][i % 3],
            i as i64 * 10,
        ));
    }
    events.push(event(b, "other", "d1", 5));
    ok(store.write_batch(events, &checkpoint()).await);
    let got = ok(store.device_activity(a, t(100), t(200)).await);
    // ts 100..190: i = 10..19, so d1 gets i = 12, 15, 18; d2 10, 13, 16, 19; d3 11, 14, 17.
    assert_eq!(
        got,
        vec![
            ("d1".into(), 3, t(180)),
            ("d2".into(), 4, t(190)),
            ("d3".into(), 3, t(170))
        ]
    );
    assert!(ok(store.device_activity(b, t(100), t(200)).await).is_empty());
}
