//! The topic names attribution reads (impressions, plays, locally and as mirrored from
//! other regions) and writes (outcomes, late).

use crate::join::{Origin, Source};

/// Topic names the worker reads and writes.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Impressions (group-consumed).
    pub impressions: String,
    /// Plays (read per owned partition).
    pub plays: String,
    /// Bandit rewards.
    pub outcomes: String,
    /// Too-late events.
    pub late: String,
    /// Regions whose impressions and plays topics are mirrored into the local cluster
    /// (`kafka.mirrored_regions`), as [`mirrored_topic`] names them; each is an
    /// [`Origin`] of its own, `Origin(1)` for the first.
    pub mirrored_regions: Vec<String>,
}

impl Default for Topics {
    fn default() -> Self {
        use nearline_eventlog::topics;
        Self {
            impressions: topics::IMPRESSIONS.into(),
            plays: topics::PLAYS.into(),
            outcomes: topics::OUTCOMES.into(),
            late: topics::LATE.into(),
            mirrored_regions: Vec::new(),
        }
    }
}

/// The name Kafka MirrorMaker 2's `DefaultReplicationPolicy` gives `topic` of the cluster
/// aliased `region` in the cluster it copies to: `eu-west.nearline.plays.v1`. MirrorMaker
/// 2 keeps partitions, so a mirrored topic is co-partitioned with the local one.
pub fn mirrored_topic(region: &str, topic: &str) -> String {
    format!("{region}.{topic}")
}

/// One topic the join reads: one kind of event from one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTopic {
    /// The topic's name in the local cluster.
    pub name: String,
    /// Whose copy: the local topics or a mirrored region's.
    pub origin: Origin,
    /// Impressions or plays.
    pub kind: Source,
    /// The mirrored region, `None` for the local topics.
    pub region: Option<String>,
}

impl Topics {
    /// These topics with the given regions mirrored.
    pub fn with_mirrored_regions(self, regions: &[String]) -> Self {
        Self { mirrored_regions: regions.to_vec(), ..self }
    }

    /// How many origins the join reads: the local topics and one per mirrored region.
    pub fn origins(&self) -> usize {
        1 + self.mirrored_regions.len()
    }

    /// Every topic the join reads, origin by origin (local first), impressions before
    /// plays: position `2 * origin + (0 for impressions, 1 for plays)`.
    pub fn sources(&self) -> Vec<SourceTopic> {
        let local = [(None, self.impressions.clone(), self.plays.clone())];
        let mirrored = self.mirrored_regions.iter().map(|region| {
            (
                Some(region.clone()),
                mirrored_topic(region, &self.impressions),
                mirrored_topic(region, &self.plays),
            )
        });
        local
            .into_iter()
            .chain(mirrored)
            .enumerate()
            .flat_map(|(origin, (region, impressions, plays))| {
                let origin = Origin(u16::try_from(origin).expect("fewer than 65 536 regions"));
                [(impressions, Source::Impressions), (plays, Source::Plays)].map(|(name, kind)| SourceTopic {
                    name,
                    origin,
                    kind,
                    region: region.clone(),
                })
            })
            .collect()
    }
}

/// Position of a source in [`Topics::sources`] and in per-source tables.
pub fn source_index(origin: Origin, kind: Source) -> usize {
    2 * origin.index()
        + match kind {
            Source::Impressions => 0,
            Source::Plays => 1,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_topics_are_named_as_mirrormaker_2_names_them() {
        let topics = Topics::default().with_mirrored_regions(&["eu-west".into()]);
        let names: Vec<_> = topics.sources().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "nearline.impressions.v1",
                "nearline.plays.v1",
                "eu-west.nearline.impressions.v1",
                "eu-west.nearline.plays.v1"
            ]
        );
        for (n, source) in topics.sources().iter().enumerate() {
            assert_eq!(source_index(source.origin, source.kind), n);
        }
    }
}
