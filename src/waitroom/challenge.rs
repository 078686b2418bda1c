//! The proof-of-work gate of a room's join (`challengeBits`): challenges
//! are signed tokens bound to a user and a show, valid five minutes, spent
//! once; a shopper already in the room joins again without one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::engine::{Spend, Standing, StoredRoom};
use super::rooms::Rooms;
use crate::domain::catalog::Show;
use crate::domain::pow;
use crate::error::{Error, Result};
use crate::http::time::time_ms;

/// How long a challenge can be solved and used.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// Longest nonce taken (a counter needs a few digits).
const MAX_NONCE_LEN: usize = 64;

/// `GET /waitrooms/{id}/challenge`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeView {
    /// Find a `nonce` such that SHA-256 of `challenge + ":" + nonce` starts with `bits` zero bits.
    pub challenge: String,
    #[schema(maximum = 26)]
    pub bits: u8,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A join's body (optional): the solved challenge, where the room asks
/// for one and the shopper is not in it yet.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct JoinProof {
    /// From `GET /waitrooms/{id}/challenge`.
    pub challenge: Option<String>,
    /// A string (or a whole number) such that SHA-256 of `challenge + ":" + nonce` starts with `bits` zero bits.
    #[schema(value_type = Option<String>, max_length = 64)]
    pub nonce: Option<Nonce>,
}

/// The page sends a string; a whole number is taken as its decimal digits.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Nonce {
    Text(String),
    Number(u64),
}

impl Default for Nonce {
    fn default() -> Self {
        Self::Text(String::new())
    }
}

impl Nonce {
    fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
}

impl Rooms {
    /// A challenge for this user on this show, at the room's bits now.
    pub async fn challenge(&self, show: &Show, user: &str) -> Result<ChallengeView> {
        let room = self.room(&show.id).await?;
        let expires_ms = self.clock.now_ms() + CHALLENGE_TTL_MS;
        let bits = room.config.challenge_bits;
        Ok(ChallengeView {
            challenge: self.tokens.challenge(user, &show.id, bits, expires_ms)?,
            bits,
            expires_at: time_ms(expires_ms),
        })
    }

    /// Lets a join through the room's proof of work: a shopper already in
    /// the room passes (`None`); a new one needs a solved challenge of
    /// theirs for this show, issued at no fewer bits than the room asks now,
    /// which the join then spends in its own step (`Some`).
    pub(super) async fn check_proof(
        &self,
        room: &StoredRoom,
        show: &Show,
        user: &str,
        proof: Option<&JoinProof>,
    ) -> Result<Option<Spend>> {
        let bits = room.config.challenge_bits;
        if bits == 0 {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let stand = self.engine.join(&show.id, user, now, false, now).await?;
        if stand.standing != Standing::None {
            return Ok(None);
        }
        let (challenge, nonce) = match proof {
            Some(JoinProof {
                challenge: Some(c),
                nonce,
            }) => (c, nonce.as_ref().map(Nonce::text).unwrap_or_default()),
            _ => return Err(Error::ChallengeRequired),
        };
        let claims = self.tokens.check_challenge(challenge, user, &show.id)?;
        if claims.bits < bits {
            return Err(Error::ChallengeFailed(format!(
                "the room now asks for {bits} bits: get a new challenge"
            )));
        }
        if nonce.len() > MAX_NONCE_LEN || !pow::solves(challenge, &nonce, claims.bits) {
            return Err(Error::ChallengeFailed("the nonce does not solve the challenge".into()));
        }
        Ok(Some(Spend {
            id: claims.jti,
            until_ms: claims.exp * 1000,
        }))
    }
}
