//! Dead outbox events: the relay gives up after its attempt limit, the admin endpoints list
//! the event and put it back, and the relay then publishes it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderd::configuration::Settings;
use orderd::delivery::queue::{
    OutgoingMessage, Queue, QueueDepth, QueueError, QueueResult, ReceivedMessage, SendReport,
};
use orderd::delivery::relay::{Relay, RelaySettings};
use orderd::domain::{OutboxStatus, Role};
use orderd::startup::{Application, Roles};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::relay_until_idle;

/// A queue whose every send fails, like an unreachable broker.
struct DownQueue;

#[async_trait]
impl Queue for DownQueue {
    async fn send_batch(&self, _: &[OutgoingMessage]) -> QueueResult<SendReport> {
        Err(QueueError::backend(anyhow::anyhow!("connection refused")))
    }
    async fn receive(
        &self,
        _: usize,
        _: Duration,
        _: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str) -> QueueResult<()> {
        Ok(())
    }
    async fn change_visibility(&self, _: &str, _: Duration) -> QueueResult<()> {
        Ok(())
    }
    async fn depth(&self) -> QueueResult<QueueDepth> {
        Ok(QueueDepth::default())
    }
    fn dead_letter_queue(&self) -> Option<Arc<dyn Queue>> {
        None
    }
    fn max_receives(&self) -> Option<u32> {
        None
    }
    fn backend_name(&self) -> &'static str {
        "down"
    }
}

#[tokio::test]
async fn an_event_dead_after_the_attempt_limit_is_listed_and_retried_by_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: dir.path().to_owned(),
        ..Settings::default()
    };
    settings.http.port = 0;
    settings.plugins.cache_dir =
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    let app = Application::build(settings, Roles::parse("api").unwrap())
        .await
        .unwrap();
    let port = app.port();
    let state = app.state().clone();
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));

    // A real order placed through the store, its event failing to publish twice.
    let env = crate::helpers::Env {
        store: state.store.clone(),
        ..crate::helpers::Env::new().await
    };
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 10).await;
    let (_, event) = env.place(&user, &[(&tea, 1)]).await;
    let failing = RelaySettings {
        max_attempts: 2,
        backoff_base_ms: 1,
        backoff_cap_ms: 1,
        ..RelaySettings::default()
    };
    let relay = Relay::new(
        state.store.clone(),
        Arc::new(DownQueue),
        failing,
        env.wake.clone(),
    );
    for _ in 0..2 {
        relay_until_idle(&relay).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        state.store.count_outbox(OutboxStatus::Dead).await.unwrap(),
        1
    );

    // Admin tokens are checked against the store, so the admin must exist there.
    let admin_user = env.customer().await;
    state
        .store
        .set_role(admin_user.id, Role::Admin)
        .await
        .unwrap();
    let version = state
        .store
        .session_state(admin_user.id)
        .await
        .unwrap()
        .unwrap()
        .token_version;
    let admin = state
        .tokens
        .issue_access_versioned(admin_user.id, Role::Admin, version)
        .unwrap()
        .token;
    let customer = state
        .tokens
        .issue_access(user.id, Role::Customer)
        .unwrap()
        .token;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let refused = http
        .get(format!("{base}/api/admin/outbox?status=dead"))
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "customers may not see the outbox");
    let listed: Value = http
        .get(format!("{base}/api/admin/outbox?status=dead"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], event.id.to_hex());
    assert_eq!(listed["items"][0]["attempts"], 2);
    assert!(
        listed["items"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );

    let retried = http
        .post(format!("{base}/api/admin/outbox/{}/retry", event.id))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);
    let again = http
        .post(format!("{base}/api/admin/outbox/{}/retry", event.id))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "only a dead event can be retried");

    // With the queue back, the relay publishes the retried event.
    let queue: Arc<dyn Queue> = env.queue(5).await;
    relay_until_idle(&Relay::new(
        state.store.clone(),
        queue.clone(),
        RelaySettings::default(),
        env.wake.clone(),
    ))
    .await;
    let published = state
        .store
        .list_outbox(OutboxStatus::Published, 10)
        .await
        .unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].id, event.id);
    assert_eq!(queue.depth().await.unwrap().visible, 1);

    stop.cancel();
    server.await.unwrap().unwrap();
}
