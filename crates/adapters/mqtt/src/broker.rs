//! Broker state: per-tenant topic trees, retained messages and sessions, and routing.
//!
//! # Tenancy
//!
//! Each tenant has its own [`Tenant`]: subscription tree, retained messages and sessions
//! (keyed by the credentials' owner and the client id). A publish is routed only within
//! its publisher's tenant, so tenants can never see each other's topics, whatever their
//! filters say.
//!
//! # Sessions
//!
//! A [`Session`] outlives its connections when its expiry says so. All its state — the
//! queue of messages waiting to be sent, the QoS 1/2 messages sent and not yet
//! acknowledged, the QoS 2 packet ids received and not yet released, its subscriptions —
//! lives behind one mutex in the session, whether a connection owns it or not. Routing
//! appends to the queue and wakes the owning connection; the connection takes from the
//! queue as its client's receive maximum and socket allow. So a reconnecting client finds
//! its queued and unacknowledged messages where they were, and nothing is moved on
//! connect or disconnect. The queue is bounded (`max_queued_messages`).
//!
//! # Locks
//!
//! Every lock is held briefly and never across an `.await`. The only nesting is a
//! tenant's session map, then one session's state; nothing takes them in the other
//! order, and routing collects its targets under the tree's read lock and releases it
//! before touching any session.
//!
//! # Memory
//!
//! Everything here is in memory and bounded per tenant by `max_sessions`,
//! `max_queued_messages` per session, `max_subscriptions` per session and
//! `max_retained_messages`; a restart forgets sessions and retained messages (events
//! are in the durable log, not here).

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ingot_codec_mqtt::topic;
use ingot_codec_mqtt::{Properties, QoS, ReasonCode, SubscriptionOptions};
use ingot_core::TenantId;
use parking_lot::{Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::MqttDeps;
use crate::config::MqttConfig;
use crate::metrics::{Drop, MqttMetrics};
use crate::trie::{Entry, Hit, Node};

/// How long a connection waits for a session's previous connection to let go of it.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

enum Step {
    Retry,
    Wait,
    Attached(Vec<SubRecord>),
}

/// An application message as the broker keeps it: shared by every subscriber it goes to.
#[derive(Debug)]
pub(crate) struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// The properties forwarded to MQTT 5 subscribers (no topic alias, no subscription
    /// identifiers, no expiry: those are per delivery).
    pub properties: Properties,
    pub expires_at: Option<Instant>,
    /// The publishing session (for No Local); 0 for none.
    pub from_session: u64,
}

impl Message {
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Seconds left before expiry, for the Message Expiry Interval of a delivery.
    pub fn remaining_secs(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            u32::try_from(left.as_secs().max(1)).unwrap_or(u32::MAX)
        })
    }
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub msg: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
}

/// A QoS 1/2 message sent and not yet completed.
#[derive(Debug)]
pub(crate) struct Inflight {
    pub pkid: u16,
    pub delivery: Delivery,
    /// QoS 2: PUBREC received and PUBREL sent; waiting for PUBCOMP.
    pub released: bool,
}

/// Where an incoming QoS 1/2 packet id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Being ingested / routed; its acknowledgement is not sent yet.
    Pipeline,
    /// QoS 2: PUBREC sent; waiting for PUBREL.
    AwaitingRelease,
}

/// A subscription being added.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewSubscription<'a> {
    /// The filter as the client wrote it (`$share/g/a/b` included).
    pub full_filter: &'a str,
    /// The shared subscription group, if any.
    pub group: Option<&'a str>,
    /// The topic filter without the `$share/<group>/` prefix.
    pub filter: &'a str,
    pub options: SubscriptionOptions,
    pub sub_id: Option<u32>,
}

/// A subscription as the session remembers it.
#[derive(Debug, Clone)]
pub(crate) struct SubRecord {
    pub group: Option<String>,
    pub filter: String,
}

/// The state of a session, behind its mutex.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    pub queue: VecDeque<Delivery>,
    pub inflight: VecDeque<Inflight>,
    pub incoming: HashMap<u16, Incoming>,
    /// By the filter as the client wrote it (`$share/g/a/b` included).
    pub subscriptions: HashMap<String, SubRecord>,
    next_pkid: u16,
    /// The connection that owns the session, if any, and how to kick it out.
    owner: Option<(u64, CancellationToken)>,
    /// Bumped at every attach: stale expiry timers and delayed wills check it.
    pub generation: u64,
    /// A QoS 1/2 message met a full queue while connected: disconnect (0x97).
    pub overflowed: bool,
    /// A delayed will waiting to be published, cancelled if the client comes back.
    pub pending_will: Option<CancellationToken>,
    /// Removed from its tenant; a connection finding it must look again.
    ended: bool,
}

impl SessionState {
    /// A packet identifier not used by any in-flight message.
    pub fn next_pkid(&mut self) -> u16 {
        for _ in 0..=u16::MAX {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            let candidate = self.next_pkid;
            if !self.inflight.iter().any(|i| i.pkid == candidate) {
                return candidate;
            }
        }
        // Unreachable while inflight holds fewer than 65535 messages (max_inflight ≤
        // 65535 and only this session adds to it); 1 keeps the type total.
        1
    }

    fn reset(&mut self) -> Vec<SubRecord> {
        self.queue.clear();
        self.inflight.clear();
        self.incoming.clear();
        self.overflowed = false;
        self.subscriptions.drain().map(|(_, r)| r).collect()
    }
}

/// A session: see the module docs.
#[derive(Debug)]
pub(crate) struct Session {
    pub id: u64,
    key: SessionKey,
    state: Mutex<SessionState>,
    /// Messages were queued (or the session overflowed) for the owning connection.
    pub wake: Notify,
    /// The owning connection let go.
    released: Notify,
    online: AtomicBool,
}

/// (credentials owner, client id).
type SessionKey = (String, String);

impl Session {
    fn new(id: u64, key: SessionKey) -> Session {
        Session {
            id,
            key,
            state: Mutex::new(SessionState::default()),
            wake: Notify::new(),
            released: Notify::new(),
            online: AtomicBool::new(false),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    pub fn client_id(&self) -> &str {
        &self.key.1
    }

    /// Queues a message for this session, within `limit`. A QoS 1/2 message that finds
    /// the queue full marks a connected session as a slow consumer when `strict`;
    /// otherwise (retained messages at subscribe time) it is only dropped.
    fn enqueue(&self, delivery: Delivery, limit: usize, strict: bool, metrics: &MqttMetrics) {
        let mut st = self.state.lock();
        if st.ended {
            return;
        }
        let online = st.owner.is_some();
        if !online && delivery.qos == QoS::AtMostOnce {
            metrics.dropped(Drop::Offline);
            return;
        }
        if st.queue.len() >= limit {
            if delivery.qos == QoS::AtMostOnce || !strict {
                metrics.dropped(Drop::QueueFull);
                return;
            }
            metrics.dropped(Drop::SlowConsumer);
            if online {
                st.overflowed = true;
                drop(st);
                self.wake.notify_one();
            }
            return;
        }
        st.queue.push_back(delivery);
        drop(st);
        if online {
            self.wake.notify_one();
        }
    }
}

/// One tenant's topic tree, retained messages and sessions.
#[derive(Debug)]
pub(crate) struct Tenant {
    trie: RwLock<Node>,
    retained: RwLock<HashMap<String, Arc<Message>>>,
    sessions: Mutex<HashMap<SessionKey, Arc<Session>>>,
}

/// Everything the connections share.
#[derive(Debug)]
pub(crate) struct Broker {
    pub config: MqttConfig,
    pub deps: MqttDeps,
    pub metrics: MqttMetrics,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    /// Open connections (bounded by `max_connections`).
    pub connections: AtomicUsize,
    tenants: Mutex<HashMap<TenantId, Arc<Tenant>>>,
    next_id: AtomicU64,
}

impl Broker {
    pub fn new(
        config: MqttConfig,
        deps: MqttDeps,
        metrics: MqttMetrics,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Broker {
        Broker {
            config,
            deps,
            metrics,
            tasks,
            shutdown,
            connections: AtomicUsize::new(0),
            tenants: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// A process-unique id for a connection or a session (never 0).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn tenant(&self, id: TenantId) -> Arc<Tenant> {
        self.tenants
            .lock()
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Tenant {
                    trie: RwLock::new(Node::default()),
                    retained: RwLock::new(HashMap::new()),
                    sessions: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// Stores (or clears) a retained message and delivers `msg` to every matching
    /// subscription of `tenant`.
    pub fn route(&self, tenant: &Tenant, msg: &Arc<Message>) {
        if msg.retain {
            self.retain(tenant, msg);
        }
        let mut plain: Vec<&Entry> = Vec::new();
        let mut targets: Vec<(Arc<Session>, Delivery)> = Vec::new();
        {
            let trie = tenant.trie.read();
            if trie.is_empty() {
                return;
            }
            let mut shared = Vec::new();
            trie.matches(&msg.topic, &mut |hit| match hit {
                Hit::Plain(e) => {
                    if !(e.options.no_local && e.session.id == msg.from_session) {
                        plain.push(e);
                    }
                }
                Hit::Shared(g) => shared.extend(g.pick()),
            });
            for e in shared {
                let delivery = self.delivery_for(msg, e);
                targets.push((e.session.clone(), delivery));
            }
            // One delivery per session for overlapping subscriptions: the highest QoS,
            // retain if any asks to keep it, every subscription identifier.
            plain.sort_by_key(|e| e.session.id);
            let mut i = 0;
            while let Some(first) = plain.get(i) {
                let mut delivery = self.delivery_for(msg, first);
                let mut j = i + 1;
                while let Some(next) = plain.get(j).filter(|n| n.session.id == first.session.id) {
                    let d = self.delivery_for(msg, next);
                    delivery.qos = delivery.qos.max(d.qos);
                    delivery.retain |= d.retain;
                    delivery.sub_ids.extend(d.sub_ids);
                    j += 1;
                }
                targets.push((first.session.clone(), delivery));
                i = j;
            }
        }
        let limit = self.config.max_queued_messages;
        for (session, delivery) in targets {
            session.enqueue(delivery, limit, true, &self.metrics);
        }
    }

    fn delivery_for(&self, msg: &Arc<Message>, e: &Entry) -> Delivery {
        Delivery {
            msg: msg.clone(),
            qos: msg.qos.min(e.options.qos),
            retain: e.options.retain_as_published && msg.retain,
            sub_ids: e.sub_id.into_iter().collect(),
        }
    }

    fn retain(&self, tenant: &Tenant, msg: &Arc<Message>) {
        let mut retained = tenant.retained.write();
        if msg.payload.is_empty() {
            if retained.remove(&msg.topic).is_some() {
                self.metrics.retained().dec();
            }
            return;
        }
        if !retained.contains_key(&msg.topic) && retained.len() >= self.config.max_retained_messages
        {
            self.metrics.dropped(Drop::RetainedFull);
            return;
        }
        // A copy, so the stored message does not pin the publisher's read buffer.
        let stored = Arc::new(Message {
            topic: msg.topic.clone(),
            payload: Bytes::copy_from_slice(&msg.payload),
            qos: msg.qos,
            retain: true,
            properties: msg.properties.clone(),
            expires_at: msg.expires_at,
            from_session: msg.from_session,
        });
        if retained.insert(msg.topic.clone(), stored).is_none() {
            self.metrics.retained().inc();
        }
    }

    /// Adds a subscription of `session` (in the tree and in the session); true if the
    /// session already had it.
    pub fn subscribe(
        &self,
        tenant: &Tenant,
        session: &Arc<Session>,
        sub: NewSubscription<'_>,
    ) -> bool {
        let entry = Entry {
            session: session.clone(),
            options: sub.options,
            sub_id: sub.sub_id,
        };
        let existed = tenant.trie.write().insert(sub.filter, sub.group, entry);
        session.lock().subscriptions.insert(
            sub.full_filter.to_owned(),
            SubRecord {
                group: sub.group.map(str::to_owned),
                filter: sub.filter.to_owned(),
            },
        );
        existed
    }

    /// Removes a subscription of `session`; true if it existed.
    pub fn unsubscribe(&self, tenant: &Tenant, session: &Session, full_filter: &str) -> bool {
        let record = session.lock().subscriptions.remove(full_filter);
        match record {
            Some(r) => {
                tenant
                    .trie
                    .write()
                    .remove(&r.filter, r.group.as_deref(), session.id);
                true
            }
            None => false,
        }
    }

    /// The retained messages matching `filter`, unexpired; expired ones are dropped.
    pub fn retained_matching(&self, tenant: &Tenant, filter: &str) -> Vec<Arc<Message>> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut found = Vec::new();
        {
            let retained = tenant.retained.read();
            if !filter.contains(['+', '#']) {
                if let Some(m) = retained.get(filter) {
                    found.push(m.clone());
                }
            } else {
                for (t, m) in retained.iter() {
                    if topic::matches(filter, t) {
                        found.push(m.clone());
                    }
                }
            }
        }
        found.retain(|m| {
            let keep = !m.expired(now);
            if !keep {
                expired.push(m.topic.clone());
            }
            keep
        });
        if !expired.is_empty() {
            let mut retained = tenant.retained.write();
            for t in expired {
                if retained.get(&t).is_some_and(|m| m.expired(now)) {
                    retained.remove(&t);
                    self.metrics.retained().dec();
                    self.metrics.dropped(Drop::Expired);
                }
            }
        }
        found
    }

    /// Queues retained messages for a new subscription.
    pub fn queue_retained(
        &self,
        session: &Session,
        messages: Vec<Arc<Message>>,
        options: SubscriptionOptions,
        sub_id: Option<u32>,
    ) {
        for msg in messages {
            let delivery = Delivery {
                qos: msg.qos.min(options.qos),
                retain: true,
                sub_ids: sub_id.into_iter().collect(),
                msg,
            };
            session.enqueue(
                delivery,
                self.config.max_queued_messages,
                false,
                &self.metrics,
            );
        }
    }

    /// Makes connection `conn` the owner of the session `(owner, client_id)`, creating it
    /// if needed, taking it over from another connection if one owns it, and clearing it
    /// for a clean start. Returns the session and whether stored state was resumed.
    pub async fn attach(
        &self,
        tenant: &Tenant,
        owner: &str,
        client_id: &str,
        clean_start: bool,
        conn: u64,
        kick: &CancellationToken,
    ) -> Result<(Arc<Session>, bool), ReasonCode> {
        let key: SessionKey = (owner.to_owned(), client_id.to_owned());
        for _ in 0..4 {
            let (session, existed) = {
                let mut sessions = tenant.sessions.lock();
                match sessions.get(&key) {
                    Some(s) => (s.clone(), true),
                    None => {
                        if sessions.len() >= self.config.max_sessions {
                            return Err(ReasonCode::QUOTA_EXCEEDED);
                        }
                        let s = Arc::new(Session::new(self.next_id(), key.clone()));
                        sessions.insert(key.clone(), s.clone());
                        self.metrics.sessions().inc();
                        (s, false)
                    }
                }
            };
            let mut released = pin!(session.released.notified());
            released.as_mut().enable();
            let step = {
                let mut st = session.lock();
                if st.ended {
                    Step::Retry
                } else if let Some((_, previous)) = &st.owner {
                    previous.cancel();
                    Step::Wait
                } else {
                    st.owner = Some((conn, kick.clone()));
                    st.generation += 1;
                    if let Some(will) = st.pending_will.take() {
                        will.cancel();
                    }
                    session.online.store(true, Ordering::Relaxed);
                    st.overflowed = false;
                    Step::Attached(if clean_start { st.reset() } else { Vec::new() })
                }
            };
            match step {
                Step::Retry => continue,
                Step::Wait => {
                    let _ = tokio::time::timeout(TAKEOVER_WAIT, released).await;
                    continue;
                }
                Step::Attached(stale) => {
                    self.drop_subscriptions(tenant, session.id, stale);
                    return Ok((session.clone(), existed && !clean_start));
                }
            }
        }
        Err(ReasonCode::SERVER_BUSY)
    }

    /// Connection `conn` lets go of `session`. With an expiry of 0 the session ends now;
    /// otherwise it ends after `expiry` unless a connection takes it again. Returns the
    /// generation the session had (for a delayed will).
    pub fn detach(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        session: &Arc<Session>,
        conn: u64,
        expiry: Duration,
    ) -> u64 {
        let generation = {
            let mut st = session.lock();
            if st.owner.as_ref().is_some_and(|(c, _)| *c == conn) {
                st.owner = None;
                session.online.store(false, Ordering::Relaxed);
            }
            st.generation
        };
        if expiry.is_zero() {
            self.end_session(tenant, session, generation);
        } else {
            let (broker, tenant, session) = (self.clone(), tenant.clone(), session.clone());
            let shutdown = self.shutdown.clone();
            self.tasks.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(expiry) => broker.end_session(&tenant, &session, generation),
                    _ = shutdown.cancelled() => {}
                }
            });
        }
        session.released.notify_waiters();
        generation
    }

    /// Ends `session` if nobody owns it and it is still at `generation`.
    fn end_session(&self, tenant: &Tenant, session: &Arc<Session>, generation: u64) {
        let stale = {
            let mut sessions = tenant.sessions.lock();
            let mut st = session.lock();
            if st.ended || st.owner.is_some() || st.generation != generation {
                return;
            }
            st.ended = true;
            if let Some(will) = st.pending_will.take() {
                // The session ends: a delayed will goes out now (its task finds the
                // generation unchanged).
                will.cancel();
            }
            if sessions
                .get(&session.key)
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                sessions.remove(&session.key);
                self.metrics.sessions().dec();
            }
            st.reset()
        };
        self.drop_subscriptions(tenant, session.id, stale);
    }

    fn drop_subscriptions(&self, tenant: &Tenant, session: u64, subs: Vec<SubRecord>) {
        if subs.is_empty() {
            return;
        }
        let mut trie = tenant.trie.write();
        for r in subs {
            trie.remove(&r.filter, r.group.as_deref(), session);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub(crate) fn session(id: u64) -> Arc<Session> {
        Arc::new(Session::new(id, (String::new(), format!("c{id}"))))
    }
}
