//! The page in a real browser: headless Chromium (Debian's `chromium`, driven over WebDriver by
//! `chromedriver`) loads `t2v serve`'s page, fills the form with the smallest tiny-random job,
//! clicks Queue, sees the progress advance step by step, and sees the finished video element
//! play. A screenshot is kept (target/tmp/serve-browser.png; T2V_SCREENSHOT=path copies it).
//!
//! tools/test installs chromium and chromedriver and runs this on the host with
//! T2V_BROWSER_TEST=required; elsewhere, without them, it says so and passes.

mod browser_common;
mod serve_common;

use browser_common::{Browser, PATIENCE};
use serde_json::Value;
use serve_common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[test]
fn the_page_queues_a_job_shows_progress_and_plays_the_video() {
    let Some((chromium, chromedriver)) = browser_common::tools("the serve page check") else { return };
    let t0 = Instant::now();
    let d = scratch("browser");
    let s = Server::start(&d, &[], &[]);
    let dr = Browser::start(&chromium, &chromedriver, 1280, 860);

    dr.goto(&format!("http://localhost:{}/", s.port));
    dr.wait_for("the page lists its models", "return document.querySelectorAll('#model option').length", |n| n.as_u64().unwrap_or(0) > 0);
    // The smallest tiny-random job that still shows progress and plays: 32×32, 4 frames at 8 fps.
    dr.js(
        "const set = (id, v) => { document.getElementById(id).value = v; };
         set('prompt', 'a paper boat on a pond'); set('model', 'tiny-random');
         document.getElementById('model').dispatchEvent(new Event('change'));
         set('width', 32); set('height', 32); set('num_frames', 4); set('fps', 8);
         set('num_inference_steps', 6); set('guidance_scale', 1);",
    );
    let button = dr.cmd("POST", "/element", serde_json::json!({ "using": "css selector", "value": "#submit" }));
    let button = button.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string();
    dr.cmd("POST", &format!("/element/{button}/click"), serde_json::json!({}));

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
        assert!(t.elapsed() < PATIENCE, "no playing video after {} s: {st}\ntexts seen: {texts:?}\n{}", PATIENCE.as_secs(), s.log());
        std::thread::sleep(Duration::from_millis(40));
    };
    let steps: Vec<u64> = state["steps"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]) && steps.last() == Some(&6), "steps advance to 6/6: {steps:?}");
    assert!(steps.iter().filter(|&&k| k > 0).count() >= 3, "several step events reached the page: {steps:?}");
    eprintln!("progress texts seen in the page: {texts:?}");
    dr.js("window.scrollTo(0, 0)");
    let png = dr.screenshot();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-browser.png");
    std::fs::write(&out, &png).unwrap();
    if let Some(p) = std::env::var_os("T2V_SCREENSHOT") {
        std::fs::write(p, &png).unwrap();
    }
    eprintln!("screenshot: {} ({:.1} s in all)", out.display(), t0.elapsed().as_secs_f64());
}

/// The side-by-side compare view: two finished runs (same settings, two seeds) ticked in the
/// history, "Compare selected" opens them together, the parameter table marks exactly the
/// differing parameter, and Play starts both videos on one clock (the second follows the first).
#[test]
fn the_compare_view_plays_ticked_runs_in_sync_with_a_parameter_diff() {
    let Some((chromium, chromedriver)) = browser_common::tools("the compare view check") else { return };
    let d = scratch("browser-compare");
    let s = Server::start(&d, &[], &[]);
    let mut ids = Vec::new();
    for seed in [1, 2] {
        let job = serde_json::json!({ "prompt": "a paper boat on a pond", "model": "tiny-random", "width": 32, "height": 32,
                                      "num_frames": 8, "fps": 8, "num_inference_steps": 2, "guidance_scale": 1, "seed": seed });
        let (code, j) = s.post("/api/jobs", job);
        assert_eq!(code, 201, "{j}");
        ids.push(j["id"].as_i64().unwrap());
    }
    for &id in &ids {
        s.wait_state(id, "done");
    }
    let dr = Browser::start(&chromium, &chromedriver, 1280, 900);
    dr.goto(&format!("http://localhost:{}/", s.port));
    let boxes = format!("return [{}].map(id => document.querySelector(`.job[data-job='${{id}}'] input[type=checkbox]`)).filter(Boolean).length", ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    dr.wait_for("both runs are listed with a compare box", &boxes, |n| n.as_u64() == Some(2));
    let tick = format!(
        "[{}].forEach(id => document.querySelector(`.job[data-job='${{id}}'] input[type=checkbox]`).click());
         return document.getElementById('compare-btn').disabled;",
        ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    assert_eq!(dr.js(&tick), serde_json::json!(false), "Compare is enabled with two runs ticked");
    dr.js("document.getElementById('compare-btn').click();");
    let diff = dr.wait_for(
        "the compare view opens with its parameter table",
        "const c = document.getElementById('compare');
         const rows = [...document.querySelectorAll('#compare-diff tr')].slice(1).map(r => [r.cells[0].textContent, r.classList.contains('differs')]);
         return c.hidden ? null : { videos: document.querySelectorAll('#compare-videos video').length, rows: rows };",
        |v| !v.is_null(),
    );
    assert_eq!(diff["videos"], 2, "{diff}");
    let differing: Vec<&str> = diff["rows"].as_array().unwrap().iter().filter(|r| r[1] == true).map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(differing, ["seed"], "only the seed differs: {diff}");
    dr.js("document.getElementById('compare-play').click();");
    // Both play, and the follower is seen on the leader's clock (within a frame) while the
    // leader is past its first frames: polled, so a slow machine only takes longer.
    let state = dr.wait_for(
        "both videos play on one clock",
        "const v = [...document.querySelectorAll('#compare-videos video')];
         return v.map(x => ({ t: x.currentTime, paused: x.paused, ready: x.readyState, error: x.error && x.error.code }));",
        |v| {
            let v = v.as_array().cloned().unwrap_or_default();
            assert!(v.iter().all(|x| x["error"].is_null()), "a compare video failed: {v:?}");
            let t = |i: usize| v[i]["t"].as_f64().unwrap_or(0.0);
            v.len() == 2
                && v.iter().all(|x| x["paused"] == false && x["ready"].as_u64().unwrap_or(0) >= 2)
                && t(0) > 0.2
                && (t(0) - t(1)).abs() < 0.125
        },
    );
    eprintln!("compare view playing in sync: {state}");
}
