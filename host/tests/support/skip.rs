//! Reporting a test that cannot run here, by name and reason, where it cannot be missed.
//!
//! A test that needs a service this machine lacks returns early through [`skip`]. The line
//! goes straight to the process's stderr (the test harness captures only `print!`/`eprint!`,
//! so it shows even for a passing test) and, when `ORDERD_TEST_SKIP_LOG` names a file, is
//! appended there; the README test command prints that file as a summary at the end.
//!
//! A skip because a service the test command starts is missing ([`Need::Service`]) is a
//! failure when `ORDERD_TEST_REQUIRE_SERVICES=1` (the test command sets it): there, a missing
//! SQS, SMTP or emulator means a broken set-up, not a machine without the service.

#![allow(dead_code)] // each test crate uses the part it needs

use std::io::Write;

/// Why a test cannot run.
pub enum Need<'a> {
    /// A service the README test command starts, named by this environment variable.
    Service(&'a str),
    /// Something this machine cannot provide (a real MongoDB replica set), with the reason.
    Unavailable(&'a str),
}

/// Reports `test` as skipped for `need`; panics instead when a service the test command
/// should have started is missing under `ORDERD_TEST_REQUIRE_SERVICES=1`.
pub fn skip(test: &str, need: Need<'_>) {
    let reason = match need {
        Need::Service(var) => {
            if std::env::var("ORDERD_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{test} needs {var}, which the test command should have set");
            }
            format!("needs {var} (run via the README test command)")
        }
        Need::Unavailable(reason) => reason.to_owned(),
    };
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Ok(path) = std::env::var("ORDERD_TEST_SKIP_LOG") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = appended {
            let _ = writeln!(std::io::stderr(), "could not append to {path}: {err}");
        }
    }
}

/// The value of the service variable `var`, or `None` after reporting `test` as skipped.
pub fn service_env(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip(test, Need::Service(var));
            None
        }
    }
}
