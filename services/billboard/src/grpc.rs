//! The gRPC API (`nearline.billboard.v1.BillboardService`), behind the bearer-token
//! interceptor, with the same validation and answers as HTTP: the decisions, the pool
//! and the model view.

use nearline_proto::billboard::v1 as pb;
use nearline_proto::billboard::v1::billboard_service_server::{BillboardService, BillboardServiceServer};
use nearline_runtime::auth::Authenticator;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::service::{
    ArtworkRequest, Billboard, BillboardRequest, Choice, ContextInput, ModelFilter, ModelView,
};

/// Largest request message accepted: 256 candidates and a context are small.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The service with its interceptor, ready for `tonic::service::Routes`.
pub fn service(
    billboard: Billboard,
    auth: &Authenticator,
) -> InterceptedService<BillboardServiceServer<Grpc>, impl tonic::service::Interceptor + Clone + use<>> {
    let server = BillboardServiceServer::new(Grpc { billboard }).max_decoding_message_size(MAX_MESSAGE_BYTES);
    InterceptedService::new(server, auth.interceptor())
}

/// The gRPC front end over [`Billboard`].
#[derive(Debug, Clone)]
pub struct Grpc {
    billboard: Billboard,
}

fn context(c: Option<pb::Context>) -> Option<ContextInput> {
    c.map(|c| ContextInput {
        country: c.country,
        device: c.device,
        hour_of_day: Some(i64::from(c.hour_of_day)),
    })
}

fn decision(request_id: &str, c: Choice, candidates: Vec<i64>) -> pb::Decision {
    pb::Decision {
        request_id: request_id.to_string(),
        video_id: c.video_id,
        artwork_id: c.artwork_id,
        propensity: c.propensity,
        explored: c.explored,
        policy: c.policy.as_str().to_string(),
        model_version: c.model_version,
        candidates,
        explore: Some(c.explore),
    }
}

#[tonic::async_trait]
impl BillboardService for Grpc {
    async fn choose_billboard(
        &self,
        request: Request<pb::ChooseBillboardRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let r = request.into_inner();
        let request = BillboardRequest {
            member_id: r.member_id,
            context: context(r.context),
            candidates: r.candidates,
        };
        let d = self.billboard.choose_billboard(&request)?;
        Ok(Response::new(decision(&d.request_id, d.choice, d.candidates)))
    }

    async fn choose_artwork(
        &self,
        request: Request<pb::ChooseArtworkRequest>,
    ) -> Result<Response<pb::ChooseArtworkResponse>, Status> {
        let r = request.into_inner();
        let request =
            ArtworkRequest { member_id: r.member_id, context: context(r.context), video_ids: r.video_ids };
        let d = self.billboard.choose_artwork(&request)?;
        let choices = d
            .choices
            .into_iter()
            .map(|c| {
                let candidates = vec![c.video_id];
                decision(&d.request_id, c, candidates)
            })
            .collect();
        Ok(Response::new(pb::ChooseArtworkResponse { request_id: d.request_id, choices }))
    }

    async fn put_pool(&self, request: Request<pb::PutPoolRequest>) -> Result<Response<pb::Pool>, Status> {
        self.billboard.put_pool(&request.into_inner().video_ids).await?;
        Ok(Response::new(pb::Pool { video_ids: self.billboard.catalog().pool.clone() }))
    }

    async fn get_pool(&self, _request: Request<pb::GetPoolRequest>) -> Result<Response<pb::Pool>, Status> {
        Ok(Response::new(pb::Pool { video_ids: self.billboard.catalog().pool.clone() }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelView>, Status> {
        let r = request.into_inner();
        let view =
            self.billboard.model_view(&ModelFilter { country: Some(r.country), device: Some(r.device) })?;
        Ok(Response::new(model_view(view)))
    }
}

/// A time in ms, absent when it never happened (stored as 0).
fn happened(ms: i64) -> Option<i64> {
    (ms > 0).then_some(ms)
}

fn model_view(view: ModelView) -> pb::ModelView {
    let buckets = view
        .buckets
        .into_iter()
        .map(|b| pb::ModelCell {
            country: b.country,
            device: b.device,
            daypart: b.daypart.as_str().to_string(),
            arms: b
                .arms
                .into_iter()
                .map(|a| pb::ModelArm {
                    video_id: a.video_id,
                    artwork_id: a.artwork_id,
                    impressions: a.impressions,
                    plays: a.plays,
                    posterior_mean: a.posterior_mean,
                    linear_mean: a.linear_mean,
                    pick_probability: a.pick_probability,
                })
                .collect(),
        })
        .collect();
    let titles = view
        .titles
        .into_iter()
        .map(|t| pb::ModelTitle {
            video_id: t.video_id,
            outcomes: t.outcomes,
            prior_mean: t.prior_mean,
            early_read: t.early_read.map(|r| pb::EarlyRead { impressions: r.impressions, plays: r.plays }),
        })
        .collect();
    pb::ModelView {
        model_version: view.info.version.to_string(),
        learned_at_ms: happened(view.info.learned_at_ms),
        last_outcome_event_time_ms: happened(view.info.last_event_ms),
        pick_probability_policy: view.pick_policy.as_str().to_string(),
        buckets,
        titles,
    }
}
