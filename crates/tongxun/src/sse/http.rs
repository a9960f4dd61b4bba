//! The HTTP side: `GET {path}` opens a stream, `POST {path}` publishes.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Deserialize;

use super::SseHub;
use super::config::{SubscribeRejection, SubscribeRequest, constant_time_eq};
use super::event::{
    PublishError, SHUTDOWN_COMMENT, SseEvent, TOPIC_LIMIT_COMMENT, UNAVAILABLE_COMMENT, check_topic,
};

/// Room a `POST` body gets beyond twice the data limit, for the JSON around the data.
const ENVELOPE_ALLOWANCE: usize = 1024;

impl SseHub {
    /// The hub's routes: `GET` and `POST` on [`SseConfig::path`](super::SseConfig::path).
    ///
    /// [`ServerBuilder::sse`](crate::ServerBuilder::sse) merges them into the server; call this
    /// to serve the hub from your own axum app instead.
    ///
    /// # Panics
    /// When the configured path is not a valid axum path (it must start with `/`).
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseHub};
    ///
    /// let hub = SseHub::new(SseConfig::default());
    /// let app: axum::Router = axum::Router::new().merge(hub.router());
    /// # let _ = app;
    /// ```
    pub fn router(&self) -> Router {
        Router::new()
            .route(&self.inner.config.path, get(subscribe).post(publish))
            .with_state(self.clone())
    }
}

/// A 4xx answer with a JSON body `{"error": "..."}`.
fn client_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut response = client_error(StatusCode::UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The headers of every stream.
fn stream_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// What a `GET` asks for.
struct SubscribeQuery<'q> {
    topics: Vec<String>,
    token: Option<&'q str>,
    last_event_id: Option<&'q str>,
}

/// Reads the topics, token and resume point of a `GET`, or tells what is wrong with them.
fn parse_query(
    query: &[(String, String)],
    max_topics: usize,
) -> Result<SubscribeQuery<'_>, String> {
    let mut parsed = SubscribeQuery {
        topics: Vec::new(),
        token: None,
        last_event_id: None,
    };
    for (key, value) in query {
        match key.as_str() {
            "topic" => {
                if let Err(e) = check_topic(value) {
                    tracing::warn!(topic = ?value, "sse subscribe to an invalid topic");
                    return Err(format!("topic {value:?}: {e}"));
                }
                if parsed.topics.contains(value) {
                    continue;
                }
                if parsed.topics.len() == max_topics {
                    tracing::warn!(max = max_topics, "sse subscribe to too many topics");
                    return Err(format!("at most {max_topics} topics per stream"));
                }
                parsed.topics.push(value.clone());
            }
            "token" => parsed.token = parsed.token.or(Some(value.as_str())),
            "lastEventId" => parsed.last_event_id = parsed.last_event_id.or(Some(value.as_str())),
            _ => {}
        }
    }
    if parsed.topics.is_empty() {
        tracing::warn!("sse subscribe without a topic");
        return Err("at least one topic is required, such as ?topic=news&topic=prices".to_owned());
    }
    Ok(parsed)
}

async fn subscribe(State(hub): State<SseHub>, uri: Uri, headers: HeaderMap) -> Response {
    let config = &hub.inner.config;
    let Ok(query) = serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
    else {
        tracing::warn!(%uri, "sse subscribe with a malformed query string");
        return client_error(StatusCode::BAD_REQUEST, "the query string is not valid");
    };
    let SubscribeQuery {
        topics,
        token,
        last_event_id: query_last_id,
    } = match parse_query(&query, config.max_topics) {
        Ok(parsed) => parsed,
        Err(message) => return client_error(StatusCode::BAD_REQUEST, message),
    };
    let request = SubscribeRequest {
        token: token.or_else(|| bearer(&headers)),
        topics: &topics,
        headers: &headers,
    };
    match config.subscribe_auth.check(&request) {
        Ok(()) => {}
        Err(SubscribeRejection::Unauthorized) => {
            tracing::warn!(topics = ?topics, "sse subscribe refused: missing or invalid token");
            return unauthorized("missing or invalid token");
        }
        Err(SubscribeRejection::Forbidden) => {
            tracing::warn!(topics = ?topics, "sse subscribe refused: forbidden");
            return client_error(
                StatusCode::FORBIDDEN,
                "not allowed to subscribe to these topics",
            );
        }
        Err(SubscribeRejection::Stop) => {
            tracing::debug!(topics = ?topics, "sse subscribe answered with 204: client told to stop");
            return StatusCode::NO_CONTENT.into_response();
        }
    }

    if hub.inner.shutdown.is_cancelled() {
        return retry_later(config.retry, SHUTDOWN_COMMENT);
    }

    // The header is what a client sends when it reconnects, so it is newer than the query
    // parameter, which stays in the URL from the first connection.
    let header_last_id = headers
        .get("last-event-id")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .filter(|value| !value.is_empty());
    let last_id = header_last_id
        .as_deref()
        .or(query_last_id.filter(|value| !value.is_empty()));
    match hub.subscribe(&topics, last_id).await {
        Ok(stream) => stream_response(Body::from_stream(stream)),
        // Logged by the hub, once per sweep interval.
        Err(PublishError::TooManyTopics { .. }) => retry_later(config.retry, TOPIC_LIMIT_COMMENT),
        Err(_) => retry_later(config.retry, UNAVAILABLE_COMMENT),
    }
}

/// A stream that ends at once with `comment`: a 200 makes the client retry after `retry`
/// (presumably against another server, or once the history is back), where an error status
/// would stop it for good.
fn retry_later(retry: std::time::Duration, comment: &'static [u8]) -> Response {
    let retry = format!("retry: {}\n\n", retry.as_millis());
    let body = [Bytes::from(retry), Bytes::from_static(comment)].concat();
    stream_response(Body::from(body))
}

/// The JSON body of a `POST`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    topic: String,
    #[serde(default)]
    event: Option<String>,
    data: serde_json::Value,
    /// Refused with a clear message: ids are the hub's.
    #[serde(default)]
    id: Option<serde_json::Value>,
}

async fn publish(State(hub): State<SseHub>, headers: HeaderMap, body: Body) -> Response {
    let config = &hub.inner.config;
    let Some(expected) = &config.publish_token else {
        tracing::warn!("sse publish refused: publishing over http is disabled");
        return client_error(
            StatusCode::FORBIDDEN,
            "publishing over http is disabled: no publish token is configured",
        );
    };
    match bearer(&headers) {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {}
        _ => {
            tracing::warn!("sse publish refused: missing or invalid token");
            return unauthorized(
                "missing or invalid token, expected Authorization: Bearer <token>",
            );
        }
    }
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        tracing::warn!("sse publish with a content type other than json");
        return client_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON with Content-Type: application/json",
        );
    }

    let limit = config
        .max_data_len
        .saturating_mul(2)
        .saturating_add(ENVELOPE_ALLOWANCE);
    let too_large = || {
        tracing::warn!(limit, "sse publish body too large");
        client_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large();
    }
    let mut raw = BytesMut::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            tracing::warn!("sse publish body could not be read");
            return client_error(StatusCode::BAD_REQUEST, "failed to read the body");
        };
        if raw.len() + chunk.len() > limit {
            return too_large();
        }
        raw.extend_from_slice(&chunk);
    }

    let body: PublishBody = match serde_json::from_slice(&raw) {
        Ok(body) => body,
        Err(e) => {
            use serde_json::error::Category;
            let status = match e.classify() {
                Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
                Category::Io | Category::Syntax | Category::Eof => StatusCode::BAD_REQUEST,
            };
            tracing::warn!(error = ?e, "sse publish with an invalid body");
            return client_error(status, format!("invalid body: {e}"));
        }
    };
    if body.id.is_some() {
        tracing::warn!("sse publish with an id");
        return client_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "\"id\" cannot be set: the hub assigns ids (returned in the response)",
        );
    }
    let data = match body.data {
        serde_json::Value::String(text) => text,
        serde_json::Value::Null => {
            return client_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "\"data\" must be a string or a JSON value other than null",
            );
        }
        other => other.to_string(),
    };
    let mut event = SseEvent::new(data);
    if let Some(name) = body.event {
        event = event.event(name);
    }
    match hub.publish(&body.topic, event).await {
        Ok(id) => {
            let answer =
                serde_json::json!({ "id": id.to_string(), "topic": id.topic(), "seq": id.seq() });
            ([(CONTENT_TYPE, "application/json")], answer.to_string()).into_response()
        }
        Err(e @ PublishError::DataTooLarge { .. }) => {
            tracing::warn!(error = %e, "sse publish refused");
            client_error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        Err(
            e @ (PublishError::ShutDown
            | PublishError::Unavailable
            | PublishError::TooManyTopics { .. }),
        ) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": e.to_string() }).to_string(),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "sse publish refused");
            client_error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
    }
}
