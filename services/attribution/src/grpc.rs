//! `AttributionService.GetProgress`: where the join stands, for insights' freshness.

use std::sync::Arc;

use nearline_eventlog::{EventLog, TopicPartition};
use nearline_proto::attribution::v1 as pb;
use nearline_storage::progress;
use tonic::{Request, Response, Status};

use crate::Error;
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
        let mut partitions = Vec::with_capacity(stored.len());
        let mut watermarks = Vec::with_capacity(2 * stored.len());
        for progress in stored {
            let committed_impressions = progress.impressions.map_or(0, |s| s.committed);
            let committed_plays = progress.plays.map_or(0, |s| s.committed);
            let mut lag = 0;
            for (topic, committed) in
                [(&self.topics.impressions, committed_impressions), (&self.topics.plays, committed_plays)]
            {
                let tp = TopicPartition::new(topic.clone(), progress.partition);
                if let Ok((_, high)) = self.log.watermarks(&tp).await {
                    lag += (high - committed).max(0);
                }
            }
            m::lag(progress.partition, lag);
            let state = live.get(&progress.partition).copied().unwrap_or_default();
            let impressions_watermark_ms = progress.impressions.and_then(|s| s.watermark_ms);
            let plays_watermark_ms = progress.plays.and_then(|s| s.watermark_ms);
            watermarks.extend([impressions_watermark_ms, plays_watermark_ms]);
            partitions.push(pb::PartitionProgress {
                partition: progress.partition,
                watermark_ms: impressions_watermark_ms.min(plays_watermark_ms).unwrap_or(0),
                impressions_watermark_ms,
                plays_watermark_ms,
                committed_offset: committed_impressions,
                lag,
                state_entries: state.state_entries,
                state_bytes: state.state_bytes,
            });
        }
        let complete_until_ms = progress::complete_until_ms(watermarks, self.allowed_lateness_ms);
        Ok(Response::new(pb::GetProgressResponse { partitions, complete_until_ms }))
    }
}
