//! The JWT signing secret: the configured one, checked for length and strength, or in
//! development one kept (and created on first start) in the data directory with owner-only
//! permissions.

use super::*;

impl Settings {
    /// The JWT secret to sign with: the configured one, or in development the one kept in
    /// `<data dir>/jwt-secret` (created with a warning on first start).
    /// A configured secret that is a known default or of low entropy is refused in production
    /// and warned about in development.
    pub fn resolve_jwt_secret(&self) -> anyhow::Result<Secret> {
        if let Some(secret) = &self.auth.jwt_secret {
            if secret.expose().len() < MIN_JWT_SECRET_BYTES {
                bail!("the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes long");
            }
            if let Some(reason) = crate::auth::secret_strength::weak_secret(secret.expose()) {
                if self.is_production() {
                    bail!(
                        "production mode refuses this JWT secret: {reason}; generate one with `openssl rand -hex 32`"
                    );
                }
                tracing::warn!(%reason, "the configured JWT secret is weak; production mode would refuse it");
            }
            return Ok(secret.clone());
        }
        if self.is_production() {
            bail!(
                "production mode needs a JWT secret: set ORDERD_AUTH__JWT_SECRET (at least {MIN_JWT_SECRET_BYTES} bytes)"
            );
        }
        load_or_create_secret(&self.data_dir.join("jwt-secret"))
    }
}

/// Refuses a kept secret that another user owns or may write (they could sign any token with
/// a secret of their choosing), and warns when others may read it (they could sign tokens with
/// it): it should be 0600.
fn check_secret_file(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("Failed to read the JWT secret at {}", path.display()))?;
    if let Some(why) = crate::private_files::untrusted(&meta) {
        bail!(
            "refusing the JWT secret at {}: {why}; make it owned by this user with mode 0600",
            path.display()
        );
    }
    if crate::private_files::readable_by_others(&meta) {
        tracing::warn!(
            path = %path.display(),
            "the JWT secret is readable by other users, who could sign tokens with it; run chmod 600 on it"
        );
    }
    Ok(())
}

/// Reads the secret kept at `path`, or creates it (owner-only permissions) when absent.
fn load_or_create_secret(path: &Path) -> anyhow::Result<Secret> {
    if path.exists() {
        check_secret_file(path)?;
        let value = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the JWT secret at {}", path.display()))?;
        let value = value.trim();
        if value.len() < MIN_JWT_SECRET_BYTES {
            bail!(
                "the JWT secret in {} is shorter than {MIN_JWT_SECRET_BYTES} bytes",
                path.display()
            );
        }
        return Ok(Secret::new(value));
    }
    if let Some(dir) = path.parent() {
        crate::private_files::create_dir_all(dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
    }
    let mut bytes = [0u8; 48];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let value = hex::encode(bytes);
    let mut file = crate::private_files::create_new(path)
        .with_context(|| format!("Failed to create the JWT secret at {}", path.display()))?;
    file.write_all(value.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("Failed to write the JWT secret at {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "generated a JWT secret for development; set ORDERD_AUTH__JWT_SECRET in production"
    );
    Ok(Secret::new(value))
}
