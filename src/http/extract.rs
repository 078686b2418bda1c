//! Extractors whose rejections are the contract's errors: malformed JSON is
//! 400 `BAD_REQUEST` (never axum's 415/422 text), an oversized body is 413,
//! a missing or bad token 401, an id we never minted or a show we do not
//! have 404. Ids are parsed here, at the edge, and travel typed after.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::ratelimit::Limiter;
use crate::auth::{Tokens, User};
use crate::domain::HoldId;
use crate::domain::catalog::{Catalog, Show};
use crate::error::Error;

/// A JSON body.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

/// A path parameter.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

/// Query parameters.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Error::PayloadTooLarge("request body too large".into());
        }
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                Error::BadRequest("expected a JSON body with Content-Type: application/json".into())
            }
            other => Error::BadRequest(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::BadRequest(format!("invalid path: {}", r.body_text()))
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::BadRequest(format!("invalid query: {}", r.body_text()))
    }
}

/// A JSON body that may be absent (then `T::default()`), for routes whose
/// every field is optional.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("request body too large".into())
            } else {
                Error::BadRequest(r.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// What authentication needs: the token keys and the per-user limit.
#[derive(Clone)]
pub struct AuthState {
    pub tokens: Arc<Tokens>,
    pub per_user: Arc<Limiter<String>>,
}

/// The authenticated caller (a bearer token only); also applies the
/// per-user rate limit.
pub struct Auth(pub User);

impl<S: Send + Sync> FromRequestParts<S> for Auth
where
    AuthState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        authenticate(&AuthState::from_ref(state), bearer(parts)).map(Self)
    }
}

/// The caller of a WebSocket route: a bearer token, or `?access_token=`
/// (browsers cannot set headers on a WebSocket). Only the socket routes
/// take it, so tokens stay out of the URLs and logs of every other route.
pub struct SocketAuth(pub User);

impl<S: Send + Sync> FromRequestParts<S> for SocketAuth
where
    AuthState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        authenticate(
            &AuthState::from_ref(state),
            bearer(parts).or_else(|| query_token(parts)),
        )
        .map(Self)
    }
}

/// The caller of a seat-socket handshake, which counts against the request
/// limits as a request does: the client address's, and the user's when a
/// token comes with it (`Authorization` or `?access_token=`). 429 over
/// either; a token that comes and is bad is 401. Taken before anything
/// else of the handshake, so a loop of handshakes costs a node nothing more.
pub struct HandshakeCaller(pub Option<User>);

impl<S: Send + Sync> FromRequestParts<S> for HandshakeCaller
where
    AuthState: FromRef<S>,
    Arc<Limiter<std::net::IpAddr>>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        if let Some(ip) = super::client::client_ip(&parts.extensions) {
            Arc::<Limiter<std::net::IpAddr>>::from_ref(state).check(&ip)?;
        }
        match bearer(parts).or_else(|| query_token(parts)) {
            None => Ok(Self(None)),
            token => authenticate(&AuthState::from_ref(state), token).map(|u| Self(Some(u))),
        }
    }
}

fn authenticate(auth: &AuthState, token: Option<String>) -> Result<User, Error> {
    let token = token.ok_or_else(|| Error::Unauthorized("missing Authorization: Bearer token".into()))?;
    let user = auth.tokens.verify(&token)?;
    auth.per_user.check(&user.id)?;
    Ok(user)
}

/// An authenticated admin; other users are 403.
pub struct Admin(pub User);

impl<S: Send + Sync> FromRequestParts<S> for Admin
where
    AuthState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Auth(user) = Auth::from_request_parts(parts, state).await?;
        if !user.admin {
            return Err(Error::Forbidden("this needs an admin token".into()));
        }
        Ok(Self(user))
    }
}

/// The route's one path parameter, as text.
async fn path_param<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, Error> {
    let Path(value) = Path::<String>::from_request_parts(parts, state).await?;
    Ok(value)
}

/// The show named by the route's path, which must be in the catalog (404).
pub struct KnownShow(pub Show);

impl<S: Send + Sync> FromRequestParts<S> for KnownShow
where
    Arc<Catalog>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let id = path_param(parts, state).await?;
        let catalog = Arc::<Catalog>::from_ref(state);
        let show = catalog.show(&id).ok_or_else(|| Error::not_found("show"))?;
        Ok(Self(show.clone()))
    }
}

/// A hold id from the path; one we never minted is 404, like a missing hold.
pub struct HoldPath(pub HoldId);

impl<S: Send + Sync> FromRequestParts<S> for HoldPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let id = path_param(parts, state).await?;
        HoldId::parse(&id).map(Self).ok_or_else(|| Error::not_found("hold"))
    }
}

/// An order id from the path; anything but a UUID is 404, like a missing order.
pub struct OrderPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for OrderPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let id = path_param(parts, state).await?;
        Uuid::parse_str(&id).map(Self).map_err(|_| Error::not_found("order"))
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// WebSocket clients cannot set headers from a browser: `?access_token=`.
fn query_token(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "access_token").then(|| v.to_owned())
    })
}
