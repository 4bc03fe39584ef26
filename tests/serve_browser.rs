//! The page in a real browser: headless Chromium (Debian's `chromium`, driven over WebDriver by
//! `chromedriver`) loads `t2v serve`'s page, fills the form with the smallest tiny-random job,
//! clicks Queue, sees the progress advance step by step, and sees the finished video element
//! play. A screenshot is kept (target/tmp/serve-browser.png; T2V_SCREENSHOT=path copies it).
//!
//! tools/test installs chromium and chromedriver and runs this on the host with
//! T2V_BROWSER_TEST=required; elsewhere, without them, it says so and passes.

mod serve_common;

use base64::Engine;
use serde_json::{json, Value};
use serve_common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

struct Driver {
    child: Child,
    base: String,
    session: String,
}

impl Driver {
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match method {
            "GET" => reply(ureq::get(&url).call()),
            _ => reply(ureq::post(&url).send_json(body)),
        };
        assert_eq!(r.0, 200, "WebDriver {method} {path}: {}", r.1);
        r.1["value"].clone()
    }
    fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_page_queues_a_job_shows_progress_and_plays_the_video() {
    let required = std::env::var("T2V_BROWSER_TEST").is_ok_and(|v| v == "required");
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"], "T2V_CHROMIUM");
    let chromedriver = find(&["chromedriver"], "T2V_CHROMEDRIVER");
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(!required, "T2V_BROWSER_TEST=required but chromium/chromedriver are not installed (tools/test installs them)");
        eprintln!("skipped: no chromium + chromedriver here (tools/test runs this test on the host with them)");
        return;
    };
    let t0 = Instant::now();
    let d = scratch("browser");
    let s = Server::start(&d, &[], &[]);

    let port = free_port();
    let child = Command::new(&chromedriver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
    let base = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    while ureq::get(&format!("{base}/status")).call().is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium.to_string_lossy(),
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860",
                 "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--mute-audio"]
    } } } });
    let (code, r) = reply(ureq::post(&format!("{base}/session")).send_json(caps));
    assert_eq!(code, 200, "new session: {r}");
    let session = r["value"]["sessionId"].as_str().unwrap().to_string();
    let dr = Driver { child, base, session };

    dr.cmd("POST", "/url", json!({ "url": format!("http://localhost:{}/", s.port) }));
    let t = Instant::now();
    while dr.js("return document.querySelectorAll('#model option').length").as_u64().unwrap_or(0) == 0 {
        assert!(t.elapsed() < Duration::from_secs(20), "the page did not load its models");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The smallest tiny-random job that still shows progress and plays: 32×32, 4 frames at 8 fps.
    dr.js(
        "const set = (id, v) => { document.getElementById(id).value = v; };
         set('prompt', 'a paper boat on a pond'); set('model', 'tiny-random');
         document.getElementById('model').dispatchEvent(new Event('change'));
         set('width', 32); set('height', 32); set('num_frames', 4); set('fps', 8);
         set('num_inference_steps', 6); set('guidance_scale', 1);",
    );
    let button = dr.cmd("POST", "/element", json!({ "using": "css selector", "value": "#submit" }));
    let button = button.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string();
    dr.cmd("POST", &format!("/element/{button}/click"), json!({}));

    let mut texts = Vec::new();
    let t = Instant::now();
    let state = loop {
        let st = dr.js(
            "const v = document.querySelector('video.job-video');
             const p = document.querySelector('#queue .progress-text');
             return { steps: window.t2v.progressLog.filter(e => e.phase === 'step').map(e => e.step),
                      text: p ? p.textContent : null, err: document.getElementById('form-error').textContent,
                      video: v && { t: v.currentTime, paused: v.paused, ready: v.readyState, error: v.error && v.error.code } };",
        );
        if let Some(text) = st["text"].as_str() {
            if texts.last().map(String::as_str) != Some(text) {
                texts.push(text.to_string());
            }
        }
        let v = &st["video"];
        assert!(v.is_null() || v["error"].is_null(), "the video element failed to play: {st}");
        if v["ready"].as_u64().unwrap_or(0) >= 2 && v["t"].as_f64().unwrap_or(0.0) > 0.0 && v["paused"] == false {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no playing video after 60 s: {st}\ntexts seen: {texts:?}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(40));
    };
    let steps: Vec<u64> = state["steps"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]) && steps.last() == Some(&6), "steps advance to 6/6: {steps:?}");
    assert!(steps.iter().filter(|&&k| k > 0).count() >= 3, "several step events reached the page: {steps:?}");
    eprintln!("progress texts seen in the page: {texts:?}");
    dr.js("window.scrollTo(0, 0)");
    let shot = dr.cmd("GET", "/screenshot", Value::Null);
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-browser.png");
    std::fs::write(&out, &png).unwrap();
    if let Some(p) = std::env::var_os("T2V_SCREENSHOT") {
        std::fs::write(p, &png).unwrap();
    }
    eprintln!("screenshot: {} ({:.1} s in all)", out.display(), t0.elapsed().as_secs_f64());
}
