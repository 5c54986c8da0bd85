//! `orderd admin create --email … --password … [--username …] [--promote-existing]`: creates
//! an admin account in the configured store.
//!
//! Registration is open and unverified, so an account with the admin's e-mail may have been
//! registered by anyone. Such an account is therefore never promoted unless the operator asks
//! with `--promote-existing`; it then keeps the password its holder set (the `--password`
//! given is not used), and the command says so. `orderd admin demote --email …` makes an
//! admin a customer again and ends every session of the account at once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};

use crate::auth::PasswordHasher;
use crate::configuration::Settings;
use crate::domain::{Email, Id, Password, Role, User, Username};
use crate::startup::open_store;
use crate::storage::{Conflict, Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account (or, with --promote-existing, promote the account with this
    /// e-mail).
    Create(CreateArgs),
    /// Make an admin a customer again and sign the account out everywhere at once.
    Demote(DemoteArgs),
}

#[derive(Debug, Args)]
pub struct DemoteArgs {
    /// E-mail address of the account.
    #[arg(long)]
    pub email: String,
    /// Settings file (TOML); `ORDERD_CONFIG` also names one.
    #[arg(long)]
    pub config: Option<PathBuf>,
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
    /// When an account with this e-mail exists, make it an admin. It keeps the password its
    /// holder set, which is then not --password: only use this for an account you know.
    #[arg(long)]
    pub promote_existing: bool,
    /// Settings file (TOML); `ORDERD_CONFIG` also names one.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl AdminCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            AdminCommand::Create(args) => args.run(),
            AdminCommand::Demote(args) => args.run(),
        }
    }
}

/// What [`ensure_admin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new admin account was created.
    Created(Id),
    /// An existing customer account was made an admin (only with `promote_existing`); it
    /// keeps its own password.
    Promoted(Id),
    /// The account already was an admin; nothing changed.
    AlreadyAdmin(Id),
    /// A customer account has this e-mail and promotion was not asked for; nothing changed.
    ExistsNotPromoted(Id),
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

/// Creates an admin with `email`/`password`. An existing customer account with `email` is
/// promoted only when `promote_existing` (keeping its password), else left alone
/// ([`AdminOutcome::ExistsNotPromoted`]).
pub async fn ensure_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
    username: Option<&str>,
    promote_existing: bool,
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
        if !promote_existing {
            return Ok(AdminOutcome::ExistsNotPromoted(user.id));
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
        Err(StoreError::Conflict(Conflict::Taken(field))) => {
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
                self.promote_existing,
            )
            .await?;
            let email = self.email.trim().to_lowercase();
            match outcome {
                AdminOutcome::Created(id) => println!("created admin {email} (id {id})"),
                AdminOutcome::Promoted(id) => println!(
                    "promoted the existing account {email} (id {id}) to admin; it keeps the \
                     password its holder set: the --password given was NOT applied"
                ),
                AdminOutcome::AlreadyAdmin(id) => {
                    println!("{email} (id {id}) already is an admin; nothing changed")
                }
                AdminOutcome::ExistsNotPromoted(id) => {
                    eprintln!(
                        "refused: a customer account {email} (id {id}) already exists. Anyone \
                         can register any e-mail, so it is not made an admin unless you pass \
                         --promote-existing (it would keep its holder's password, not --password)"
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
            Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
        })
    }
}

impl DemoteArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let settings = Settings::load(self.config.as_deref())?;
        crate::telemetry::init(&settings.log);
        let runtime =
            tokio::runtime::Runtime::new().context("Failed to start the async runtime")?;
        runtime.block_on(async {
            let store = open_store(&settings).await?;
            let email = Email::parse(&self.email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
            let Some(user) = store
                .user_by_email(email.as_str())
                .await
                .context("Failed to look up the account")?
            else {
                eprintln!("no account {}", email.as_str());
                return Ok(ExitCode::FAILURE);
            };
            store
                .set_role(user.id, Role::Customer)
                .await
                .context("Failed to demote the account")?;
            store
                .end_sessions(user.id, Utc::now())
                .await
                .context("Failed to end the account's sessions")?;
            println!(
                "{} (id {}) is a customer now; every token it held is refused from now on",
                email.as_str(),
                user.id
            );
            Ok(ExitCode::SUCCESS)
        })
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
