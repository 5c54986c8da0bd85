//! The production-like stack (`docker-compose.yml`, `Dockerfile`, the LocalStack init hook),
//! checked without Docker: its structure parsed as YAML, and every `ORDERD_*` variable it gives
//! orderd loaded by the real settings loader, which refuses unknown names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use orderd::configuration::{Mode, Settings, StoreBackend};
use orderd::delivery::queue::{QueueBackend, dead_letter_name};
use orderd::mail::{MailTransportKind, SmtpSecurity};
use serde_norway::Value;

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn compose() -> Value {
    serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is valid YAML")
}

fn service(name: &str) -> Value {
    compose()["services"][name].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The healthcheck command as one string.
fn healthcheck(service: &Value) -> String {
    let test = &service["healthcheck"]["test"];
    test.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| strings(test).join(" "))
}

/// A service's environment, with compose's `${VAR:-default}` taking its default.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let env = service["environment"]
        .as_mapping()
        .expect("environment is a mapping");
    env.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("unexpected environment value {other:?}"),
            };
            (
                k.as_str().expect("string key").to_owned(),
                interpolate(&value),
            )
        })
        .collect()
}

/// A value as compose would interpolate it with an empty environment: `${VAR:-default}` is
/// the default, and a required `${VAR:?message}` (which makes compose refuse to start) is
/// [`REQUIRED`] followed by the variable's name.
fn interpolate(value: &str) -> String {
    match value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(expr) => {
            if let Some((name, _message)) = expr.split_once(":?") {
                return format!("{REQUIRED}{name}");
            }
            expr.split_once(":-")
                .map(|(_, default)| default.to_owned())
                .unwrap_or_default()
        }
        None => value.to_owned(),
    }
}

/// What [`interpolate`] gives for a variable compose refuses to start without.
const REQUIRED: &str = "<required>";

#[test]
fn the_stack_runs_mongodb_localstack_mailpit_and_orderd() {
    let services = compose()["services"]
        .as_mapping()
        .expect("services")
        .clone();
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    for expected in ["mongo", "localstack", "mailpit", "orderd"] {
        assert!(
            names.contains(&expected),
            "missing service {expected}: {names:?}"
        );
    }
    assert!(
        service("mongo")["image"]
            .as_str()
            .unwrap()
            .starts_with("mongo:7")
    );
    assert!(
        service("localstack")["image"]
            .as_str()
            .unwrap()
            .starts_with("localstack/localstack:")
    );
    assert!(
        service("mailpit")["image"]
            .as_str()
            .unwrap()
            .starts_with("axllent/mailpit:")
    );
    assert_eq!(
        service("orderd")["build"]["dockerfile"].as_str(),
        Some("Dockerfile")
    );
}

#[test]
fn mongodb_is_a_replica_set_that_initiates_itself_and_is_healthy_only_as_primary() {
    let mongo = service("mongo");
    let command = strings(&mongo["command"]).join(" ");
    assert!(command.contains("--replSet rs0"), "{command}");
    let check = healthcheck(&mongo);
    assert!(
        check.contains("rs.initiate({_id:'rs0'") && check.contains("host:'mongo:27017'"),
        "{check}"
    );
    assert!(check.contains("isWritablePrimary"), "{check}");
    // The URI orderd uses names the same set and host.
    let uri = &environment(&service("orderd"))["ORDERD_STORE__MONGODB_URI"];
    assert_eq!(uri, "mongodb://mongo:27017/?replicaSet=rs0");
}

#[test]
fn localstack_creates_the_queue_orderd_uses_and_its_dead_letter_queue() {
    let localstack = service("localstack");
    assert!(
        environment(&localstack)["SERVICES"]
            .split(',')
            .any(|s| s.trim() == "sqs")
    );
    assert!(strings(&localstack["ports"]).contains(&"127.0.0.1:4566:4566".to_owned()));
    let mount = strings(&localstack["volumes"])
        .into_iter()
        .find(|v| v.contains("/etc/localstack/init/ready.d/"))
        .expect("an init hook mounted into ready.d");
    let script_path = mount.split(':').next().unwrap().trim_start_matches("./");
    let script = read(script_path);

    let env = environment(&service("orderd"));
    let queue = &env["ORDERD_QUEUE__NAME"];
    assert!(
        script.contains(&format!("QUEUE=\"${{ORDERD_QUEUE_NAME:-{queue}}}\"")),
        "{script}"
    );
    assert_eq!(dead_letter_name(queue), format!("{queue}-dlq"));
    assert!(
        script.contains("DLQ=\"${QUEUE}-dlq\"") && script.contains("RedrivePolicy"),
        "{script}"
    );
    assert!(healthcheck(&localstack).contains(&format!("--queue-name {queue}")));
    assert_eq!(env["ORDERD_QUEUE__ENDPOINT"], "http://localstack:4566");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(repo_file(script_path))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "the init hook must be executable");
    }
}

#[test]
fn mailpit_takes_smtp_on_1025_and_shows_the_inbox_on_8025() {
    let mailpit = service("mailpit");
    let ports = strings(&mailpit["ports"]);
    assert!(
        ports.contains(&"127.0.0.1:1025:1025".to_owned())
            && ports.contains(&"127.0.0.1:8025:8025".to_owned()),
        "{ports:?}"
    );
    assert!(healthcheck(&mailpit).contains("readyz"));
    let env = environment(&service("orderd"));
    assert_eq!(
        (
            env["ORDERD_MAIL__SMTP__HOST"].as_str(),
            env["ORDERD_MAIL__SMTP__PORT"].as_str()
        ),
        ("mailpit", "1025")
    );
}

#[test]
fn orderd_starts_after_every_service_is_healthy_and_serves_port_8000() {
    let orderd = service("orderd");
    for dependency in ["mongo", "localstack", "mailpit"] {
        assert_eq!(
            orderd["depends_on"][dependency]["condition"].as_str(),
            Some("service_healthy"),
            "{dependency}"
        );
    }
    assert!(strings(&orderd["ports"]).contains(&"8000:8000".to_owned()));
    assert!(healthcheck(&orderd).contains("http://127.0.0.1:8000/api/ready"));
}

#[test]
// figment's Jail fixes the closure's (large) error type.
#[allow(clippy::result_large_err)]
fn every_orderd_setting_of_the_stack_is_read_by_the_settings_loader() {
    let env = environment(&service("orderd"));
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (key, value) in &env {
            if key.starts_with("ORDERD_") {
                jail.set_env(key, value);
            }
        }

        // The operator supplies the secret (compose refuses to start without it).
        let secret_var = REQUIRED.to_owned() + "ORDERD_JWT_SECRET";
        for (key, value) in &env {
            if *value == secret_var {
                jail.set_env(key, "5b0c8e2f9a7d4163b8e0f2a4c6d81357");
            }
        }

        let settings = Settings::load(None).expect("the stack's settings load");

        assert_eq!(settings.mode, Mode::Production);
        assert_eq!(
            (settings.http.host.as_str(), settings.http.port),
            ("0.0.0.0", 8000)
        );
        assert_eq!(settings.roles, "api,relay,consumer");
        assert_eq!(settings.queue.backend, QueueBackend::Sqs);
        assert_eq!(settings.store.backend, StoreBackend::Mongodb);
        assert!(settings.store.mongodb_uri.is_some());
        assert_eq!(settings.mail.transport, MailTransportKind::Smtp);
        assert_eq!(settings.mail.smtp.security, SmtpSecurity::Plain);
        // Production mode starts only with a strong signing key the operator supplied.
        settings
            .resolve_jwt_secret()
            .expect("a generated JWT secret is accepted");
        Ok(())
    });
}

#[test]
fn the_image_builds_plugins_and_host_in_a_rust_stage_and_runs_a_slim_one() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].starts_with("FROM rust:1.95") && stages[0].ends_with("AS builder"));
    assert!(stages[1].contains("-slim"), "{}", stages[1]);
    assert!(dockerfile.contains("rustup target add wasm32-wasip2"));
    assert!(dockerfile.contains("cargo build --release"));
    assert!(dockerfile.contains("EXPOSE 8000"));
    let ignored = read(".dockerignore");
    assert!(ignored.lines().any(|l| l.trim() == "target/"), "{ignored}");
}

#[test]
fn the_stack_has_no_default_jwt_secret_and_refuses_to_start_without_one() {
    let orderd = service("orderd");
    let raw = orderd["environment"]["ORDERD_AUTH__JWT_SECRET"]
        .as_str()
        .expect("the JWT secret is set from the environment");
    assert!(
        raw.starts_with("${ORDERD_JWT_SECRET:?") && !raw.contains(":-"),
        "compose must refuse to start without ORDERD_JWT_SECRET, not fall back to a default: {raw}"
    );
    // No secret of any kind is written into the file.
    let text = read("docker-compose.yml");
    assert!(
        !text.contains("change-me"),
        "a placeholder secret is left in the stack"
    );
}

#[test]
fn the_unauthenticated_database_is_not_published_and_tools_listen_on_loopback_only() {
    let mongo = service("mongo");
    assert!(
        mongo["ports"].is_null() && mongo["network_mode"].is_null(),
        "MongoDB runs without authentication, so it must stay inside the compose network: {:?}",
        mongo["ports"]
    );
    for name in ["localstack", "mailpit"] {
        for port in strings(&service(name)["ports"]) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} on every interface"
            );
        }
    }
}

#[test]
// figment's Jail fixes the closure's (large) error type.
#[allow(clippy::result_large_err)]
fn the_stack_in_production_mode_refuses_the_old_published_default_secret() {
    let env = environment(&service("orderd"));
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (key, value) in &env {
            if key.starts_with("ORDERD_") {
                jail.set_env(key, value);
            }
        }
        jail.set_env(
            "ORDERD_AUTH__JWT_SECRET",
            "local-compose-secret-change-me-0123456789abcdef",
        );
        let settings = Settings::load(None).expect("the stack's settings load");
        let err = settings.resolve_jwt_secret().unwrap_err();
        assert!(err.to_string().contains("refuses"), "{err}");
        jail.set_env("ORDERD_AUTH__JWT_SECRET", "a".repeat(40));
        let settings = Settings::load(None).expect("the stack's settings load");
        assert!(settings.resolve_jwt_secret().is_err(), "low entropy");
        Ok(())
    });
}
