//! Deadlines on requests, so that a slow or stalled client (or a stuck dependency) cannot
//! hold a request open for as long as it likes:
//!
//! - the body deadline: the whole body must arrive within `--body-timeout-seconds` of the
//!   request's head; a client that trickles it gets 408;
//! - the request deadline: the answer must be ready within `--request-timeout-seconds`,
//!   body included; past it the client gets 503 and the handler is dropped.
//!
//! Both are one [`tower::Layer`], [`DeadlinesLayer`], so that a request pays for one layer,
//! not two, and for no boxing of the route or its future.
//!
//! Routes that stream or long-poll (realtime feeds, event streams, dequeues, stream appends,
//! the worker channel) are outside both and keep limits of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::Sleep;

use crate::error::ApiError;
use taskgate_config::Timeouts;

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
#[derive(Clone, Copy, Debug)]
pub struct DeadlinesLayer(pub Timeouts);

impl<S> tower::Layer<S> for DeadlinesLayer {
    type Service = Deadlines<S>;

    fn layer(&self, inner: S) -> Deadlines<S> {
        Deadlines {
            inner,
            timeouts: self.0,
        }
    }
}

/// The service of [`DeadlinesLayer`].
#[derive(Clone, Debug)]
pub struct Deadlines<S> {
    inner: S,
    timeouts: Timeouts,
}

impl<S> tower::Service<Request> for Deadlines<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = DeadlinesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // A request whose body is known to be empty has nothing to wait for (most GETs).
        let (req, body_expired) = if req.body().is_end_stream() {
            (req, None)
        } else {
            let expired = Arc::new(AtomicBool::new(false));
            let limit = self.timeouts.body;
            let req = req.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(limit)),
                    expired: expired.clone(),
                })
            });
            (req, Some(expired))
        };
        DeadlinesFuture {
            inner: tokio::time::timeout(self.timeouts.request, self.inner.call(req)),
            body_expired,
            timeouts: self.timeouts,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's answer, or the deadline's.
    pub struct DeadlinesFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        body_expired: Option<Arc<AtomicBool>>,
        timeouts: Timeouts,
    }
}

impl<F, E> Future for DeadlinesFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = match ready!(this.inner.poll(cx)) {
            Err(_) => request_timed_out(this.timeouts.request),
            // The handler failed because the body did not arrive in time: say so.
            Ok(Ok(_))
                if this
                    .body_expired
                    .as_ref()
                    .is_some_and(|e| e.load(Ordering::Acquire)) =>
            {
                body_timed_out(this.timeouts.body)
            }
            Ok(answer) => return Poll::Ready(answer),
        };
        Poll::Ready(Ok(answer))
    }
}

/// The 408 of a request whose body did not arrive within `limit`.
fn body_timed_out(limit: Duration) -> Response {
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
    r
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
