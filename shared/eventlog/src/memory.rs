//! An in-process event log for the embedded deployment.
//!
//! [`MemoryLog`] keeps every record in memory and gives the semantics nearline relies on
//! from Kafka: partitions chosen by the same murmur2 hash of the key (so equal
//! partition counts mean co-partitioned topics), offsets from 0, consumer groups whose
//! committed offsets move only on [`Consumer::commit`], and a cooperative rebalance on
//! every join and leave in which only the partitions that move are revoked and
//! assigned.
//!
//! Like Kafka's cooperative protocol, a partition taken from one member is given to
//! another only after the first has seen the [`ConsumerEvent::Revoked`] event (it
//! polled past it), so two members never read the same partition at once. A member
//! that stops polling therefore holds on to the partitions it is losing until it polls
//! again, closes or is dropped; in one process that is a bug of the caller rather than
//! a failure to detect.
//!
//! All state sits behind one `std::sync::Mutex`, taken only for short, synchronous
//! sections and never across an `.await`. Waiting consumers are woken through a
//! `tokio::sync::watch` counter that is bumped on every append and group change.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{
    Consumer, ConsumerEvent, Delivery, Error, EventLog, OutgoingRecord, Record, Result, TopicPartition,
    TopicSpec, partition_for_key,
};

/// The in-process log; cheap to clone, clones share the same topics and groups.
#[derive(Clone, Default)]
pub struct MemoryLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("MemoryLog");
        // `try_lock`: formatting must not deadlock if the caller holds the state.
        if let Ok(state) = self.shared.state.try_lock() {
            out.field("topics", &state.topics.len()).field("groups", &state.groups.len());
        }
        out.finish_non_exhaustive()
    }
}

impl MemoryLog {
    /// An empty log with no topics.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What every handle on the log shares.
struct Shared {
    state: Mutex<State>,
    /// Bumped after every change a waiting consumer could be interested in.
    changes: watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Self { state: Mutex::new(State::default()), changes: watch::Sender::new(0) }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything that can
        // panic, so a poisoned lock still guards valid data; going on keeps one
        // panicking test or task from taking the whole embedded log down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_consumers(&self) {
        self.changes.send_modify(|version| *version = version.wrapping_add(1));
    }
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Vec<Vec<Stored>>>,
    groups: HashMap<String, Group>,
    next_member: u64,
}

struct Stored {
    key: Bytes,
    payload: Bytes,
    timestamp_ms: i64,
}

#[derive(Default)]
struct Group {
    committed: HashMap<TopicPartition, i64>,
    members: BTreeMap<u64, Member>,
}

struct Member {
    topics: BTreeSet<String>,
    /// Partitions attributed to this member, including those it has not yet been told
    /// about and those it is being asked to give up.
    owned: BTreeSet<TopicPartition>,
    /// The part of `owned` whose `Revoked` event the member has not polled yet.
    revoking: BTreeSet<TopicPartition>,
    /// Assignment changes not yet returned by the member's `poll`.
    events: VecDeque<ConsumerEvent>,
}

impl Member {
    fn active(&self) -> usize {
        self.owned.len() - self.revoking.len()
    }
}

impl Group {
    /// Spreads the partitions of the subscribed topics over the live members, moving
    /// as few as possible: members above their share give up their highest partitions,
    /// and partitions nobody owns go to the members below their share.
    fn rebalance(&mut self, topics: &HashMap<String, Vec<Vec<Stored>>>) {
        if self.members.is_empty() {
            return;
        }
        let eligible: BTreeSet<TopicPartition> = self
            .members
            .values()
            .flat_map(|m| m.topics.iter())
            .filter_map(|topic| topics.get(topic).map(|parts| (topic, parts.len())))
            .flat_map(|(topic, count)| (0..count).map(move |p| TopicPartition::new(topic.clone(), index(p))))
            .collect();

        // Members that already hold more keep the larger shares, so fewer partitions move.
        let mut order: Vec<(u64, usize)> = self.members.iter().map(|(id, m)| (*id, m.active())).collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let base = eligible.len() / order.len();
        let extra = eligible.len() % order.len();
        let quota: HashMap<u64, usize> =
            order.iter().enumerate().map(|(i, (id, _))| (*id, base + usize::from(i < extra))).collect();

        for (id, member) in &mut self.members {
            let active: Vec<TopicPartition> = member.owned.difference(&member.revoking).cloned().collect();
            if active.len() > quota[id] {
                let revoke = active[quota[id]..].to_vec();
                member.revoking.extend(revoke.iter().cloned());
                member.events.push_back(ConsumerEvent::Revoked(revoke));
            }
        }

        let taken: BTreeSet<TopicPartition> =
            self.members.values().flat_map(|m| m.owned.iter().cloned()).collect();
        let mut grants: BTreeMap<u64, Vec<TopicPartition>> = BTreeMap::new();
        for tp in eligible.difference(&taken) {
            let pick = self
                .members
                .iter()
                .filter(|(_, m)| m.topics.contains(&tp.topic))
                .min_by_key(|(id, m)| (m.active() >= quota[*id], m.active(), **id))
                .map(|(id, _)| *id);
            if let Some(id) = pick
                && let Some(member) = self.members.get_mut(&id)
            {
                member.owned.insert(tp.clone());
                grants.entry(id).or_default().push(tp.clone());
            }
        }
        for (id, granted) in grants {
            if let Some(member) = self.members.get_mut(&id) {
                member.events.push_back(ConsumerEvent::Assigned(granted));
            }
        }
    }
}

/// Converts a partition index of the in-memory vectors to Kafka's `i32`.
fn index(p: usize) -> i32 {
    i32::try_from(p).expect("partition counts come from an i32")
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn partition_of<'a>(
    topics: &'a HashMap<String, Vec<Vec<Stored>>>,
    tp: &TopicPartition,
) -> Result<&'a [Stored]> {
    let partitions = topics.get(&tp.topic).ok_or_else(|| Error::UnknownTopic(tp.topic.clone()))?;
    usize::try_from(tp.partition)
        .ok()
        .and_then(|p| partitions.get(p))
        .map(Vec::as_slice)
        .ok_or_else(|| Error::Other(format!("topic {} has no partition {}", tp.topic, tp.partition)))
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        let mut state = self.shared.lock();
        for spec in specs {
            if spec.partitions < 1 {
                return Err(Error::Other(format!("topic {} needs at least one partition", spec.name)));
            }
            if let Some(existing) = state.topics.get(&spec.name)
                && index(existing.len()) != spec.partitions
            {
                return Err(Error::PartitionMismatch {
                    topic: spec.name.clone(),
                    actual: index(existing.len()),
                    expected: spec.partitions,
                });
            }
        }
        for spec in specs {
            state.topics.entry(spec.name.clone()).or_insert_with(|| {
                let count = usize::try_from(spec.partitions).expect("checked positive above");
                (0..count).map(|_| Vec::new()).collect()
            });
        }
        // Members may be subscribed to a topic that did not exist when they joined.
        let State { topics, groups, .. } = &mut *state;
        for group in groups.values_mut() {
            group.rebalance(topics);
        }
        drop(state);
        self.shared.wake_consumers();
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let state = self.shared.lock();
        let partitions = state.topics.get(topic).ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        Ok(index(partitions.len()))
    }

    async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>> {
        let mut state = self.shared.lock();
        // All or nothing here, which is stronger than the trait asks for.
        if let Some(missing) = records.iter().find(|r| !state.topics.contains_key(&r.topic)) {
            return Err(Error::UnknownTopic(missing.topic.clone()));
        }
        let now = now_ms();
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let partitions = state.topics.get_mut(&record.topic).expect("checked above");
            let partition = partition_for_key(&record.key, index(partitions.len()));
            let log = &mut partitions[usize::try_from(partition).expect("partition_for_key is non-negative")];
            let offset = i64::try_from(log.len()).expect("fewer than i64::MAX records");
            log.push(Stored {
                key: record.key,
                payload: record.payload,
                timestamp_ms: record.timestamp_ms.unwrap_or(now),
            });
            deliveries.push(Delivery { partition, offset });
        }
        drop(state);
        self.shared.wake_consumers();
        Ok(deliveries)
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Consumer>> {
        // Subscribe before joining so the assignment events of the join are not missed.
        let changes = self.shared.changes.subscribe();
        let mut state = self.shared.lock();
        let member_id = state.next_member;
        state.next_member += 1;
        let State { topics: all_topics, groups, .. } = &mut *state;
        let entry = groups.entry(group.to_owned()).or_default();
        entry.members.insert(
            member_id,
            Member {
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                owned: BTreeSet::new(),
                revoking: BTreeSet::new(),
                events: VecDeque::new(),
            },
        );
        entry.rebalance(all_topics);
        drop(state);
        self.shared.wake_consumers();
        Ok(Box::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            group: group.to_owned(),
            member_id,
            positions: BTreeMap::new(),
            cursor: 0,
            changes,
            left: false,
        }))
    }

    async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        let state = self.shared.lock();
        let log = partition_of(&state.topics, tp)?;
        Ok((0, i64::try_from(log.len()).expect("fewer than i64::MAX records")))
    }

    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>> {
        let state = self.shared.lock();
        let log = partition_of(&state.topics, tp)?;
        Ok(log
            .iter()
            .position(|r| r.timestamp_ms >= timestamp_ms)
            .map(|p| i64::try_from(p).expect("fewer than i64::MAX records")))
    }

    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>> {
        let state = self.shared.lock();
        Ok(state.groups.get(group).and_then(|g| g.committed.get(tp)).copied())
    }
}

/// A member of a consumer group of a [`MemoryLog`]; leaves the group when closed or dropped.
pub struct MemoryConsumer {
    shared: Arc<Shared>,
    group: String,
    member_id: u64,
    /// Assigned partitions (as far as this member has been told) and the next offset
    /// to read from each.
    positions: BTreeMap<TopicPartition, i64>,
    /// Where the round-robin over assigned partitions goes on, so one busy partition
    /// does not starve the others.
    cursor: usize,
    changes: watch::Receiver<u64>,
    left: bool,
}

impl std::fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("group", &self.group)
            .field("member_id", &self.member_id)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl MemoryConsumer {
    /// The next event that is ready, without waiting.
    fn try_next(&mut self) -> Result<Option<ConsumerEvent>> {
        let mut state = self.shared.lock();
        let State { topics, groups, .. } = &mut *state;
        let group = groups.get_mut(&self.group).ok_or_else(|| self.gone())?;
        let member = group.members.get_mut(&self.member_id).ok_or_else(|| self.gone())?;

        if let Some(event) = member.events.pop_front() {
            match &event {
                ConsumerEvent::Assigned(tps) => {
                    for tp in tps {
                        // Read at delivery, not at rebalance, so commits the previous owner
                        // made before it let go are seen.
                        let start = group.committed.get(tp).copied().unwrap_or(0);
                        self.positions.insert(tp.clone(), start);
                    }
                }
                ConsumerEvent::Revoked(tps) => {
                    for tp in tps {
                        self.positions.remove(tp);
                        member.owned.remove(tp);
                        member.revoking.remove(tp);
                    }
                    // The partitions are free now: hand them to the members waiting for them.
                    group.rebalance(topics);
                    drop(state);
                    self.shared.wake_consumers();
                }
                ConsumerEvent::Record(_) => unreachable!("only assignment changes are queued"),
            }
            return Ok(Some(event));
        }

        let assigned: Vec<&TopicPartition> = self.positions.keys().collect();
        for step in 0..assigned.len() {
            let at = (self.cursor + step) % assigned.len();
            let tp = assigned[at];
            let position = self.positions[tp];
            let log = partition_of(topics, tp)?;
            let Some(stored) = usize::try_from(position).ok().and_then(|p| log.get(p)) else {
                continue;
            };
            let record = Record {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: position,
                key: stored.key.clone(),
                payload: stored.payload.clone(),
                timestamp_ms: stored.timestamp_ms,
            };
            self.cursor = at + 1;
            let tp = tp.clone();
            self.positions.insert(tp, position + 1);
            return Ok(Some(ConsumerEvent::Record(record)));
        }
        Ok(None)
    }

    fn gone(&self) -> Error {
        Error::Group(format!("member {} is no longer in group {}", self.member_id, self.group))
    }

    fn not_assigned(&self, tp: &TopicPartition) -> Error {
        Error::Group(format!(
            "{}/{} is not assigned to member {} of group {}",
            tp.topic, tp.partition, self.member_id, self.group
        ))
    }

    /// Removes this member from its group and gives its partitions to the others.
    fn leave(&mut self) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
        let mut state = self.shared.lock();
        let State { topics, groups, .. } = &mut *state;
        if let Some(group) = groups.get_mut(&self.group) {
            group.members.remove(&self.member_id);
            group.rebalance(topics);
        }
        drop(state);
        self.shared.wake_consumers();
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<ConsumerEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Mark what we have seen before looking, so a change made after the look
            // wakes the wait below instead of being missed.
            self.changes.borrow_and_update();
            if let Some(event) = self.try_next()? {
                return Ok(Some(event));
            }
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives as long as `self.shared`, so it cannot be gone.
                Ok(Err(_)) | Err(_) => return Ok(None),
            }
        }
    }

    async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        if let Some((tp, _)) = offsets.iter().find(|(tp, _)| !self.positions.contains_key(tp)) {
            return Err(self.not_assigned(tp));
        }
        if let Some((tp, offset)) = offsets.iter().find(|(_, offset)| *offset < 0) {
            return Err(Error::Other(format!(
                "cannot commit offset {offset} for {}/{}",
                tp.topic, tp.partition
            )));
        }
        let mut state = self.shared.lock();
        let group = state.groups.get_mut(&self.group).ok_or_else(|| self.gone())?;
        group.committed.extend(offsets.iter().cloned());
        Ok(())
    }

    async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(Error::Other(format!(
                "cannot seek {}/{} to offset {offset}",
                tp.topic, tp.partition
            )));
        }
        match self.positions.get_mut(tp) {
            Some(position) => {
                *position = offset;
                Ok(())
            }
            None => Err(self.not_assigned(tp)),
        }
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.leave();
        Ok(())
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::MemoryLog;
    use crate::{Consumer, ConsumerEvent, EventLog, TopicPartition, TopicSpec};

    /// Drains what `consumer` has been told so far: (assigned, revoked) partitions.
    async fn drain(consumer: &mut Box<dyn Consumer>) -> (BTreeSet<i32>, BTreeSet<i32>) {
        let (mut assigned, mut revoked) = (BTreeSet::new(), BTreeSet::new());
        while let Some(event) = consumer.poll(Duration::ZERO).await.expect("poll") {
            match event {
                ConsumerEvent::Assigned(tps) => assigned.extend(tps.iter().map(|tp| tp.partition)),
                ConsumerEvent::Revoked(tps) => revoked.extend(tps.iter().map(|tp| tp.partition)),
                ConsumerEvent::Record(r) => panic!("no records were published, got {r:?}"),
            }
        }
        (assigned, revoked)
    }

    fn partitions(consumer: &dyn Consumer) -> BTreeSet<i32> {
        consumer.assignment().iter().map(|tp: &TopicPartition| tp.partition).collect()
    }

    #[tokio::test]
    async fn rebalances_move_only_what_they_must() {
        let log = MemoryLog::new();
        log.create_topics(&[TopicSpec { name: "t".into(), partitions: 6, replication: 1 }])
            .await
            .expect("create");
        let mut a = log.subscribe("g", &["t"]).await.expect("a");
        assert_eq!(drain(&mut a).await, ((0..6).collect(), BTreeSet::new()));

        // b gets its half only once a has let go of it.
        let mut b = log.subscribe("g", &["t"]).await.expect("b");
        assert_eq!(drain(&mut b).await, (BTreeSet::new(), BTreeSet::new()));
        let (_, given_up) = drain(&mut a).await;
        assert_eq!(given_up.len(), 3);
        assert_eq!(drain(&mut b).await, (given_up.clone(), BTreeSet::new()));

        // c takes one from each; nobody else loses anything.
        let mut c = log.subscribe("g", &["t"]).await.expect("c");
        let (_, from_a) = drain(&mut a).await;
        let (_, from_b) = drain(&mut b).await;
        assert_eq!((from_a.len(), from_b.len()), (1, 1));
        let (to_c, _) = drain(&mut c).await;
        assert_eq!(to_c, from_a.union(&from_b).copied().collect());

        // b leaves by being dropped; its two partitions go one each to a and c.
        let held_by_b = partitions(&*b);
        drop(b);
        let (to_a, revoked_a) = drain(&mut a).await;
        let (to_c, revoked_c) = drain(&mut c).await;
        assert!(revoked_a.is_empty() && revoked_c.is_empty(), "a leave revokes nothing from the others");
        assert_eq!((to_a.len(), to_c.len()), (1, 1));
        assert_eq!(to_a.union(&to_c).copied().collect::<BTreeSet<_>>(), held_by_b);
        let all: BTreeSet<i32> = partitions(&*a).union(&partitions(&*c)).copied().collect();
        assert_eq!(all, (0..6).collect());
        assert_eq!(partitions(&*a).len() + partitions(&*c).len(), 6, "no partition is held twice");
    }
}
