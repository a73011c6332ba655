//! `AttributionService.GetProgress`: where the join stands, for insights' freshness.

use std::sync::Arc;

use nearline_eventlog::{EventLog, TopicPartition};
use nearline_proto::attribution::v1 as pb;
use nearline_storage::progress;
use tonic::{Request, Response, Status};

use crate::Error;
use crate::join::Source;
use crate::metrics as m;
use crate::status::StatusBoard;
use crate::store::Store;
use crate::topics::Topics;

/// The gRPC API of attribution.
#[derive(Debug, Clone)]
pub struct AttributionApi {
    /// Stored progress of every partition (any replica can answer for all of them).
    pub store: Store,
    /// Live state of the partitions this process owns.
    pub status: StatusBoard,
    /// For high watermarks (lag).
    pub log: Arc<dyn EventLog>,
    /// Topic names.
    pub topics: Topics,
    /// Allowed lateness, ms: counts older than the watermark minus this are final.
    pub allowed_lateness_ms: i64,
}

#[tonic::async_trait]
impl pb::attribution_service_server::AttributionService for AttributionApi {
    async fn get_progress(
        &self,
        _request: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        let stored = self.store.load_all().await.map_err(Error::Database)?;
        let live = self.status.snapshot();
        let sources = self.topics.sources();
        let mut partitions = Vec::with_capacity(stored.len());
        let mut watermarks = Vec::with_capacity(sources.len() * stored.len());
        for progress in stored {
            let mut per_source = Vec::with_capacity(sources.len());
            for (index, topic) in sources.iter().enumerate() {
                let stored = progress.source(index);
                let committed_offset = stored.map_or(0, |s| s.committed);
                let tp = TopicPartition::new(topic.name.clone(), progress.partition);
                let lag = match self.log.watermarks(&tp).await {
                    Ok((_, high)) => (high - committed_offset).max(0),
                    Err(_) => 0,
                };
                let watermark_ms = stored.and_then(|s| s.watermark_ms);
                watermarks.push(watermark_ms);
                per_source.push(pb::SourceProgress {
                    topic: topic.name.clone(),
                    region: topic.region.clone().unwrap_or_default(),
                    kind: match topic.kind {
                        Source::Impressions => "impressions".into(),
                        Source::Plays => "plays".into(),
                    },
                    watermark_ms,
                    committed_offset,
                    lag,
                    watermark_lag_ms: None,
                });
            }
            let furthest = per_source.iter().filter_map(|s| s.watermark_ms).max();
            for source in &mut per_source {
                source.watermark_lag_ms = furthest.zip(source.watermark_ms).map(|(f, w)| f - w);
            }
            let lag = per_source.iter().map(|s| s.lag).sum();
            m::lag(progress.partition, lag);
            let state = live.get(&progress.partition).cloned().unwrap_or_default();
            let smallest = per_source.iter().try_fold(i64::MAX, |min, s| s.watermark_ms.map(|w| min.min(w)));
            partitions.push(pb::PartitionProgress {
                partition: progress.partition,
                watermark_ms: smallest.unwrap_or(0),
                impressions_watermark_ms: per_source[0].watermark_ms,
                plays_watermark_ms: per_source[1].watermark_ms,
                committed_offset: per_source[0].committed_offset,
                lag,
                state_entries: state.state_entries,
                state_bytes: state.state_bytes,
                sources: per_source,
            });
        }
        let complete_until_ms = progress::complete_until_ms(watermarks, self.allowed_lateness_ms);
        Ok(Response::new(pb::GetProgressResponse { partitions, complete_until_ms }))
    }
}
