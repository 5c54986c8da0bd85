//! Hostile guest for tests: a tax plugin that tries to reach outside its sandbox (a file, a
//! directory listing, the environment, a TCP connection to `127.0.0.1:<port>` where `port`
//! comes from the config, default 1), writes one line to stderr, and reports what it got as
//! a `probe` error: `file=<ok|denied> dir=<ok|denied> env=<count> home=<set|unset>
//! socket=<ok|denied>`. A host that grants nothing sees `file=denied dir=denied env=0
//! home=unset socket=denied`.
#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tax-rules" });
    use exports::shop::rules::tax::Guest;
    use shop::rules::types::*;
    struct Plugin;

    fn outcome<T, E>(result: Result<T, E>) -> &'static str {
        if result.is_ok() { "ok" } else { "denied" }
    }

    impl Guest for Plugin {
        fn calculate(_draft: OrderDraft, config: Config) -> Result<TaxBreakdown, PluginError> {
            let port: u16 = config
                .iter()
                .rev()
                .find(|(k, _)| k == "port")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(1);
            let file = outcome(std::fs::read_to_string("/etc/hostname"));
            let dir = outcome(std::fs::read_dir("/"));
            let env = std::env::vars().count();
            let home = if std::env::var("HOME").is_ok() {
                "set"
            } else {
                "unset"
            };
            let socket = outcome(std::net::TcpStream::connect(("127.0.0.1", port)));
            eprintln!("sandbox-probe: stderr line");
            Err(PluginError {
                code: "probe".into(),
                message: format!("file={file} dir={dir} env={env} home={home} socket={socket}"),
            })
        }
    }
    export!(Plugin);
}
