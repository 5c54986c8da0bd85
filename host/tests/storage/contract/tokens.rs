//! Refresh-token families: rotation, reuse detection, expiry, revocation, concurrent rotation.

use std::sync::Arc;

use chrono::Duration;
use orderd::domain::Id;
use orderd::storage::{RefreshGrant, RotateOutcome, Store};

use super::{Harness, now};

/// A random token hash (stand-in for SHA-256 of an opaque token).
fn hash() -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..12].copy_from_slice(&Id::new().bytes());
    h[12..24].copy_from_slice(&Id::new().bytes());
    h
}

/// Starts a family valid for an hour and returns (grant, first token hash).
async fn family(store: &Arc<dyn Store>) -> RefreshGrant {
    let at = now();
    let grant = RefreshGrant {
        family_id: Id::new(),
        user_id: Id::new(),
        token_hash: hash(),
        issued_at: at,
        expires_at: at + Duration::hours(1),
    };
    store.create_family(&grant).await.unwrap();
    grant
}

pub async fn rotating_the_current_refresh_token_replaces_it(h: &dyn Harness) {
    let store = h.store();
    let g = family(&store).await;
    let (second, third) = (hash(), hash());
    let t = now();

    let first = store
        .rotate_refresh(g.token_hash, second, t, t + Duration::hours(1))
        .await
        .unwrap();
    let next = store
        .rotate_refresh(second, third, t, t + Duration::hours(1))
        .await
        .unwrap();

    let rotated = RotateOutcome::Rotated {
        user_id: g.user_id,
        family_id: g.family_id,
    };
    assert_eq!(first, rotated);
    assert_eq!(next, rotated);
}

pub async fn presenting_a_rotated_away_token_revokes_its_family(h: &dyn Harness) {
    let store = h.store();
    let g = family(&store).await;
    let second = hash();
    let t = now();
    store
        .rotate_refresh(g.token_hash, second, t, t + Duration::hours(1))
        .await
        .unwrap();

    let reuse = store
        .rotate_refresh(g.token_hash, hash(), t, t + Duration::hours(1))
        .await
        .unwrap();

    assert_eq!(
        reuse,
        RotateOutcome::Reused {
            family_id: g.family_id
        }
    );
    // The legitimate holder's current token died with the family.
    let after = store
        .rotate_refresh(second, hash(), t, t + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(after, RotateOutcome::Invalid);
}

pub async fn unknown_and_expired_refresh_tokens_are_invalid(h: &dyn Harness) {
    let store = h.store();
    let t = now();
    assert_eq!(
        store
            .rotate_refresh(hash(), hash(), t, t + Duration::hours(1))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );

    // A rotation sets the new expiry: one second later than now is obeyed, past it is not.
    let g = family(&store).await;
    let second = hash();
    store
        .rotate_refresh(g.token_hash, second, t, t + Duration::seconds(1))
        .await
        .unwrap();
    let before_expiry = t + Duration::milliseconds(999);
    let third = hash();
    assert!(matches!(
        store
            .rotate_refresh(second, third, before_expiry, t + Duration::seconds(1))
            .await
            .unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    let at_expiry = t + Duration::seconds(1);
    assert_eq!(
        store
            .rotate_refresh(third, hash(), at_expiry, at_expiry + Duration::hours(1))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
}

pub async fn a_revoked_family_accepts_none_of_its_tokens(h: &dyn Harness) {
    let store = h.store();
    let g = family(&store).await;
    let second = hash();
    let t = now();
    store
        .rotate_refresh(g.token_hash, second, t, t + Duration::hours(1))
        .await
        .unwrap();

    // Logging out with an earlier token still ends the family.
    store.revoke_family_of(g.token_hash).await.unwrap();

    assert_eq!(
        store
            .rotate_refresh(second, hash(), t, t + Duration::hours(1))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    store
        .revoke_family_of(hash())
        .await
        .expect("revoking an unknown token is not an error");
}

pub async fn two_concurrent_rotations_of_one_token_rotate_exactly_once(h: &dyn Harness) {
    let store = h.store();
    for _ in 0..20 {
        let g = family(&store).await;
        let t = now();
        let (a, b) = (hash(), hash());
        let (s1, s2) = (Arc::clone(&store), Arc::clone(&store));
        let one = tokio::spawn(async move {
            s1.rotate_refresh(g.token_hash, a, t, t + Duration::hours(1))
                .await
        });
        let two = tokio::spawn(async move {
            s2.rotate_refresh(g.token_hash, b, t, t + Duration::hours(1))
                .await
        });
        let outcomes = [one.await.unwrap().unwrap(), two.await.unwrap().unwrap()];

        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, RotateOutcome::Reused { .. }))
            .count();
        assert_eq!((rotated, reused), (1, 1), "{outcomes:?}");
        // The reuse revoked the family, so neither new token works.
        for next in [a, b] {
            assert_eq!(
                store
                    .rotate_refresh(next, hash(), t, t + Duration::hours(1))
                    .await
                    .unwrap(),
                RotateOutcome::Invalid
            );
        }
    }
}
