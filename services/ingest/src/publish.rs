//! Publishing accepted batches to the event log, within a bounded in-flight budget.
//!
//! The budget is what keeps memory bounded under any load: a batch takes one permit
//! per event (and a request body one permit per KiB it may occupy) before anything is
//! handed to the log, and gives them back when the log has answered. When the budget is
//! spent the request is refused at once with 429 / `RESOURCE_EXHAUSTED` rather than
//! queued, so a slow broker turns into client back-off instead of server memory.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use nearline_eventlog::{EventLog, OutgoingRecord, topics};
use nearline_proto::events::v1::{Event, event};
use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::metrics;

/// The two topics ingest publishes to; they must be co-partitioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Impressions, keyed by request id.
    pub impressions: String,
    /// Plays, keyed by request id.
    pub plays: String,
}

impl Default for Topics {
    /// nearline's topic names ([`nearline_eventlog::topics`]).
    fn default() -> Self {
        Self { impressions: topics::IMPRESSIONS.to_owned(), plays: topics::PLAYS.to_owned() }
    }
}

/// A bounded pool of permits with a gauge of how many are taken.
#[derive(Debug)]
struct Pool {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

impl Pool {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self { semaphore: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Takes `n` permits now or fails; asks for at most the whole pool, so that an
    /// oversized request waits for an idle server instead of never fitting.
    fn try_take(&self, n: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = u32::try_from(n.clamp(1, self.capacity)).unwrap_or(u32::MAX);
        Arc::clone(&self.semaphore).try_acquire_many_owned(n).map_err(|_| ApiError::Overloaded)
    }

    fn taken(&self) -> usize {
        self.capacity - self.semaphore.available_permits()
    }
}

/// Permits held by one request; given back on drop, including when the client goes
/// away mid-request.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    permit: Option<OwnedSemaphorePermit>,
    publisher: &'a Publisher,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        metrics::in_flight(self.publisher.events.taken());
    }
}

/// Publishes batches of events to the log.
#[derive(Debug)]
pub(crate) struct Publisher {
    log: Arc<dyn EventLog>,
    topics: Topics,
    events: Pool,
    body_kib: Pool,
}

impl Publisher {
    /// A publisher with room for `max_in_flight_events` unacknowledged events and
    /// `max_body_kib` KiB of request bodies being decoded.
    pub(crate) fn new(
        log: Arc<dyn EventLog>,
        topics: Topics,
        max_in_flight_events: usize,
        max_body_kib: usize,
    ) -> Self {
        Self { log, topics, events: Pool::new(max_in_flight_events), body_kib: Pool::new(max_body_kib) }
    }

    /// The log.
    pub(crate) fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// The topics.
    pub(crate) fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Reserves room for a request body of up to `bytes` before it is read.
    pub(crate) fn reserve_body(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        self.body_kib.try_take(bytes.div_ceil(1024))
    }

    /// Publishes `events`, already validated, and returns once the log acknowledged
    /// every one of them.
    pub(crate) async fn publish(&self, events: Vec<Event>) -> Result<usize, ApiError> {
        let count = events.len();
        if count == 0 {
            return Ok(0);
        }
        let (impressions, plays) = count_types(&events);
        let reservation = match self.events.try_take(count) {
            Ok(permit) => Reservation { permit: Some(permit), publisher: self },
            Err(error) => {
                record_rejected(impressions, plays, "overloaded");
                return Err(error);
            }
        };
        metrics::in_flight(self.events.taken());
        let records = events.into_iter().filter_map(|event| self.record(event)).collect();
        let start = Instant::now();
        let result = self.log.publish(records).await;
        drop(reservation);
        match result {
            Ok(_) => {
                metrics::publish_latency(start.elapsed());
                metrics::accepted("impression", impressions);
                metrics::accepted("play", plays);
                Ok(count)
            }
            Err(error @ nearline_eventlog::Error::Unavailable(_)) => {
                record_rejected(impressions, plays, "unavailable");
                Err(ApiError::Unavailable(error))
            }
            Err(
                error @ (nearline_eventlog::Error::UnknownTopic(_)
                | nearline_eventlog::Error::PartitionMismatch { .. }
                | nearline_eventlog::Error::Group(_)
                | nearline_eventlog::Error::Other(_)),
            ) => {
                record_rejected(impressions, plays, "error");
                Err(ApiError::Log(error))
            }
        }
    }

    /// The record of one event: keyed by request id so impressions and plays of one
    /// request land on the same partition number, stamped with the event time.
    fn record(&self, event: Event) -> Option<OutgoingRecord> {
        let (topic, request_id, time, payload) = match event.kind? {
            event::Kind::Impression(i) => {
                let payload = i.encode_to_vec();
                (&self.topics.impressions, i.request_id, i.event_time_ms, payload)
            }
            event::Kind::Play(p) => {
                let payload = p.encode_to_vec();
                (&self.topics.plays, p.request_id, p.event_time_ms, payload)
            }
        };
        Some(OutgoingRecord {
            topic: topic.clone(),
            key: Bytes::from(request_id),
            payload: Bytes::from(payload),
            timestamp_ms: Some(time),
        })
    }
}

/// Impressions and plays in a batch.
pub(crate) fn count_types(events: &[Event]) -> (usize, usize) {
    events.iter().fold((0, 0), |(i, p), e| match e.kind {
        Some(event::Kind::Impression(_)) => (i + 1, p),
        Some(event::Kind::Play(_)) => (i, p + 1),
        None => (i, p),
    })
}

fn record_rejected(impressions: usize, plays: usize, reason: &'static str) {
    metrics::rejected("impression", reason, impressions);
    metrics::rejected("play", reason, plays);
}
