//! The rule interface the order service calls, [`RuleProvider`], and its native
//! implementation: the default plugins' logic compiled into the host as plain Rust. The
//! benchmarks use it to price the WebAssembly sandbox; it applies no sandbox, no limits and no
//! output checks, so it is not a substitute for [`PluginRuntime`] in production.

use async_trait::async_trait;
use rule_types::{Config, OrderDraft, RenderedEmail, StoredOrder, TaxBreakdown, Violation};

use super::contract::Slot;
use super::error::{FailureKind, PluginCallError};
use super::runtime::PluginRuntime;

/// The business rules of order processing, whatever runs them.
#[async_trait]
pub trait RuleProvider: Send + Sync {
    /// Tax of `draft`.
    async fn calculate_tax(&self, draft: &OrderDraft) -> Result<TaxBreakdown, PluginCallError>;
    /// Violations of `draft` (empty = valid).
    async fn validate(&self, draft: &OrderDraft) -> Result<Vec<Violation>, PluginCallError>;
    /// The confirmation e-mail for `order`.
    async fn render_confirmation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError>;
    /// The cancellation e-mail for `order`.
    async fn render_cancellation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError>;
    /// The largest input, as JSON bytes, `slot` accepts (`None`: no limit).
    fn input_cap_bytes(&self, _slot: Slot) -> Option<usize> {
        None
    }
}

#[async_trait]
impl RuleProvider for PluginRuntime {
    async fn calculate_tax(&self, draft: &OrderDraft) -> Result<TaxBreakdown, PluginCallError> {
        PluginRuntime::calculate_tax(self, draft).await
    }

    async fn validate(&self, draft: &OrderDraft) -> Result<Vec<Violation>, PluginCallError> {
        PluginRuntime::validate(self, draft).await
    }

    async fn render_confirmation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError> {
        PluginRuntime::render_confirmation(self, order).await
    }

    async fn render_cancellation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError> {
        PluginRuntime::render_cancellation(self, order).await
    }

    fn input_cap_bytes(&self, _slot: Slot) -> Option<usize> {
        Some(self.settings().input_cap_bytes)
    }
}

/// The default rules (`gst-tax`, `order-limits`, `order-email`) called natively.
#[derive(Debug, Clone, Default)]
pub struct NativeRules {
    /// Config of the tax rule.
    pub tax_config: Config,
    /// Config of the validation rule.
    pub validation_config: Config,
    /// Config of the e-mail rule.
    pub email_config: Config,
}

/// Maps a rule's own error to the error a plugin returning it would give.
fn guest_error(slot: Slot, e: rule_types::PluginError) -> PluginCallError {
    PluginCallError::Unavailable {
        slot,
        version: "native".into(),
        message: format!("{}: {}", e.code, e.message),
        kind: FailureKind::PluginError {
            code: e.code,
            message: e.message,
        },
    }
}

#[async_trait]
impl RuleProvider for NativeRules {
    async fn calculate_tax(&self, draft: &OrderDraft) -> Result<TaxBreakdown, PluginCallError> {
        gst_tax::calculate(draft, &self.tax_config).map_err(|e| guest_error(Slot::Tax, e))
    }

    async fn validate(&self, draft: &OrderDraft) -> Result<Vec<Violation>, PluginCallError> {
        order_limits::validate(draft, &self.validation_config)
            .map_err(|e| guest_error(Slot::Validation, e))
    }

    async fn render_confirmation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError> {
        order_email::render_confirmation(order, &self.email_config)
            .map_err(|e| guest_error(Slot::Email, e))
    }

    async fn render_cancellation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError> {
        order_email::render_cancellation(order, &self.email_config)
            .map_err(|e| guest_error(Slot::Email, e))
    }
}
