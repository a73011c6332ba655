//! The gRPC API: `IngestService.Publish` (one batch) and `PublishStream` (a stream of
//! batches), behind the bearer-token interceptor.
//!
//! Each message of a stream is one all-or-nothing batch. A stream keeps a few batches
//! in flight at once so that one client is not held to one broker round trip per
//! batch; the in-flight budget still bounds them all.

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use nearline_proto::ingest::v1::ingest_service_server::{IngestService, IngestServiceServer};
use nearline_proto::ingest::v1::{PublishRequest, PublishResponse};
use nearline_runtime::auth::Authenticator;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status, Streaming};

use crate::Ingest;
use crate::error::ApiError;

/// Batches of one stream published concurrently.
const STREAM_PIPELINE: usize = 8;

/// The service with its interceptor, ready for `tonic::service::Routes`.
pub(crate) fn service(
    ingest: Ingest,
    auth: &Authenticator,
) -> InterceptedService<IngestServiceServer<Grpc>, impl tonic::service::Interceptor + Clone + use<>> {
    let limit = ingest.body_limit();
    let server = IngestServiceServer::new(Grpc { ingest }).max_decoding_message_size(limit);
    InterceptedService::new(server, auth.interceptor())
}

/// `IngestService` over an [`Ingest`].
#[derive(Debug, Clone)]
pub(crate) struct Grpc {
    ingest: Ingest,
}

impl Grpc {
    async fn accept(&self, request: PublishRequest) -> Result<usize, ApiError> {
        let result = self.ingest.accept_events(request.events).await;
        if let Err(error) = &result {
            crate::metrics::request_rejected(error.reason());
        }
        result
    }
}

#[tonic::async_trait]
impl IngestService for Grpc {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<PublishResponse>, Status> {
        let accepted = self.accept(request.into_inner()).await?;
        Ok(Response::new(PublishResponse { accepted: accepted as u64 }))
    }

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<PublishResponse>, Status> {
        let mut stream = request.into_inner();
        let mut pending: FuturesUnordered<_> = FuturesUnordered::new();
        let mut accepted = 0u64;
        let mut received = 0usize;
        let mut open = true;
        while open || !pending.is_empty() {
            tokio::select! {
                Some((message, result)) = pending.next(), if !pending.is_empty() => {
                    let (message, result): (usize, Result<usize, ApiError>) = (message, result);
                    let count = result.map_err(|e| in_stream(message, accepted, e))?;
                    accepted += count as u64;
                }
                next = stream.message(), if open && pending.len() < STREAM_PIPELINE => match next? {
                    Some(batch) => {
                        let message = received;
                        received += 1;
                        pending.push(async move { (message, self.accept(batch).await) });
                    }
                    None => open = false,
                },
            }
        }
        Ok(Response::new(PublishResponse { accepted }))
    }
}

/// The status of a failed batch of a stream: which message, and how many events of the
/// stream were acknowledged before it (batches still in flight may also have landed).
fn in_stream(message: usize, accepted: u64, error: ApiError) -> Status {
    let status = Status::from(error);
    Status::with_details_and_metadata(
        status.code(),
        format!(
            "message {message} of the stream: {}; {accepted} events of the stream were accepted before it",
            status.message()
        ),
        status.details().to_vec().into(),
        status.metadata().clone(),
    )
}
