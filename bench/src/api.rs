//! A thin client of the orderd HTTP API for the load: sign-up and sign-in, catalog set-up,
//! placing and reading orders, uploading a plugin. One keep-alive connection pool is shared by
//! every simulated client, as a load balancer in front of the service would hold.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::{ADMIN_EMAIL, ADMIN_PASSWORD};

/// The HTTP client and the service's base URL.
#[derive(Clone)]
pub struct Api {
    /// Pooled keep-alive client.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// A signed-in customer of the load.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Bearer access token.
    pub token: String,
    /// The e-mail it signs in with (login load).
    pub email: String,
}

/// Password of every customer the load registers.
pub const CUSTOMER_PASSWORD: &str = "bench-customer-pw";

/// The fields of an order the measurements read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub status: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub processed_at: Option<DateTime<Utc>>,
}

impl Api {
    /// A client for `base` with a pool sized for `clients` concurrent users.
    pub fn new(base: &str, clients: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(1) * 2)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("Failed to build the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .context("Failed to send a login")?;
        let status = resp.status();
        let body: Value = resp.json().await.context("Failed to read a login answer")?;
        if !status.is_success() {
            bail!("login of {email} answered {status}: {body}");
        }
        body["accessToken"]
            .as_str()
            .map(str::to_owned)
            .context("the login answer has no accessToken")
    }

    /// The benchmark admin's token (the account is created before the server starts).
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Registers `count` customers (names prefixed by `tag`) and signs them in, a few at a
    /// time (each costs two argon2id hashes on the server).
    pub async fn customers(&self, tag: &str, count: usize) -> anyhow::Result<Vec<Customer>> {
        let mut out = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(4) {
            let batch = chunk.iter().map(|i| self.customer(format!("{tag}_{i}")));
            for customer in futures::future::join_all(batch).await {
                out.push(customer?);
            }
        }
        Ok(out)
    }

    async fn customer(&self, username: String) -> anyhow::Result<Customer> {
        let email = format!("{username}@bench.example.com");
        let resp = self
            .http
            .post(self.url("/api/auth/register"))
            .json(&json!({ "username": username, "email": email, "password": CUSTOMER_PASSWORD }))
            .send()
            .await
            .context("Failed to send a registration")?;
        if !resp.status().is_success() {
            let status = resp.status();
            bail!(
                "registering {username} answered {status}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
        let token = self.login(&email, CUSTOMER_PASSWORD).await?;
        Ok(Customer { token, email })
    }

    /// Creates `count` products with practically unlimited stock; returns their ids.
    pub async fn catalog(
        &self,
        admin: &str,
        tag: &str,
        count: usize,
    ) -> anyhow::Result<Vec<String>> {
        let categories = ["essentials", "stationery", "electronics", "general"];
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let body = json!({
                "name": format!("Bench product {i}"),
                "sku": format!("BENCH-{tag}-{i}"),
                "category": categories[i % categories.len()],
                "price": 10_000 + 1_000 * i as i64,
                "currency": "INR",
                "stock": 1_000_000_000i64,
            });
            let resp = self
                .http
                .post(self.url("/api/products"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .context("Failed to create a product")?;
            let status = resp.status();
            let value: Value = resp.json().await.context("Failed to read a product")?;
            if !status.is_success() {
                bail!("creating a product answered {status}: {value}");
            }
            ids.push(
                value["id"]
                    .as_str()
                    .context("the product has no id")?
                    .to_owned(),
            );
        }
        Ok(ids)
    }

    /// A random order body: 1–3 distinct products, 1–3 units each.
    pub fn order_body(products: &[String]) -> Value {
        let mut rng = rand::thread_rng();
        let lines = rng.gen_range(1..=3.min(products.len()));
        let items: Vec<Value> = products
            .choose_multiple(&mut rng, lines)
            .map(|id| json!({ "productId": id, "quantity": rng.gen_range(1..=3) }))
            .collect();
        json!({ "items": items })
    }

    /// `POST /api/orders`: the status and, on 201, the order id.
    pub async fn place_order(
        &self,
        token: &str,
        body: &Value,
    ) -> Result<(u16, Option<String>), reqwest::Error> {
        let resp = self
            .http
            .post(self.url("/api/orders"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        if status == 201 {
            let value: Value = resp.json().await?;
            Ok((status, value["id"].as_str().map(str::to_owned)))
        } else {
            // Drain the body so the connection goes back to the pool.
            let _ = resp.bytes().await?;
            Ok((status, None))
        }
    }

    /// `GET /api/orders/{id}` (admins may read every order); `None` if it does not exist.
    pub async fn order(&self, token: &str, id: &str) -> anyhow::Result<Option<OrderView>> {
        let resp = self
            .http
            .get(self.url(&format!("/api/orders/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .context("Failed to read an order")?;
        match resp.status().as_u16() {
            200 => Ok(Some(resp.json().await.context("Failed to parse an order")?)),
            404 => Ok(None),
            status => bail!("reading order {id} answered {status}"),
        }
    }

    /// `PUT /api/admin/plugins/{slot}` with a component; the status.
    pub async fn upload_plugin(
        &self,
        admin: &str,
        slot: &str,
        wasm: Vec<u8>,
    ) -> Result<u16, reqwest::Error> {
        let resp = self
            .http
            .put(self.url(&format!("/api/admin/plugins/{slot}")))
            .bearer_auth(admin)
            .header("content-type", "application/wasm")
            .body(wasm)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let _ = resp.bytes().await?;
        Ok(status)
    }
}
