//! Bearer tokens: HS256 JWTs with `sub` and `exp` (and `role: "admin"` for
//! ops). Anything else — another algorithm, `none`, another secret, a missing
//! claim, an expired token — is 401 `UNAUTHORIZED`.

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Clock skew tolerated on `exp`, in seconds: none. A token past its
/// `exp` is expired, as the contract says; the issuer's clock is ours (the
/// dev route) or an identity provider's kept by NTP.
const LEEWAY_SECONDS: u64 = 0;
/// Longest user id accepted in `sub`; ids travel in Redis keys and rows.
pub const MAX_USER_ID_LEN: usize = 128;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Absent (or `user`) on user tokens; an admission token says
    /// `admission` and must never pass as a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// Signs and verifies user tokens with one secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// The caller of an authenticated route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub admin: bool,
}

impl Tokens {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn issue(&self, user: &str, admin: bool, ttl_seconds: i64) -> Result<String> {
        // The system clock, not `crate::clock`: `jsonwebtoken` checks `exp`
        // against it, so a token must be issued by the same one.
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_owned(),
            exp: now + ttl_seconds,
            role: admin.then(|| "admin".to_owned()),
            iat: Some(now),
            typ: None,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("jwt: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<User> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Error::Unauthorized(format!("invalid token: {e}")))?;
        if !matches!(data.claims.typ.as_deref(), None | Some("user")) {
            return Err(Error::Unauthorized("invalid token: not a user token".into()));
        }
        let sub = data.claims.sub;
        if !valid_user_id(&sub) {
            return Err(Error::Unauthorized("invalid token: bad sub".into()));
        }
        Ok(User {
            id: sub,
            admin: data.claims.role.as_deref() == Some("admin"),
        })
    }
}

/// Claims of an admission token: this user may hold seats of this show
/// until `exp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionClaims {
    pub sub: String,
    pub show: String,
    pub exp: i64,
    pub typ: String,
}

const ADMISSION_TYP: &str = "admission";

impl Tokens {
    /// An admission token for `user` on `show`, valid until `expires_ms`.
    pub fn admission(&self, user: &str, show: &str, expires_ms: i64) -> Result<String> {
        let claims = AdmissionClaims {
            sub: user.to_owned(),
            show: show.to_owned(),
            exp: expires_ms.div_euclid(1000),
            typ: ADMISSION_TYP.to_owned(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("jwt: {e}")))
    }

    /// Accepts only our own, unexpired admission token for this user and show.
    pub fn check_admission(&self, token: &str, user: &str, show: &str) -> Result<()> {
        let refuse = |why: &str| Error::AdmissionRequired(format!("this show has a waiting room: {why}"));
        let mut validation = self.validation.clone();
        validation.leeway = 0;
        let data = decode::<AdmissionClaims>(token, &self.decoding, &validation)
            .map_err(|_| refuse("the admission token is missing, forged or expired"))?;
        let c = data.claims;
        if c.typ != ADMISSION_TYP || c.sub != user || c.show != show {
            return Err(refuse("the admission token is for another user or show"));
        }
        Ok(())
    }
}

/// Claims of a proof-of-work challenge: `sub` may join `show` with a nonce
/// that solves this token at `bits`, once (`jti`), until `exp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeClaims {
    pub sub: String,
    pub show: String,
    pub bits: u8,
    pub exp: i64,
    pub jti: String,
    pub typ: String,
}

const CHALLENGE_TYP: &str = "challenge";

impl Tokens {
    /// A challenge for `user` on `show` at `bits`, valid until `expires_ms`.
    /// The challenge is the token itself: signed, so the server keeps
    /// nothing until it is spent.
    pub fn challenge(&self, user: &str, show: &str, bits: u8, expires_ms: i64) -> Result<String> {
        let claims = ChallengeClaims {
            sub: user.to_owned(),
            show: show.to_owned(),
            bits,
            exp: expires_ms.div_euclid(1000),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ: CHALLENGE_TYP.to_owned(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("jwt: {e}")))
    }

    /// Accepts only our own, unexpired challenge for this user and show.
    pub fn check_challenge(&self, token: &str, user: &str, show: &str) -> Result<ChallengeClaims> {
        let fail = |why: &str| Error::ChallengeFailed(why.to_owned());
        let mut validation = self.validation.clone();
        validation.leeway = 0;
        let data = decode::<ChallengeClaims>(token, &self.decoding, &validation)
            .map_err(|_| fail("the challenge is not one this server gave, or it has expired"))?;
        let c = data.claims;
        if c.typ != CHALLENGE_TYP || c.sub != user || c.show != show {
            return Err(fail("the challenge was given to another user or for another show"));
        }
        Ok(c)
    }
}

/// Checks a user id for `/dev/token` and `showgate token`.
/// 1 to 128 characters (not bytes: the contract counts characters), none
/// of them a control character.
pub fn valid_user_id(id: &str) -> bool {
    (1..=MAX_USER_ID_LEN).contains(&id.chars().count()) && !id.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_carry_the_admin_role() {
        let t = Tokens::new("secret");
        let user = t.verify(&t.issue("alice", true, 60).unwrap()).unwrap();
        assert_eq!(
            user,
            User {
                id: "alice".into(),
                admin: true
            }
        );
        assert!(!t.verify(&t.issue("bob", false, 60).unwrap()).unwrap().admin);
    }

    #[test]
    fn foreign_expired_and_unsigned_tokens_are_refused() {
        let t = Tokens::new("secret");
        assert!(
            t.verify(&Tokens::new("other").issue("alice", false, 60).unwrap())
                .is_err()
        );
        assert!(t.verify(&t.issue("alice", false, -120).unwrap()).is_err());
        // alg "none": header {"alg":"none","typ":"JWT"}, claims with sub/exp, empty signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(t.verify(none).is_err());
        let no_sub = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"exp": Utc::now().timestamp() + 60}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(t.verify(&no_sub).is_err());
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "a", "exp": Utc::now().timestamp() + 60}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(t.verify(&hs512).is_err());
    }

    #[test]
    fn admission_tokens_bind_user_show_and_time() {
        let t = Tokens::new("secret");
        let exp = Utc::now().timestamp_millis() + 60_000;
        let tok = t.admission("alice", "show-1", exp).unwrap();
        assert!(t.check_admission(&tok, "alice", "show-1").is_ok());
        assert!(t.check_admission(&tok, "bob", "show-1").is_err());
        assert!(t.check_admission(&tok, "alice", "show-2").is_err());
        assert!(Tokens::new("other").check_admission(&tok, "alice", "show-1").is_err());
        let old = t
            .admission("alice", "show-1", Utc::now().timestamp_millis() - 1000)
            .unwrap();
        assert!(t.check_admission(&old, "alice", "show-1").is_err());
        // A user token is not an admission token.
        let user = t.issue("alice", false, 60).unwrap();
        assert!(t.check_admission(&user, "alice", "show-1").is_err());
    }
}
