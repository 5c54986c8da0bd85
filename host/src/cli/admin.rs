//! `orderd admin create --email … --password … [--username …]`: creates an admin account in the
//! configured store, or promotes the existing account with that e-mail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};

use crate::auth::PasswordHasher;
use crate::configuration::Settings;
use crate::domain::{Email, Id, Password, Role, User, Username};
use crate::startup::open_store;
use crate::storage::{Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account, or promote the account with this e-mail to admin.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// E-mail address of the account.
    #[arg(long)]
    pub email: String,
    /// Password of a new account (8–128 characters); an existing account keeps its password.
    #[arg(long)]
    pub password: String,
    /// Username of a new account; derived from the e-mail when omitted.
    #[arg(long)]
    pub username: Option<String>,
    /// Settings file (TOML); `ORDERD_CONFIG` also names one.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl AdminCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            AdminCommand::Create(args) => args.run(),
        }
    }
}

/// What [`ensure_admin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new admin account was created.
    Created(Id),
    /// An existing customer account was made an admin.
    Promoted(Id),
    /// The account already was an admin; nothing changed.
    AlreadyAdmin(Id),
}

/// A username from the local part of `email`: `[a-z0-9_]` only, padded to 3 characters.
fn username_from_email(email: &Email) -> String {
    let local = email.as_str().split('@').next().unwrap_or("");
    let mut name: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    while name.chars().count() < 3 {
        name.push('_');
    }
    name
}

/// Creates an admin with `email`/`password`, or promotes the existing account with `email`.
pub async fn ensure_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
    username: Option<&str>,
) -> anyhow::Result<AdminOutcome> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    if let Some(user) = store
        .user_by_email(email.as_str())
        .await
        .context("Failed to look up the account")?
    {
        if user.role == Role::Admin {
            return Ok(AdminOutcome::AlreadyAdmin(user.id));
        }
        store
            .set_role(user.id, Role::Admin)
            .await
            .context("Failed to promote the account")?;
        return Ok(AdminOutcome::Promoted(user.id));
    }
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("--password {e}"))?;
    let username = match username {
        Some(name) => Username::parse(name).map_err(|e| anyhow::anyhow!("--username {e}"))?,
        None => Username::parse(&username_from_email(&email)).map_err(|e| {
            anyhow::anyhow!("could not derive a username from the e-mail ({e}); pass --username")
        })?,
    };
    let user = User {
        id: Id::new(),
        username,
        email,
        password_hash: hasher.hash(&password).await?,
        role: Role::Admin,
        created_at: Utc::now(),
    };
    match store.create_user(&user).await {
        Ok(()) => Ok(AdminOutcome::Created(user.id)),
        Err(StoreError::Conflict(field)) => {
            bail!("an account with this {field} already exists; pass another --username")
        }
        Err(err) => Err(err).context("Failed to create the account"),
    }
}

impl CreateArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let settings = Settings::load(self.config.as_deref())?;
        crate::telemetry::init(&settings.log);
        let runtime =
            tokio::runtime::Runtime::new().context("Failed to start the async runtime")?;
        runtime.block_on(async {
            let store = open_store(&settings).await?;
            let hasher = PasswordHasher::new(1)?;
            let outcome = ensure_admin(
                store.as_ref(),
                &hasher,
                &self.email,
                &self.password,
                self.username.as_deref(),
            )
            .await?;
            match outcome {
                AdminOutcome::Created(id) => println!(
                    "created admin {} (id {id})",
                    self.email.trim().to_lowercase()
                ),
                AdminOutcome::Promoted(id) => println!(
                    "promoted {} (id {id}) to admin; its password is unchanged",
                    self.email.trim().to_lowercase()
                ),
                AdminOutcome::AlreadyAdmin(id) => println!(
                    "{} (id {id}) already is an admin",
                    self.email.trim().to_lowercase()
                ),
            }
            Ok::<_, anyhow::Error>(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_derived_from_emails_are_valid() {
        for email in [
            "Ada.Lovelace+shop@example.com",
            "a@example.com",
            "ünï@example.com",
        ] {
            let email = Email::parse_known(email).unwrap();
            let name = username_from_email(&email);
            assert!(Username::parse(&name).is_ok(), "{email:?} -> {name}");
        }
    }
}
