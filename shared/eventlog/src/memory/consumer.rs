//! A member of a consumer group of the in-process log.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::group::Member;
use super::{Shared, State, next_record};
use crate::{Consumer, ConsumerEvent, Error, Result, TopicPartition};

/// A member of a consumer group of a [`super::MemoryLog`]; leaves the group when closed or dropped.
pub struct MemoryConsumer {
    shared: Arc<Shared>,
    group: String,
    member_id: u64,
    /// Assigned partitions (as far as this member has been told) and the next offset
    /// to read from each.
    positions: BTreeMap<TopicPartition, i64>,
    /// Assigned partitions whose records are held back.
    paused: BTreeSet<TopicPartition>,
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
    /// Adds a member to `group` (creating the group if needed) and rebalances it.
    pub(super) fn join(shared: Arc<Shared>, group: &str, topics: &[&str]) -> Self {
        // Subscribe before joining so the assignment events of the join are not missed.
        let changes = shared.changes.subscribe();
        let mut state = shared.lock();
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
        shared.wake_consumers();
        Self {
            shared,
            group: group.to_owned(),
            member_id,
            positions: BTreeMap::new(),
            paused: BTreeSet::new(),
            cursor: 0,
            changes,
            left: false,
        }
    }

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
                        self.paused.remove(tp);
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

        Ok(next_record(topics, &mut self.positions, &self.paused, &mut self.cursor)?
            .map(ConsumerEvent::Record))
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
        let snapshot = {
            let mut state = self.shared.lock();
            let group = state.groups.get_mut(&self.group).ok_or_else(|| self.gone())?;
            group.committed.extend(offsets.iter().cloned());
            self.shared.durable.as_ref().map(|_| crate::durable::offsets::Snapshot::of(&mut state))
        };
        match snapshot {
            // Like a broker, answer only once the commit would survive a crash.
            Some(snapshot) => crate::durable::persist_offsets(&self.shared, snapshot).await,
            None => Ok(()),
        }
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

    async fn pause(&mut self, tps: &[TopicPartition]) -> Result<()> {
        if let Some(tp) = tps.iter().find(|tp| !self.positions.contains_key(*tp)) {
            return Err(self.not_assigned(tp));
        }
        self.paused.extend(tps.iter().cloned());
        Ok(())
    }

    async fn resume(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in tps {
            self.paused.remove(tp);
        }
        Ok(())
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
