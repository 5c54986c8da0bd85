//! bcrypt hashes made by an independent implementation, as the Node system stored them:
//! Python's `bcrypt` from the test services' environment (`ORDERD_TEST_PYTHON`).

#![allow(dead_code)] // each test crate uses the part it needs

use std::process::Command;

/// A bcrypt hash of `password` (cost 4, fast) with its `$2b$` prefix swapped for `prefix`
/// (`$2a$` and `$2y$` name the same algorithm); `None` when the test environment has no
/// Python with `bcrypt`.
pub fn python_bcrypt(password: &str, prefix: &str) -> Option<String> {
    let python = std::env::var("ORDERD_TEST_PYTHON").ok()?;
    let output = Command::new(python)
        .args([
            "-c",
            "import sys, bcrypt; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(4)).decode())",
            password,
        ])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python bcrypt failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$2b$"), "{hash}");
    Some(format!("{prefix}{}", &hash[4..]))
}
