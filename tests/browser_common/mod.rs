//! Headless Chromium driven over WebDriver (Debian's `chromium` + `chromedriver`), shared by the
//! browser checks (tests/serve_browser.rs, tests/cli_compare.rs).
//!
//! A browser check waits for the state it asserts: it polls the page until the state holds or a
//! generous real-time deadline passes, and a failure says which state the page reached. Nothing
//! depends on how fast the machine is (an earlier version gave Chromium a fixed virtual-time
//! budget and failed whenever four videos took longer than that to start under load).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a browser check waits for the state it asserts before it fails. Only a broken page
/// takes this long: a healthy one gets there in seconds even on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(240);

/// `T2V_BROWSER_TEST=required` (tools/test's browser phase): a missing browser is a failure.
pub fn required() -> bool {
    std::env::var("T2V_BROWSER_TEST").is_ok_and(|v| v == "required")
}

fn find(names: &[&str], env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium and chromedriver, or None (after saying so) where they are not installed; panics
/// when they are required.
pub fn tools(what: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"], "T2V_CHROMIUM");
    let chromedriver = find(&["chromedriver"], "T2V_CHROMEDRIVER");
    match (chromium, chromedriver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            assert!(!required(), "T2V_BROWSER_TEST=required but chromium/chromedriver are not installed (tools/test installs them)");
            eprintln!("skipped {what}: no chromium + chromedriver here (tools/test runs it on the host with them)");
            None
        }
    }
}

pub fn reply(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(resp) => {
            let code = resp.status();
            (code, resp.into_json().unwrap_or(Value::Null))
        }
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("WebDriver request failed: {e}"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One chromedriver process with one headless Chromium session; both end on drop.
pub struct Browser {
    child: Child,
    base: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver and a headless session with a window of `width`×`height`.
    pub fn start(chromium: &std::path::Path, chromedriver: &std::path::Path, width: u32, height: u32) -> Browser {
        let port = free_port();
        let mut child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            if t.elapsed() > PATIENCE {
                let _ = child.kill();
                panic!("chromedriver did not answer on port {port} within {} s", PATIENCE.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--hide-scrollbars",
                     "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--mute-audio",
                     "--allow-file-access-from-files"]
        } } } });
        let agent = ureq::AgentBuilder::new().timeout(PATIENCE).build();
        let (code, r) = reply(agent.post(&format!("{base}/session")).send_json(caps));
        if code != 200 {
            let _ = child.kill();
            panic!("WebDriver new session: {code} {r}");
        }
        let session = r["value"]["sessionId"].as_str().expect("a session id").to_string();
        Browser { child, base, session }
    }

    pub fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match method {
            "GET" => reply(ureq::get(&url).call()),
            _ => reply(ureq::post(&url).send_json(body)),
        };
        assert_eq!(r.0, 200, "WebDriver {method} {path}: {}", r.1);
        r.1["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    pub fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Polls `probe` (a script returning a JSON value describing the page's state) until `done`
    /// holds, and returns that state; after [`PATIENCE`] it fails with `what` and the last state.
    pub fn wait_for(&self, what: &str, probe: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let state = self.js(probe);
            if done(&state) {
                return state;
            }
            if t.elapsed() > PATIENCE {
                panic!("{what}: not reached in {} s; the page's last state: {state}", PATIENCE.as_secs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The viewport as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let shot = self.cmd("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().expect("base64 screenshot")).expect("base64");
        assert_eq!(&png[1..4], b"PNG");
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
