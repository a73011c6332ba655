//! The join's input: compact domain events, each tagged with where it was read (its
//! origin and offset).

use std::mem::size_of;
use std::sync::Arc;

/// Exploration metadata a bandit policy attached to the impression it chose.
///
/// What offline evaluation needs besides the pick (the candidate artworks, the context)
/// is read once and shared behind an `Arc`: the pending outcome and the outcome emitted
/// from it hold the same allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explore {
    /// Policy that made the pick.
    pub policy: String,
    /// Version of the policy's model.
    pub model_version: String,
    /// Probability with which the policy picked this item, in (0, 1].
    pub propensity: f64,
    /// True when the pick was exploration rather than the policy's best guess.
    pub explored: bool,
    /// Video ids the policy chose from.
    pub candidates: Vec<i64>,
    /// Per candidate title, the artworks the policy chose among, in its order.
    pub candidate_artworks: Arc<[CandidateArtworks]>,
    /// The context the policy decided in, when the impression said.
    pub context: Option<Arc<ExploreContext>>,
}

impl Explore {
    /// Heap bytes held, for the join's memory bound (shared parts counted in full:
    /// an upper bound).
    pub(crate) fn heap_bytes(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| size_of::<String>() + s.len()).sum::<usize>();
        self.policy.len()
            + self.model_version.len()
            + self.candidates.capacity() * size_of::<i64>()
            + self
                .candidate_artworks
                .iter()
                .map(|c| size_of::<CandidateArtworks>() + strings(&c.artwork_ids))
                .sum::<usize>()
            + self
                .context
                .as_ref()
                .map_or(0, |c| size_of::<ExploreContext>() + c.country.len() + c.device.len())
    }
}

/// The artworks a policy chose among for one candidate title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateArtworks {
    /// The title.
    pub video_id: i64,
    /// Its artworks, in the order the policy saw them.
    pub artwork_ids: Vec<String>,
}

/// The request context a policy decided in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExploreContext {
    /// ISO 3166 alpha-2 country code.
    pub country: String,
    /// Device type.
    pub device: String,
    /// The client's local hour of day, 0..=23.
    pub hour_of_day: u32,
}

/// A member saw a title on some canvas of the UI (DESIGN §2).
#[derive(Debug, Clone, PartialEq)]
pub struct Impression {
    /// Id of the UI request that rendered the impression; half of the join key.
    pub request_id: String,
    /// Member who saw it.
    pub member_id: String,
    /// Title shown; the other half of the join key.
    pub video_id: i64,
    /// Artwork shown.
    pub artwork_id: String,
    /// Where on the page: billboard, row, search, ...
    pub canvas: String,
    /// ISO 3166 alpha-2 country code.
    pub country: String,
    /// Device type.
    pub device: String,
    /// Region the event was logged in (not part of any key).
    pub region: String,
    /// When it happened on the device, ms since the Unix epoch.
    pub event_time_ms: i64,
    /// Present when a bandit chose this impression; asks for an outcome.
    pub explore: Option<Explore>,
}

/// A member started playing a title (DESIGN §2).
#[derive(Debug, Clone, PartialEq)]
pub struct Play {
    /// Id of the UI request the play was started from.
    pub request_id: String,
    /// Member who played.
    pub member_id: String,
    /// Title played.
    pub video_id: i64,
    /// ISO 3166 alpha-2 country code.
    pub country: String,
    /// Device type.
    pub device: String,
    /// Region the event was logged in (not part of any key).
    pub region: String,
    /// When it happened on the device, ms since the Unix epoch.
    pub event_time_ms: i64,
    /// How long the member watched.
    pub watch_seconds: u32,
}

/// Either kind of event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An impression.
    Impression(Impression),
    /// A play.
    Play(Play),
}

impl Event {
    /// The event's time on the device, ms since the Unix epoch.
    pub fn event_time_ms(&self) -> i64 {
        match self {
            Event::Impression(i) => i.event_time_ms,
            Event::Play(p) => p.event_time_ms,
        }
    }

    /// The join key: (request_id, video_id).
    pub fn join_key(&self) -> (&str, i64) {
        match self {
            Event::Impression(i) => (&i.request_id, i.video_id),
            Event::Play(p) => (&p.request_id, p.video_id),
        }
    }

    /// The source (topic) this kind of event comes from.
    pub fn source(&self) -> Source {
        match self {
            Event::Impression(_) => Source::Impressions,
            Event::Play(_) => Source::Plays,
        }
    }
}

/// One input to the join: an event, the origin it was read from and its offset there.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Which copy of the topics the record was read from; with the event's kind it
    /// names the source (topic partition).
    pub origin: Origin,
    /// Offset of the record in its source (the impressions or the plays topic partition
    /// of its origin).
    pub offset: i64,
    /// The event.
    pub event: Event,
}

impl Input {
    /// An input read from the local topics.
    pub fn local(offset: i64, event: Event) -> Self {
        Self { origin: Origin::LOCAL, offset, event }
    }

    /// The source it was read from.
    pub fn source(&self) -> (Origin, Source) {
        (self.origin, self.event.source())
    }
}

/// Which copy of the impressions and plays topics an input was read from: the local
/// topics ([`Origin::LOCAL`]), or the mirror of another region's (`Origin(1)` for the
/// first mirrored region, and so on). Each origin's topics are sources of their own,
/// each with its own watermark (see the `join` module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(pub u16);

impl Origin {
    /// The local topics; the only origin of a single-region deployment.
    pub const LOCAL: Origin = Origin(0);

    /// Position in per-origin tables.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// The two kinds of source (topics) a join state consumes; offsets are per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// `nearline.impressions.v1`.
    Impressions,
    /// `nearline.plays.v1`.
    Plays,
}

/// An offset per source; `None` where there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SourceOffsets {
    /// Offset in the impressions partition.
    pub impressions: Option<i64>,
    /// Offset in the plays partition.
    pub plays: Option<i64>,
}

impl SourceOffsets {
    /// The offset for one source.
    pub fn get(&self, source: Source) -> Option<i64> {
        match source {
            Source::Impressions => self.impressions,
            Source::Plays => self.plays,
        }
    }
}

/// The watermark (largest event time seen) of each source; `None` before its first event.
///
/// Each source is judged against its own watermark only (DESIGN §3), which is what
/// makes the join independent of how the two sources are interleaved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Watermarks {
    /// Largest impression time seen, ms.
    pub impressions: Option<i64>,
    /// Largest play time seen, ms.
    pub plays: Option<i64>,
}

impl Watermarks {
    /// The watermark of one source.
    pub fn get(&self, source: Source) -> Option<i64> {
        match source {
            Source::Impressions => self.impressions,
            Source::Plays => self.plays,
        }
    }

    /// Raises `source`'s watermark to `t`; returns whether it moved.
    pub(crate) fn raise(&mut self, source: Source, t: i64) -> bool {
        let wm = match source {
            Source::Impressions => &mut self.impressions,
            Source::Plays => &mut self.plays,
        };
        if wm.is_none_or(|w| t > w) {
            *wm = Some(t);
            true
        } else {
            false
        }
    }

    /// The larger of each source's watermark.
    pub fn max(self, other: Watermarks) -> Watermarks {
        let max = |a: Option<i64>, b: Option<i64>| a.max(b);
        Watermarks {
            impressions: max(self.impressions, other.impressions),
            plays: max(self.plays, other.plays),
        }
    }

    /// The smaller of the two watermarks; `None` until both sources have one.
    pub fn min_of_both(&self) -> Option<i64> {
        Some(self.impressions?.min(self.plays?))
    }

    /// Per kind, the smallest watermark over `all` (`None` when some origin has none
    /// for that kind yet, or `all` is empty): how far every source of the kind has come.
    pub fn min_over(all: &[Watermarks]) -> Watermarks {
        fn min(values: impl Iterator<Item = Option<i64>>) -> Option<i64> {
            let mut min: Option<i64> = None;
            for value in values {
                let value = value?;
                min = Some(min.map_or(value, |m| m.min(value)));
            }
            min
        }
        Watermarks {
            impressions: min(all.iter().map(|w| w.impressions)),
            plays: min(all.iter().map(|w| w.plays)),
        }
    }
}
