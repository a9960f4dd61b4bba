//! The HTTP publish endpoint of a [`Hub`].

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Hub;

#[derive(Deserialize)]
struct PublishRequest {
    topic: String,
    event: String,
    data: serde_json::Value,
}

pub(super) async fn http_publish(
    State(hub): State<Hub>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    fn error(status: StatusCode, message: impl Into<String>) -> Response {
        (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
    }
    let expected = hub.inner.publish_token.as_deref().unwrap_or_default();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(expected) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let request: PublishRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) if e.is_data() => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    match hub
        .publish(&request.topic, &request.event, &request.data)
        .await
    {
        Ok(delivery) => Json(delivery).into_response(),
        Err(e @ super::HubError::Unavailable) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
