//! Reading logged outcomes: from NDJSON files (the JSON shape of [`OutcomeJson`], the
//! proto's field names) or from the outcomes topic, read to its current end.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use nearline_billboard::policy::{Arm, Context, TitleFacts};
use nearline_eventlog::{EventLog, TopicPartition};
use nearline_proto::events::v1 as pb;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::record::{Logged, Logs, LogsBuilder};
use crate::{Error, Result};

/// One outcome in JSON, one per line of an `.ndjson` / `.ndjson.gz` file: the fields of
/// `nearline.events.v1.Outcome` under their proto names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeJson {
    /// Request id of the decision.
    pub request_id: String,
    /// Shown title.
    pub video_id: i64,
    /// Member.
    #[serde(default)]
    pub member_id: String,
    /// Canvas (`billboard`, `row`, ...).
    #[serde(default)]
    pub canvas: String,
    /// Country of the impression.
    #[serde(default)]
    pub country: String,
    /// Device of the impression.
    #[serde(default)]
    pub device: String,
    /// Shown artwork.
    #[serde(default)]
    pub artwork_id: String,
    /// The decision's explore block.
    #[serde(default)]
    pub explore: Option<ExploreJson>,
    /// Whether a play followed within the reward window.
    #[serde(default)]
    pub played: bool,
    /// Impression time, ms since the Unix epoch.
    pub impression_time_ms: i64,
    /// Play time, when played.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_time_ms: Option<i64>,
    /// Catalog facts of the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<TitleJson>,
}

/// `Explore` in JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExploreJson {
    /// Logging policy.
    #[serde(default)]
    pub policy: String,
    /// Its model version.
    #[serde(default)]
    pub model_version: String,
    /// Probability of the shown pair.
    #[serde(default)]
    pub propensity: Option<f64>,
    /// Exploration flag.
    #[serde(default)]
    pub explored: bool,
    /// Candidate titles.
    #[serde(default)]
    pub candidates: Vec<i64>,
    /// Candidate artworks per title.
    #[serde(default)]
    pub candidate_artworks: Vec<CandidateArtworksJson>,
    /// Context the policy decided in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextJson>,
}

/// `CandidateArtworks` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateArtworksJson {
    /// Title.
    pub video_id: i64,
    /// Its candidate artworks.
    pub artwork_ids: Vec<String>,
}

/// `ExploreContext` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextJson {
    /// Country.
    pub country: String,
    /// Device.
    pub device: String,
    /// Local hour of day.
    pub hour_of_day: u32,
}

/// `TitleInfo` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TitleJson {
    /// `movie` or `series`.
    #[serde(default)]
    pub kind: String,
    /// Genres.
    #[serde(default)]
    pub genres: Vec<String>,
}

impl OutcomeJson {
    /// The decision this outcome logs.
    pub fn logged(self) -> Logged {
        let explore = self.explore.unwrap_or_default();
        let has_explore = !explore.policy.is_empty() || explore.propensity.is_some();
        let candidates = explore
            .candidate_artworks
            .iter()
            .flat_map(|c| c.artwork_ids.iter().map(move |a| Arm::new(c.video_id, a)))
            .collect();
        let context = match explore.context {
            Some(c) if !c.country.is_empty() && !c.device.is_empty() && c.hour_of_day < 24 => {
                Context { country: c.country.into(), device: c.device.into(), hour_of_day: c.hour_of_day }
            }
            _ => fallback_context(&self.country, &self.device, self.impression_time_ms),
        };
        Logged {
            arm: Arm::new(self.video_id, &self.artwork_id),
            request_id: self.request_id,
            member_id: self.member_id,
            time_ms: self.impression_time_ms,
            context,
            candidates,
            propensity: explore.propensity,
            policy: explore.policy,
            model_version: explore.model_version,
            explored: explore.explored,
            played: self.played,
            has_explore,
            title: self.title.map(|t| TitleFacts {
                kind: (!t.kind.is_empty()).then_some(t.kind),
                genres: t.genres,
                // Outcomes do not carry insights' early reads; targets replayed
                // offline start new titles from the genre/kind prior.
                early_read: None,
            }),
        }
    }

    /// The outcome as the proto message attribution publishes.
    pub fn to_proto(&self) -> pb::Outcome {
        pb::Outcome {
            request_id: self.request_id.clone(),
            video_id: self.video_id,
            member_id: self.member_id.clone(),
            canvas: self.canvas.clone(),
            country: self.country.clone(),
            device: self.device.clone(),
            artwork_id: self.artwork_id.clone(),
            explore: self.explore.as_ref().map(|e| pb::Explore {
                policy: e.policy.clone(),
                model_version: e.model_version.clone(),
                propensity: e.propensity.unwrap_or(0.0),
                explored: e.explored,
                candidates: e.candidates.clone(),
                candidate_artworks: e
                    .candidate_artworks
                    .iter()
                    .map(|c| pb::CandidateArtworks {
                        video_id: c.video_id,
                        artwork_ids: c.artwork_ids.clone(),
                    })
                    .collect(),
                context: e.context.as_ref().map(|c| pb::ExploreContext {
                    country: c.country.clone(),
                    device: c.device.clone(),
                    hour_of_day: c.hour_of_day,
                }),
            }),
            played: self.played,
            impression_time_ms: self.impression_time_ms,
            play_time_ms: self.play_time_ms,
            title: self.title.as_ref().map(|t| pb::TitleInfo {
                kind: t.kind.clone(),
                genres: t.genres.clone(),
                launch_at_ms: None,
            }),
        }
    }

    /// The JSON form of a proto outcome.
    pub fn from_proto(o: pb::Outcome) -> Self {
        Self {
            explore: o.explore.map(|e| ExploreJson {
                policy: e.policy,
                model_version: e.model_version,
                propensity: (e.propensity != 0.0).then_some(e.propensity),
                explored: e.explored,
                candidates: e.candidates,
                candidate_artworks: e
                    .candidate_artworks
                    .into_iter()
                    .map(|c| CandidateArtworksJson { video_id: c.video_id, artwork_ids: c.artwork_ids })
                    .collect(),
                context: e.context.map(|c| ContextJson {
                    country: c.country,
                    device: c.device,
                    hour_of_day: c.hour_of_day,
                }),
            }),
            request_id: o.request_id,
            video_id: o.video_id,
            member_id: o.member_id,
            canvas: o.canvas,
            country: o.country,
            device: o.device,
            artwork_id: o.artwork_id,
            played: o.played,
            impression_time_ms: o.impression_time_ms,
            play_time_ms: o.play_time_ms,
            title: o.title.map(|t| TitleJson { kind: t.kind, genres: t.genres }),
        }
    }
}

/// The context when the explore block does not carry one: the impression's country,
/// device and UTC hour, as billboard's learner does.
fn fallback_context(country: &str, device: &str, time_ms: i64) -> Context {
    let hour = time_ms.div_euclid(3_600_000).rem_euclid(24) as u32;
    Context { country: country.into(), device: device.into(), hour_of_day: hour }
}

/// The `.ndjson` and `.ndjson.gz` files of `dir`, sorted by name.
pub fn ndjson_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::Input(format!("reading {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::Input(format!("reading {}: {e}", dir.display())))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".ndjson") || name.ends_with(".ndjson.gz") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Input(format!("{} has no .ndjson or .ndjson.gz file", dir.display())));
    }
    Ok(files)
}

/// Reads every outcome of the NDJSON files in `dir`; `progress(bytes_read, total_bytes)`
/// is called as it goes (compressed bytes for `.gz`), from the reading threads.
///
/// Files are parsed on every core, each into its own builder, and the builders are
/// merged in file order, so the first outcome per (request_id, video_id) in file order
/// wins, as when reading them one after another.
pub fn from_directory(dir: &Path, progress: impl Fn(u64, u64) + Sync) -> Result<Logs> {
    let files = ndjson_files(dir)?;
    let total: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    let read = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
    let mut parsed: Vec<(usize, Result<LogsBuilder>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(k) else { return mine };
                        let mut builder = LogsBuilder::default();
                        let result = read_file(path, &mut builder, |bytes| {
                            progress(read.fetch_add(bytes, Ordering::Relaxed) + bytes, total);
                        });
                        mine.push((k, result.map(|()| builder)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("reader thread")).collect()
    });
    parsed.sort_by_key(|(k, _)| *k);
    let mut builder = LogsBuilder::default();
    for (_, part) in parsed {
        builder.merge(part?);
    }
    progress(total, total);
    Ok(builder.finish())
}

/// Parses one file into `builder`; `progress(bytes)` gets the (compressed) bytes read
/// since its last call.
fn read_file(path: &Path, builder: &mut LogsBuilder, mut progress: impl FnMut(u64)) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::Input(format!("opening {}: {e}", path.display())))?;
    let counter = Rc::new(Cell::new(0u64));
    let counted = Counted { inner: file, read: counter.clone() };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(BufReader::new(counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, counted))
    };
    let mut reported = 0;
    let mut report = || {
        let now = counter.get();
        progress(now - reported);
        reported = now;
    };
    read_lines(reader, path, builder, &mut report)?;
    report();
    Ok(())
}

fn read_lines(
    mut reader: Box<dyn BufRead>,
    path: &Path,
    builder: &mut LogsBuilder,
    mut progress: impl FnMut(),
) -> Result<()> {
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::Input(format!("{}:{}: {e}", path.display(), number + 1)))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let outcome: OutcomeJson = serde_json::from_str(text)
            .map_err(|e| Error::Input(format!("{}:{number}: not an outcome: {e}", path.display())))?;
        builder.push(outcome.logged());
        if number.is_multiple_of(20_000) {
            progress();
        }
    }
}

/// A reader that counts the (compressed) bytes read through it, for the progress bar.
struct Counted<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Reads every partition of `topic` from its first retained record to the end it had
/// when reading started (records published later belong to a later evaluation);
/// `progress(read, total)` counts records. Undecodable records are counted, not fatal.
pub async fn from_log(
    log: &dyn EventLog,
    topic: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<(Logs, u64)> {
    let mut reader = log.reader().await?;
    let mut ends: HashMap<TopicPartition, i64> = HashMap::new();
    let mut total = 0u64;
    for partition in 0..log.partition_count(topic).await? {
        let tp = TopicPartition::new(topic, partition);
        let (low, high) = log.watermarks(&tp).await?;
        if high > low {
            total += (high - low) as u64;
            reader.assign(&tp, low).await?;
            ends.insert(tp, high);
        }
    }
    let mut builder = LogsBuilder::default();
    let (mut read, mut undecodable) = (0u64, 0u64);
    progress(0, total);
    while !ends.is_empty() {
        let Some(record) = reader.poll(Duration::from_secs(10)).await? else {
            return Err(Error::Input(format!(
                "{topic}: no record arrived for 10 s with {} partition(s) not read to their end",
                ends.len()
            )));
        };
        let tp = record.topic_partition();
        let Some(&end) = ends.get(&tp) else { continue };
        read += 1;
        match pb::Outcome::decode(record.payload.as_ref()) {
            Ok(o) => builder.push(OutcomeJson::from_proto(o).logged()),
            Err(_) => undecodable += 1,
        }
        if record.offset + 1 >= end {
            ends.remove(&tp);
            reader.unassign(&tp).await?;
        }
        if read.is_multiple_of(10_000) {
            progress(read, total);
        }
    }
    progress(read, total);
    Ok((builder.finish(), undecodable))
}
