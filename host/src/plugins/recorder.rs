//! The per-slot ring of recent real calls: the input each live call of a slot carried and the
//! output its active version answered, for dry runs, replays and the admin API. The ring is
//! bounded by count and by bytes (the oldest calls go first) and personal data is redacted or
//! left out, per [`RecordingSettings`], before anything is kept.
//!
//! Recording sits on the call path, so it is a move of the input, a clone of the output and a
//! short critical section; nothing is serialized except to count the output's bytes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rule_types::{Address, Customer, RenderedEmail};
use serde::Serialize;

use super::call::{PluginInput, PluginOutput, json_size};
use super::contract::Slot;
use super::settings::{PersonalData, RecordingSettings};

/// The e-mail address recorded in place of the customer's.
pub const REDACTED_EMAIL: &str = "redacted@example.invalid";
/// The name recorded in place of the customer's.
pub const REDACTED_NAME: &str = "Redacted";

/// One live call as it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCall {
    /// Increases by one per recorded call of this process, across slots.
    pub seq: u64,
    /// When the call returned.
    pub at: DateTime<Utc>,
    /// Hex sha256 of the version that answered.
    pub sha256: String,
    /// The function called and its input (personal data treated per the settings).
    pub input: PluginInput,
    /// What the active version answered (personal data treated the same way).
    pub output: PluginOutput,
    /// JSON size of input and output as the call saw them, what the byte bound counts.
    #[serde(skip)]
    pub bytes: usize,
}

/// What the recorder holds for one slot, newest last.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// The slot.
    pub slot: Slot,
    /// Most calls kept.
    pub max_calls: usize,
    /// Most bytes kept.
    pub max_bytes: usize,
    /// Bytes held now.
    pub bytes: usize,
    /// How personal data is treated.
    pub personal_data: PersonalData,
    /// The calls, oldest first.
    pub calls: Vec<RecordedCall>,
}

#[derive(Default)]
struct Ring {
    calls: VecDeque<Arc<RecordedCall>>,
    bytes: usize,
}

/// The rings of the three slots.
pub(crate) struct Recorder {
    settings: RecordingSettings,
    seq: AtomicU64,
    rings: [Mutex<Ring>; 3],
}

impl Recorder {
    pub fn new(settings: RecordingSettings) -> Self {
        Self {
            settings,
            seq: AtomicU64::new(0),
            rings: Default::default(),
        }
    }

    /// Whether calls are recorded at all.
    pub fn enabled(&self) -> bool {
        self.settings.inputs_per_slot > 0 && self.settings.max_bytes_per_slot > 0
    }

    /// How personal data is treated (also applied to shadow examples).
    pub fn personal_data(&self) -> PersonalData {
        self.settings.personal_data
    }

    /// Keeps one answered call. `input_bytes` is the input's JSON size, already measured by
    /// the caller for the input cap.
    pub fn record(
        &self,
        slot: Slot,
        sha256: &str,
        mut input: PluginInput,
        input_bytes: usize,
        output: &PluginOutput,
    ) {
        if !self.enabled() {
            return;
        }
        let bytes = input_bytes.saturating_add(json_size(output));
        if bytes > self.settings.max_bytes_per_slot {
            return;
        }
        let mut output = output.clone();
        redact(&mut input, Some(&mut output), self.settings.personal_data);
        let call = Arc::new(RecordedCall {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at: Utc::now(),
            sha256: sha256.to_owned(),
            input,
            output,
            bytes,
        });
        let mut ring = self.rings[slot.index()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ring.bytes += bytes;
        ring.calls.push_back(call);
        while ring.calls.len() > self.settings.inputs_per_slot
            || ring.bytes > self.settings.max_bytes_per_slot
        {
            match ring.calls.pop_front() {
                Some(old) => ring.bytes -= old.bytes,
                None => break,
            }
        }
    }

    /// A copy of what `slot` holds.
    pub fn snapshot(&self, slot: Slot) -> Recording {
        let ring = self.rings[slot.index()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Recording {
            slot,
            max_calls: self.settings.inputs_per_slot,
            max_bytes: self.settings.max_bytes_per_slot,
            bytes: ring.bytes,
            personal_data: self.settings.personal_data,
            calls: ring.calls.iter().map(|c| RecordedCall::clone(c)).collect(),
        }
    }
}

/// The personal values of one input, before treatment, to find them again in its output.
pub(crate) struct Personal {
    mode: PersonalData,
    email: String,
    name: String,
    postal_code: Option<String>,
}

impl Personal {
    /// Treats the same values where an e-mail output repeats them.
    pub fn apply(&self, output: &mut PluginOutput) {
        if let PluginOutput::Email(email) = output {
            let (email_to, name_to) = match self.mode {
                PersonalData::Drop => ("", ""),
                _ => (REDACTED_EMAIL, REDACTED_NAME),
            };
            replace_in(email, &self.email, email_to);
            replace_in(email, &self.name, name_to);
            if let Some(code) = &self.postal_code {
                replace_in(email, code, "");
            }
        }
    }
}

/// Treats the personal data of `input` per `mode`; returns what was there (nothing for
/// [`PersonalData::Keep`]) so outputs can be treated alike.
pub(crate) fn redact_input(input: &mut PluginInput, mode: PersonalData) -> Option<Personal> {
    let (customer, address) = match input {
        PluginInput::Calculate(d) | PluginInput::Validate(d) => {
            (&mut d.customer, &mut d.shipping_address)
        }
        PluginInput::RenderConfirmation(o) | PluginInput::RenderCancellation(o) => {
            (&mut o.customer, &mut o.shipping_address)
        }
    };
    treat(customer, address, mode)
}

/// Treats `input` and, where it repeats the same values, `output`.
pub(crate) fn redact(
    input: &mut PluginInput,
    output: Option<&mut PluginOutput>,
    mode: PersonalData,
) {
    if let (Some(personal), Some(output)) = (redact_input(input, mode), output) {
        personal.apply(output);
    }
}

fn treat(
    customer: &mut Customer,
    address: &mut Option<Address>,
    mode: PersonalData,
) -> Option<Personal> {
    let postal_code = address.as_ref().and_then(|a| a.postal_code.clone());
    let personal = match mode {
        PersonalData::Keep => return None,
        PersonalData::Redact => {
            let email = std::mem::replace(&mut customer.email, REDACTED_EMAIL.to_owned());
            let name = std::mem::replace(&mut customer.name, REDACTED_NAME.to_owned());
            if let Some(a) = address.as_mut() {
                a.postal_code = None;
            }
            Personal {
                mode,
                email,
                name,
                postal_code,
            }
        }
        PersonalData::Drop => {
            *address = None;
            Personal {
                mode,
                email: std::mem::take(&mut customer.email),
                name: std::mem::take(&mut customer.name),
                postal_code,
            }
        }
    };
    Some(personal)
}

/// Replaces `from` (as written and HTML-escaped) in every part of `email`. Empty or very short
/// values are left alone: replacing them would rewrite unrelated text.
fn replace_in(email: &mut RenderedEmail, from: &str, to: &str) {
    if from.trim().chars().count() < 2 {
        return;
    }
    let escaped = order_email::escape_html(from);
    for part in [&mut email.subject, &mut email.html, &mut email.text] {
        if part.contains(from) {
            *part = part.replace(from, to);
        }
        if escaped != from && part.contains(&escaped) {
            *part = part.replace(&escaped, &order_email::escape_html(to));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::fixtures;

    fn email_of(order: &rule_types::StoredOrder) -> PluginOutput {
        PluginOutput::Email(RenderedEmail {
            subject: format!("Thanks, {}", order.customer.name),
            html: format!(
                "<p>{} &lt;{}&gt;</p>",
                order.customer.name, order.customer.email
            ),
            text: format!("Sent to {}", order.customer.email),
        })
    }

    #[test]
    fn redaction_replaces_the_customer_in_the_input_and_in_the_rendered_email() {
        let order = fixtures::stored_order();
        let mut output = email_of(&order);
        let mut input = PluginInput::RenderConfirmation(order);
        redact(&mut input, Some(&mut output), PersonalData::Redact);
        let PluginInput::RenderConfirmation(order) = &input else {
            unreachable!()
        };
        assert_eq!(order.customer.email, REDACTED_EMAIL);
        assert_eq!(order.customer.name, REDACTED_NAME);
        let address = order.shipping_address.as_ref().unwrap();
        assert_eq!(
            (address.country.as_str(), address.postal_code.as_deref()),
            ("IN", None)
        );
        let text = serde_json::to_string(&output).unwrap();
        assert!(!text.contains("asha"), "{text}");
        assert!(text.contains(REDACTED_EMAIL), "{text}");
    }

    #[test]
    fn dropping_leaves_out_the_customer_and_the_address_and_keeping_changes_nothing() {
        let mut dropped = PluginInput::Calculate(fixtures::draft());
        redact(&mut dropped, None, PersonalData::Drop);
        let PluginInput::Calculate(draft) = &dropped else {
            unreachable!()
        };
        assert_eq!(
            (draft.customer.email.as_str(), draft.customer.name.as_str()),
            ("", "")
        );
        assert!(draft.shipping_address.is_none());

        let mut kept = PluginInput::Calculate(fixtures::draft());
        redact(&mut kept, None, PersonalData::Keep);
        assert_eq!(kept, PluginInput::Calculate(fixtures::draft()));
    }

    #[test]
    fn the_ring_keeps_the_newest_calls_within_its_count_and_byte_bounds() {
        let recorder = Recorder::new(RecordingSettings {
            inputs_per_slot: 3,
            ..RecordingSettings::default()
        });
        let output = PluginOutput::Violations(vec![]);
        for _ in 0..5 {
            recorder.record(
                Slot::Validation,
                "ab",
                PluginInput::Validate(fixtures::draft()),
                100,
                &output,
            );
        }
        let recording = recorder.snapshot(Slot::Validation);
        let seqs: Vec<u64> = recording.calls.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert!(recorder.snapshot(Slot::Tax).calls.is_empty());

        let small = Recorder::new(RecordingSettings {
            max_bytes_per_slot: 250,
            ..RecordingSettings::default()
        });
        for _ in 0..5 {
            small.record(
                Slot::Validation,
                "ab",
                PluginInput::Validate(fixtures::draft()),
                100,
                &output,
            );
        }
        let recording = small.snapshot(Slot::Validation);
        assert_eq!(
            recording.calls.len(),
            2,
            "two calls of 102 bytes fit in 250"
        );
        assert!(recording.bytes <= 250);
    }
}
