//! The end-of-scenario checks: every acknowledged order reaches `processed`; every order has
//! exactly one confirmation e-mail (counted per order id from the delivered messages, and per
//! Message-ID so a duplicate delivery of one event shows); stock adds up with the orders
//! stored.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;

use crate::load::Fixture;

/// What became of the acknowledged orders.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Orders answered with 201.
    pub acked: usize,
    /// Of those, `processed` at the end.
    pub processed: usize,
    /// Of those, `failed` at the end.
    pub failed: usize,
    /// Of those, not found at all (a lost commit).
    pub missing: usize,
    /// Of those, still pending/processing when the wait ended.
    pub stuck: usize,
    /// Messages delivered (files), all orders.
    pub messages: usize,
    /// Acknowledged orders without any e-mail.
    pub without_email: usize,
    /// Duplicate e-mails: per order, distinct Message-IDs beyond the first (a second e-mail
    /// that no mail system could recognise as a repeat).
    pub duplicates: usize,
    /// Repeated deliveries of one Message-ID: the documented crash window (the process died
    /// after the SMTP server accepted the message, before the send was recorded). A mail
    /// system that drops repeated Message-IDs shows the customer one e-mail.
    pub redeliveries: usize,
    /// Acknowledged orders that did not end processed with an e-mail.
    pub lost: usize,
}

impl Verdict {
    /// Prints the counts with their goals.
    pub fn print(&self, label: &str) {
        println!(
            "  {label}: acknowledged {}, processed {}, failed {}, missing {}, not yet processed {}",
            self.acked, self.processed, self.failed, self.missing, self.stuck
        );
        println!(
            "  {label}: e-mails {} ({} orders without one), duplicate e-mails {} (goal 0), same Message-ID delivered again {}, lost {} (goal 0)  {}",
            self.messages,
            self.without_email,
            self.duplicates,
            self.redeliveries,
            self.lost,
            if self.duplicates == 0 && self.lost == 0 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

/// Waits up to `limit` for every order in `acked` to leave `pending`/`processing`, then
/// counts outcomes and the e-mails in `mail_dir` (a `.eml` directory or a Maildir's `new/`).
pub async fn verify(
    fixture: &Fixture,
    acked: &[String],
    mail_dir: &Path,
    limit: Duration,
) -> anyhow::Result<Verdict> {
    let statuses = final_statuses(fixture, acked, limit).await;
    let mut verdict = Verdict {
        acked: acked.len(),
        ..Verdict::default()
    };
    for status in statuses.values() {
        if status.as_deref() != Some("processed") {
            verdict.lost += 1;
        }
        match status.as_deref() {
            Some("processed") => verdict.processed += 1,
            Some("failed") => verdict.failed += 1,
            None => verdict.missing += 1,
            Some(_) => verdict.stuck += 1,
        }
    }
    let known: HashSet<&str> = acked.iter().map(String::as_str).collect();
    let mail = count_mail(mail_dir, &known)?;
    verdict.messages = mail.messages;
    for id in acked {
        match mail.per_order.get(id.as_str()) {
            None => {
                verdict.without_email += 1;
                if statuses
                    .get(id)
                    .is_some_and(|s| s.as_deref() == Some("processed"))
                {
                    verdict.lost += 1;
                }
            }
            Some(mail) => {
                verdict.duplicates += mail.message_ids.len().saturating_sub(1);
                verdict.redeliveries += mail.deliveries - mail.message_ids.len();
            }
        }
    }
    Ok(verdict)
}

/// The status of each order once none is pending or processing any more (or `limit`
/// passed); `None` for an order that does not exist.
async fn final_statuses(
    fixture: &Fixture,
    ids: &[String],
    limit: Duration,
) -> HashMap<String, Option<String>> {
    let deadline = Instant::now() + limit;
    let mut done = HashMap::new();
    let mut open: Vec<String> = ids.to_vec();
    loop {
        let round: Vec<(String, Option<Option<String>>)> = futures::stream::iter(open.clone())
            .map(|id| async move {
                let status = match fixture.api.order(&fixture.admin, &id).await {
                    Ok(found) => Some(found.map(|o| o.status)),
                    Err(_) => None,
                };
                (id, status)
            })
            .buffer_unordered(32)
            .collect()
            .await;
        open.clear();
        for (id, status) in round {
            match status {
                Some(Some(s)) if s == "pending" || s == "processing" => {
                    if Instant::now() > deadline {
                        done.insert(id, Some(s));
                    } else {
                        open.push(id);
                    }
                }
                Some(s) => {
                    done.insert(id, s);
                }
                None => open.push(id),
            }
        }
        if open.is_empty() || Instant::now() > deadline {
            for id in open {
                done.insert(id, Some("pending".to_owned()));
            }
            return done;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Delivered e-mails: how many messages, and per order id what was delivered.
#[derive(Debug, Default)]
pub struct MailCount {
    pub messages: usize,
    /// Order id → the e-mails naming it.
    pub per_order: HashMap<String, OrderMail>,
}

/// The e-mails of one order.
#[derive(Debug, Default)]
pub struct OrderMail {
    /// Messages delivered.
    pub deliveries: usize,
    /// Their distinct Message-IDs.
    pub message_ids: HashSet<String>,
}

/// Reads every message file in `dir` and attributes each to the known order id its Subject
/// (or, failing that, its text) names.
pub fn count_mail(dir: &Path, known: &HashSet<&str>) -> anyhow::Result<MailCount> {
    let mut count = MailCount::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(count);
    };
    for entry in entries {
        let path = entry.context("Failed to list the mail directory")?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() || name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        count.messages += 1;
        let subject = header(&text, "subject").unwrap_or_default();
        let mut ids: Vec<String> = hex_ids(&subject)
            .into_iter()
            .filter(|id| known.contains(id.as_str()))
            .collect();
        if ids.is_empty() {
            ids = hex_ids(&text)
                .into_iter()
                .filter(|id| known.contains(id.as_str()))
                .collect();
            ids.sort();
            ids.dedup();
        }
        let message_id = header(&text, "message-id").unwrap_or_else(|| name.clone());
        if let Some(id) = ids.into_iter().next() {
            let mail = count.per_order.entry(id).or_default();
            mail.deliveries += 1;
            mail.message_ids.insert(message_id);
        }
    }
    Ok(count)
}

/// The value of header `name` (case-insensitive), unfolded.
fn header(message: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in message.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim_start());
                continue;
            }
            break;
        }
        if let Some((key, rest)) = line.split_once(':')
            && key.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_owned());
        }
    }
    value
}

/// Every run of exactly 24 lower-case hex digits in `text`.
fn hex_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        let hex = b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        match (hex, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s == 24 {
                    out.push(text[s..i].to_owned());
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Stock check: for every product, stock taken (initial − now) equals the units of it in all
/// stored orders of the fixture's customers (acknowledged or not). Returns the mismatches
/// and the number of stored orders.
pub async fn stock_mismatches(
    fixture: &Fixture,
    initial: i64,
) -> anyhow::Result<(Vec<String>, usize)> {
    let mut units: HashMap<String, i64> = HashMap::new();
    let mut orders = 0;
    for customer in fixture.customers.iter() {
        let mut cursor: Option<String> = None;
        loop {
            let mut url = fixture.api.url("/api/orders?limit=100");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = fixture
                .api
                .http
                .get(url)
                .bearer_auth(&customer.token)
                .send()
                .await?
                .json()
                .await?;
            for order in page["items"]
                .as_array()
                .context("the order page has no items")?
            {
                orders += 1;
                for item in order["items"].as_array().into_iter().flatten() {
                    let id = item["productId"].as_str().unwrap_or_default().to_owned();
                    *units.entry(id).or_default() += item["quantity"].as_i64().unwrap_or(0);
                }
            }
            cursor = page["nextCursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
    }
    let mut mismatches = Vec::new();
    for id in fixture.products.iter() {
        let product: Value = fixture
            .api
            .http
            .get(fixture.api.url(&format!("/api/products/{id}")))
            .send()
            .await?
            .json()
            .await?;
        let taken = initial
            - product["stock"]
                .as_i64()
                .context("the product has no stock")?;
        let ordered = units.get(id).copied().unwrap_or(0);
        if taken != ordered {
            mismatches.push(format!("{id}: stock taken {taken}, ordered {ordered}"));
        }
    }
    Ok((mismatches, orders))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_found_in_a_folded_subject() {
        let msg = "From: a@b.c\r\nSubject: orderd: Your order\r\n 65f0c0ffee0000000000abcd is confirmed\r\nMessage-ID: <x@orderd>\r\n\r\nbody 65f0c0ffee0000000000ffff";
        let subject = header(msg, "Subject").unwrap();
        assert_eq!(
            hex_ids(&subject),
            vec!["65f0c0ffee0000000000abcd".to_owned()]
        );
    }

    #[test]
    fn longer_or_shorter_hex_runs_are_not_ids() {
        assert!(hex_ids("65f0c0ffee0000000000abcd0 65f0c0ffee0000000000abc").is_empty());
        assert_eq!(
            hex_ids("id=65f0c0ffee0000000000abcd."),
            vec!["65f0c0ffee0000000000abcd".to_owned()]
        );
    }
}
