//! How strong a configured JWT secret looks: production mode refuses one that contains
//! placeholder text copied from documentation or shows too little entropy (see
//! `Settings::resolve_jwt_secret`).

/// Fewest bits of entropy a JWT secret must show, estimated from its own character
/// frequencies (Shannon entropy × length). A random 32-character hex string (128 bits) scores
/// about 115 and practically never below 90; a repeated or dictionary-like string scores far
/// less (`"ab"` × 16 scores 32).
pub const MIN_JWT_SECRET_BITS: f64 = 80.0;

/// Parts of placeholder secrets (compared case-insensitively): a secret containing one was
/// copied from documentation, not generated.
const PLACEHOLDER_PARTS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replaceme",
    "placeholder",
    "example",
    "your-secret",
    "local-compose-secret",
];

/// Why `secret` must not sign tokens in production, or `None` when it looks generated.
pub fn weak_secret(secret: &str) -> Option<String> {
    let lower = secret.to_ascii_lowercase();
    if let Some(part) = PLACEHOLDER_PARTS.iter().find(|p| lower.contains(*p)) {
        return Some(format!("it contains the placeholder text {part:?}"));
    }
    let bits = estimated_entropy_bits(secret);
    if bits < MIN_JWT_SECRET_BITS {
        return Some(format!(
            "its estimated entropy is {bits:.0} bits, below {MIN_JWT_SECRET_BITS:.0}"
        ));
    }
    None
}

/// Shannon entropy of `s`'s byte frequencies times its length, in bits.
fn estimated_entropy_bits(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    per_byte * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_named_with_their_reason_and_generated_ones_pass() {
        assert!(weak_secret(&"ab".repeat(16)).unwrap().contains("entropy"));
        assert!(
            weak_secret("please-CHANGE-ME-0123456789abcdefghij")
                .unwrap()
                .contains("change-me")
        );
        let mut bytes = [0u8; 32];
        for _ in 0..200 {
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes[..16]);
            let generated = hex::encode(&bytes[..16]);
            assert_eq!(weak_secret(&generated), None, "{generated}");
        }
    }
}
