//! Consumer groups of the in-process log: members, committed offsets and the
//! cooperative rebalance that moves as few partitions as it can.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::{Partition, index};
use crate::{ConsumerEvent, TopicPartition};

/// A consumer group: its committed offsets and its live members.
#[derive(Default)]
pub(crate) struct Group {
    pub(crate) committed: HashMap<TopicPartition, i64>,
    pub(super) members: BTreeMap<u64, Member>,
}

/// One member of a [`Group`], as the group sees it.
pub(super) struct Member {
    /// Topics the member subscribed to.
    pub(super) topics: BTreeSet<String>,
    /// Partitions attributed to this member, including those it has not yet been told
    /// about and those it is being asked to give up.
    pub(super) owned: BTreeSet<TopicPartition>,
    /// The part of `owned` whose `Revoked` event the member has not polled yet.
    pub(super) revoking: BTreeSet<TopicPartition>,
    /// Assignment changes not yet returned by the member's `poll`.
    pub(super) events: VecDeque<ConsumerEvent>,
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
    pub(super) fn rebalance(&mut self, topics: &HashMap<String, Vec<Partition>>) {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use crate::memory::MemoryLog;
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
