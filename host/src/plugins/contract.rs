//! The plugin contract types the rest of the system speaks: the rule [`Slot`]s, what a failed
//! call does ([`FailurePolicy`]) and where a version came from ([`PluginSource`]). Settings,
//! services and HTTP use them; they depend on nothing of the runtime.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A place in order processing where a plugin decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Computes the tax of an order draft (`tax-rules` world).
    Tax,
    /// Accepts or refuses an order draft (`order-validation` world).
    Validation,
    /// Renders customer e-mails about an order (`email-render` world).
    Email,
}

impl Slot {
    /// Every slot, in a stable order.
    pub const ALL: [Slot; 3] = [Slot::Tax, Slot::Validation, Slot::Email];

    /// The lower-case name used in file names, URLs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Tax => "tax",
            Slot::Validation => "validation",
            Slot::Email => "email",
        }
    }

    /// The WIT world a plugin for this slot implements.
    pub fn world(self) -> &'static str {
        match self {
            Slot::Tax => "tax-rules",
            Slot::Validation => "order-validation",
            Slot::Email => "email-render",
        }
    }

    /// The exported interface, fully qualified.
    pub fn interface(self) -> &'static str {
        match self {
            Slot::Tax => "shop:rules/tax@0.1.0",
            Slot::Validation => "shop:rules/validation@0.1.0",
            Slot::Email => "shop:rules/email@0.1.0",
        }
    }

    /// The functions the interface must export.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Slot::Tax => &["calculate"],
            Slot::Validation => &["validate"],
            Slot::Email => &["render-confirmation", "render-cancellation"],
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Slot {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slot::ALL
            .into_iter()
            .find(|slot| slot.as_str() == s)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown slot `{s}` (expected tax, validation or email)")
            })
    }
}

/// What a failed plugin call does; set per slot by the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The call fails and the request with it (a 503 for the client).
    #[default]
    FailClosed,
    /// The call is retried on the previous good version, else on the embedded default.
    Fallback,
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailurePolicy::FailClosed => "fail-closed",
            FailurePolicy::Fallback => "fallback",
        })
    }
}

/// Where a plugin version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PluginSource {
    /// Built into the `orderd` binary.
    Embedded,
    /// Read from a file (the watched plugins directory, or a path given by the operator).
    File {
        /// The file it was read from.
        path: PathBuf,
    },
    /// Uploaded through the admin API and stored under this id.
    Upload {
        /// The stored version's id.
        version_id: String,
    },
}
