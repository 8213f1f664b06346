//! Deadlines on requests, so that a slow or stalled client (or a stuck dependency) cannot
//! hold a request open for as long as it likes:
//!
//! - the body deadline: the whole body must arrive within `--body-timeout-seconds` of the
//!   request's head; a client that trickles it gets 408;
//! - the request deadline: the answer must be ready within `--request-timeout-seconds`,
//!   body included; past it the client gets 503 and the handler is dropped.
//!
//! Both are one middleware, [`deadlines`], so that a request pays for one layer, not two.
//!
//! Routes that stream or long-poll (realtime feeds, event streams, dequeues, stream appends,
//! the worker channel) are outside both and keep limits of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::Sleep;

use crate::config::Timeouts;
use crate::error::ApiError;

/// A request body that fails once its deadline passes, and says so.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new("the request body timed out"))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answers 503 when the request has not been answered within `timeouts.request`, and 408
/// when its body did not arrive within `timeouts.body`.
pub async fn deadlines(timeouts: Timeouts, req: Request, next: Next) -> Response {
    let answer = async {
        // A request whose body is known to be empty has nothing to wait for (most GETs).
        if req.body().is_end_stream() {
            next.run(req).await
        } else {
            body_deadline(timeouts.body, req, next).await
        }
    };
    match tokio::time::timeout(timeouts.request, answer).await {
        Ok(response) => response,
        Err(_) => request_timed_out(timeouts.request),
    }
}

/// Gives the request's body `limit` to arrive; answers 408 when the handler failed because
/// it did not.
async fn body_deadline(limit: Duration, req: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            expired: expired.clone(),
        })
    });
    let response = next.run(req).await;
    if expired.load(Ordering::Acquire) {
        tracing::info!(
            limit_seconds = limit.as_secs(),
            "request body not received in time"
        );
        let mut r = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The request body was not received within {} s",
                limit.as_secs()
            ),
        )
        .into_response();
        r.headers_mut()
            .insert("connection", HeaderValue::from_static("close"));
        return r;
    }
    response
}

/// The 503 of a request not answered within `limit`.
fn request_timed_out(limit: Duration) -> Response {
    metrics::counter!("taskgate_request_timeouts_total").increment(1);
    tracing::warn!(
        limit_seconds = limit.as_secs(),
        "request timed out; answered 503 (a slow database, or --request-timeout-seconds too short)"
    );
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("The request was not answered within {} s", limit.as_secs()),
    )
    .with("code", "request_timeout")
    .into_response()
}
