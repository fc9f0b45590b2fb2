//! Wills: checked at CONNECT like a publish, published when the client goes away without
//! a clean DISCONNECT — at once, or after the MQTT 5 Will Delay unless the session is
//! taken again first, or when the session ends, whichever comes first.
//!
//! A will to a telemetry topic is ingested with the client's identity, like the publish it
//! stands for, then routed. The delayed wait is a task that watches the session's
//! generation: an attach bumps it (the client came back: no will), a session ending
//! cancels the wait (the will goes out now).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ingot_codec_mqtt::{ReasonCode, Will, topic};
use ingot_ingest::{Protocol, RefusalReason};
use tokio_util::sync::CancellationToken;

use crate::acl::Principal;
use crate::broker::{Broker, Message, Session, Tenant};
use crate::telemetry::{self, Refusal, TopicKind};

/// A will must be publishable by its client, with a valid topic and (for telemetry) payload.
pub(crate) fn check_will(
    will: &Will,
    principal: &Principal,
    broker: &Broker,
) -> Result<(), Refusal> {
    topic::validate_name(&will.topic).map_err(|m| {
        Refusal::new(
            ReasonCode::TOPIC_NAME_INVALID,
            RefusalReason::invalid,
            format!("will: {m}"),
        )
    })?;
    principal.may_publish(&will.topic).map_err(|m| {
        Refusal::new(
            ReasonCode::NOT_AUTHORIZED,
            RefusalReason::forbidden,
            format!("will: {m}"),
        )
    })?;
    match telemetry::classify(&will.topic) {
        Err(m) => Err(Refusal::new(
            ReasonCode::TOPIC_NAME_INVALID,
            RefusalReason::invalid,
            format!("will: {m}"),
        )),
        Ok(TopicKind::Telemetry { device, sensor })
            if !(will.retain && will.payload.is_empty()) =>
        {
            telemetry::drafts(
                &will.payload,
                &will.properties,
                device,
                sensor,
                broker.deps.ingest.limits(),
            )
            .map(|_| ())
            .map_err(|r| Refusal {
                message: format!("will: {}", r.message),
                ..r
            })
        }
        Ok(_) => Ok(()),
    }
}

/// Publishes `will` now, or after `delay` unless the session is taken again first.
pub(crate) fn schedule_will(
    broker: Arc<Broker>,
    tenant: Arc<Tenant>,
    session: Arc<Session>,
    principal: Arc<Principal>,
    will: Will,
    delay: Duration,
    generation: u64,
) {
    let cancel = CancellationToken::new();
    if !delay.is_zero() {
        let mut st = session.lock();
        if st.generation != generation {
            return;
        }
        st.pending_will = Some(cancel.clone());
    }
    let tasks = broker.tasks.clone();
    tasks.spawn(async move {
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {}
                _ = broker.shutdown.cancelled() => return,
            }
            let due = {
                let mut st = session.lock();
                let due = st.generation == generation;
                if due {
                    st.pending_will = None;
                }
                due
            };
            if !due {
                return;
            }
        }
        publish_will(&broker, &tenant, &principal, will, session.id).await;
    });
}

async fn publish_will(
    broker: &Broker,
    tenant: &Tenant,
    principal: &Principal,
    will: Will,
    from_session: u64,
) {
    let mut properties = will.properties;
    let expires_at = properties
        .message_expiry_interval
        .take()
        .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
    properties.will_delay_interval = None;
    let msg = Arc::new(Message {
        topic: will.topic,
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        properties,
        expires_at,
        from_session,
    });
    let ingest = &broker.deps.ingest;
    if let Ok(TopicKind::Telemetry { device, sensor }) = telemetry::classify(&msg.topic)
        && !(msg.retain && msg.payload.is_empty())
    {
        let drafts = telemetry::drafts(
            &msg.payload,
            &msg.properties,
            device,
            sensor,
            ingest.limits(),
        );
        let outcome = match drafts {
            Ok(d) => ingest
                .ingest(&principal.identity, Protocol::mqtt, d)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(r) => {
                ingest.metrics().refused(Protocol::mqtt, r.reason);
                Err(r.message)
            }
        };
        if let Err(reason) = outcome {
            tracing::warn!(topic = %msg.topic, %reason, "will message refused by ingest");
            return;
        }
    }
    broker.route(tenant, &msg);
}
