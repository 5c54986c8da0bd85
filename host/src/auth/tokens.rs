//! Access and refresh tokens.
//!
//! Access tokens are HS256 JWTs with `iss`, `aud`, `sub` (user id), `role`, `exp`, `iat`,
//! `jti` and `typ = "access"`. Verification pins the algorithm to HS256 and requires the
//! issuer and audience, so `alg: none`, another algorithm, a bad signature, an expired token or
//! a foreign issuer/audience all fail.
//!
//! Access tokens also carry `ver`, the user's token version when they were issued; routes that
//! check it (every request made with an admin token, `/api/auth/me`, `/logout-all`) refuse a
//! token whose version is no longer the user's, so a demotion or "log out everywhere" takes
//! effect at once there.
//!
//! Refresh tokens are opaque: 32 bytes, base64url without padding. Only their SHA-256 is
//! stored (in a token family, see `storage::TokenStore`). A family's first token is random;
//! each successor is HMAC-SHA256 of its predecessor under a key derived from the signing
//! secret. So two refreshes presenting the same token (two tabs, a client retry) ask the store
//! for the same successor, and the store can hand it to both within a short grace window
//! without ever storing a token: only whoever holds the key and the predecessor can compute it.

use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::configuration::{AuthSettings, Secret};
use crate::domain::{Id, Role};

/// The `typ` claim of access tokens; anything else is refused as an access token.
pub const ACCESS_TYPE: &str = "access";

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// The claims of an access token, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id (24-hex).
    pub sub: String,
    /// "customer" or "admin".
    pub role: String,
    pub exp: u64,
    pub iat: u64,
    /// Unique token id, for audit logs.
    pub jti: String,
    /// "access"; tells access tokens from any other token signed with the same key.
    pub typ: String,
    /// The user's token version when the token was issued (absent in tokens of older
    /// releases: 0).
    #[serde(default)]
    pub ver: u64,
}

/// Who an access token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Id,
    pub role: Role,
    /// The token version the token was issued under.
    pub token_version: u64,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A freshly generated refresh token and the hash that is stored for it.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Sent to the client, never stored.
    pub token: String,
    /// SHA-256 of the token's bytes; the only thing stored.
    pub hash: [u8; 32],
}

/// Why an access token was refused. Clients only ever learn "401".
#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct InvalidToken(String);

/// Signs and verifies tokens with the service's key and settings.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Pinned to HS256 with issuer and audience required.
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// HMAC key deriving a refresh token's successor (itself derived from the secret).
    successor_key: [u8; 32],
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

impl TokenService {
    pub fn new(secret: &Secret, settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: Duration::from_secs(settings.access_ttl_secs),
            refresh_ttl: Duration::from_secs(settings.refresh_ttl_secs),
            successor_key: hmac_sha256(
                secret.expose().as_bytes(),
                b"orderd refresh-token successor v1",
            ),
        }
    }

    /// How long a refresh token lives.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Signs an access token for `user_id` with `role` under token version 0 (a user whose
    /// sessions were never ended).
    pub fn issue_access(&self, user_id: Id, role: Role) -> anyhow::Result<AccessToken> {
        self.issue_access_versioned(user_id, role, 0)
    }

    /// Signs an access token for `user_id` with `role` under the user's `token_version`.
    pub fn issue_access_versioned(
        &self,
        user_id: Id,
        role: Role,
        token_version: u64,
    ) -> anyhow::Result<AccessToken> {
        let iat = now_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_hex(),
            role: role.as_str().to_owned(),
            exp: iat + self.access_ttl.as_secs(),
            iat,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: ACCESS_TYPE.to_owned(),
            ver: token_version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("Failed to sign an access token")?;
        Ok(AccessToken {
            token,
            expires_in: self.access_ttl.as_secs(),
        })
    }

    /// Verifies an access token and returns whom it was issued to.
    pub fn verify_access(&self, token: &str) -> Result<Principal, InvalidToken> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| InvalidToken(err.to_string()))?;
        let claims = data.claims;
        if claims.typ != ACCESS_TYPE {
            return Err(InvalidToken(format!("typ is {:?}", claims.typ)));
        }
        let user_id = Id::parse(&claims.sub).map_err(|_| InvalidToken("malformed sub".into()))?;
        let role = Role::parse(&claims.role).ok_or_else(|| InvalidToken("unknown role".into()))?;
        Ok(Principal {
            user_id,
            role,
            token_version: claims.ver,
        })
    }

    /// The successor of a presented refresh token: HMAC-SHA256 of its bytes under the
    /// successor key. `None` when `presented` cannot be one of ours (see [`refresh_hash`]).
    pub fn successor_of(&self, presented: &str) -> Option<RefreshToken> {
        let bytes = refresh_bytes(presented)?;
        let next = hmac_sha256(&self.successor_key, &bytes);
        Some(RefreshToken {
            token: URL_SAFE_NO_PAD.encode(next),
            hash: Sha256::digest(next).into(),
        })
    }

    /// A new random refresh token and its hash.
    pub fn new_refresh(&self) -> RefreshToken {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        RefreshToken {
            token: URL_SAFE_NO_PAD.encode(bytes),
            hash: Sha256::digest(bytes).into(),
        }
    }
}

/// The stored hash of a presented refresh token, or `None` when it cannot be one of ours.
pub fn refresh_hash(token: &str) -> Option<[u8; 32]> {
    refresh_bytes(token).map(|bytes| Sha256::digest(bytes).into())
}

/// The 32 bytes of a well-formed refresh token (43 base64url characters), else `None`.
fn refresh_bytes(token: &str) -> Option<[u8; 32]> {
    if token.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        TokenService::new(&Secret::new("k".repeat(32)), &AuthSettings::default())
    }

    #[test]
    fn an_issued_access_token_verifies_to_its_user_and_role() {
        let svc = service();
        let id = Id::new();
        let token = svc.issue_access(id, Role::Admin).unwrap();
        assert_eq!(token.expires_in, 900);
        assert_eq!(
            svc.verify_access(&token.token).unwrap(),
            Principal {
                user_id: id,
                role: Role::Admin,
                token_version: 0,
            }
        );
        let later = svc.issue_access_versioned(id, Role::Admin, 7).unwrap();
        assert_eq!(svc.verify_access(&later.token).unwrap().token_version, 7);
    }

    #[test]
    fn a_successor_is_the_same_for_the_same_token_and_depends_on_the_key() {
        let svc = service();
        let first = svc.new_refresh();
        let a = svc.successor_of(&first.token).unwrap();
        let b = svc.successor_of(&first.token).unwrap();
        assert_eq!((a.token.as_str(), a.hash), (b.token.as_str(), b.hash));
        assert_eq!(refresh_hash(&a.token), Some(a.hash));
        assert_ne!(a.token, first.token);
        let other = TokenService::new(&Secret::new("o".repeat(32)), &AuthSettings::default());
        assert_ne!(other.successor_of(&first.token).unwrap().token, a.token);
        assert!(svc.successor_of("garbage").is_none());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = TokenService::new(&Secret::new("o".repeat(32)), &AuthSettings::default());
        let token = other.issue_access(Id::new(), Role::Customer).unwrap();
        assert!(service().verify_access(&token.token).is_err());
    }

    #[test]
    fn refresh_tokens_hash_to_what_was_stored_and_garbage_hashes_to_nothing() {
        let refresh = service().new_refresh();
        assert_eq!(refresh.token.len(), 43);
        assert_eq!(refresh_hash(&refresh.token), Some(refresh.hash));
        assert_eq!(refresh_hash("not-a-token"), None);
        assert_eq!(refresh_hash(&"!".repeat(43)), None);
    }
}
