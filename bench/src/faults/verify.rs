//! The end-of-scenario checks: every acknowledged order reaches `processed`; every order has
//! exactly one confirmation e-mail, counted per order id from the delivered messages two ways —
//! distinct Message-IDs (a second, different e-mail) and deliveries in all (the same e-mail
//! delivered twice counts too, where the mail sink keeps every delivery); stock adds up with
//! the orders stored.

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
    /// Acknowledged orders with more than one distinct e-mail (distinct Message-IDs): a
    /// second e-mail no mail system could recognise as a repeat.
    pub orders_with_duplicates: usize,
    /// Those extra distinct e-mails, over all orders (distinct Message-IDs beyond the first).
    pub duplicates: usize,
    /// Acknowledged orders delivered more than once in total, a repeat of the same
    /// Message-ID included (the documented crash window: the process died after the SMTP
    /// server accepted the message, before the send was recorded). `None` when the mail sink
    /// keeps one file per Message-ID, so a repeat cannot be seen.
    pub orders_delivered_again: Option<usize>,
    /// Deliveries beyond the first, over all orders (`None` as above).
    pub extra_deliveries: Option<usize>,
    /// Acknowledged orders that did not end processed with an e-mail.
    pub lost: usize,
}

impl Verdict {
    /// Whether every goal was met: nothing lost, no order with a second distinct e-mail, and
    /// (where deliveries can be counted) no order delivered twice.
    pub fn met(&self) -> bool {
        self.lost == 0
            && self.orders_with_duplicates == 0
            && self.orders_delivered_again.unwrap_or(0) == 0
    }

    /// Prints the counts with their goals.
    pub fn print(&self, label: &str) {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  {label}: acknowledged {}, processed {}, failed {}, missing {}, not yet processed {}",
            self.acked, self.processed, self.failed, self.missing, self.stuck
        );
        println!(
            "  {label}: e-mails delivered {} ({} orders without one); lost {} (goal 0) {}",
            self.messages,
            self.without_email,
            self.lost,
            verdict(self.lost == 0)
        );
        println!(
            "  {label}: orders with >1 distinct e-mail (Message-ID) {} ({} extra e-mails) (goal 0) {}",
            self.orders_with_duplicates,
            self.duplicates,
            verdict(self.orders_with_duplicates == 0)
        );
        match (self.orders_delivered_again, self.extra_deliveries) {
            (Some(orders), Some(extra)) => println!(
                "  {label}: orders with >1 delivery in all, same Message-ID included {orders} ({extra} extra deliveries) (goal 0) {}",
                verdict(orders == 0)
            ),
            _ => println!(
                "  {label}: orders with >1 delivery in all: not countable here (the file transport keeps one file per Message-ID, so a repeat overwrites the first)"
            ),
        }
    }
}

/// Waits up to `limit` for every order in `acked` to leave `pending`/`processing`, then
/// counts outcomes and the e-mails in `mail_dir` (a `.eml` directory or a Maildir's `new/`).
/// `every_delivery_kept` says whether the directory holds one file per delivery (a Maildir
/// written by an SMTP sink) rather than one per Message-ID (the file transport).
pub async fn verify(
    fixture: &Fixture,
    acked: &[String],
    mail_dir: &Path,
    every_delivery_kept: bool,
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
    let (mut delivered_again, mut extra_deliveries) = (0, 0);
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
                if mail.message_ids.len() > 1 {
                    verdict.orders_with_duplicates += 1;
                    verdict.duplicates += mail.message_ids.len() - 1;
                }
                if mail.deliveries > 1 {
                    delivered_again += 1;
                    extra_deliveries += mail.deliveries - 1;
                }
            }
        }
    }
    if every_delivery_kept {
        verdict.orders_delivered_again = Some(delivered_again);
        verdict.extra_deliveries = Some(extra_deliveries);
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
