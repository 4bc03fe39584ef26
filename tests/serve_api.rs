//! `t2v serve` over real HTTP on loopback with the tiny-random model: the API round trip with
//! SSE progress and Last-Event-ID replay, queue operations, cancelling a running job, bad input
//! (4xx with a message, and the server keeps serving), the access token, 100 concurrent
//! submissions, and restarts — `kill -9` mid-run resumes from the saved latents and ends with
//! exactly the latents of an uninterrupted run; a failed decode is retried from the final latents.

mod serve_common;

use serde_json::{json, Value};
use serve_common::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn id(j: &Value) -> i64 {
    j["id"].as_i64().unwrap_or_else(|| panic!("no job id in {j}"))
}

#[test]
fn api_round_trip_with_progress_events() {
    let d = scratch("round-trip");
    let s = Server::start(&d, &[], &[]);
    let (code, m) = s.get("/api/models");
    assert_eq!(code, 200);
    assert!(m["models"].as_array().unwrap().iter().any(|m| m["name"] == "tiny-random"), "{m}");
    let (code, page) = s.bytes("/", &[]);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("<title>t2v</title>"));
    assert_eq!(s.bytes("/app.js", &[]).0, 200);

    let (_, list) = s.get("/api/jobs");
    let events = subscribe(&s.base, &format!("?after={}", list["last_event_id"]), None);
    // Guidance on here (two UNet passes a step, a negative prompt); the other jobs go without.
    let mut fox = tiny_job("a red fox in the snow", 2, 2, Some(7));
    fox["guidance_scale"] = 7.5.into();
    fox["negative_prompt"] = "blurry".into();
    let (code, job) = s.post("/api/jobs", fox);
    assert_eq!(code, 201, "{job}");
    let jid = id(&job);
    assert_eq!(job["params"]["seed"], 7);
    assert_eq!(job["state"], "queued");

    // Every event until the job is done: phases in order, steps with s/step and ETA.
    let mut seen = Vec::new();
    let t = Instant::now();
    loop {
        let e = events.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("no event in {} s; seen: {seen:?}\nlog:\n{}", PATIENCE.as_secs(), s.log()));
        let done = e.kind == "job" && e.data["id"] == jid && e.data["state"] == "done";
        assert!(!(e.kind == "job" && e.data["state"] == "failed"), "{:?}\n{}", e, s.log());
        seen.push(e);
        if done {
            break;
        }
        assert!(t.elapsed() < PATIENCE, "the job did not finish in {} s; events: {seen:?}\nlog:\n{}", PATIENCE.as_secs(), s.log());
    }
    let phases: Vec<&str> = seen.iter().filter(|e| e.kind == "progress").map(|e| e.data["phase"].as_str().unwrap()).collect();
    let mut order: Vec<&str> = phases.clone();
    order.dedup();
    assert_eq!(order, ["load", "encode", "step", "decode", "write"], "{phases:?}");
    let steps: Vec<&Value> = seen.iter().filter(|e| e.kind == "progress" && e.data["phase"] == "step").map(|e| &e.data).collect();
    assert_eq!(steps.last().unwrap()["step"], 2);
    assert_eq!(steps.last().unwrap()["steps"], 2);
    assert!(steps.last().unwrap()["s_per_step"].as_f64().unwrap() > 0.0 && steps.last().unwrap()["eta_s"].is_number());
    assert!(seen.iter().any(|e| e.kind == "progress" && e.data["phase"] == "decode" && e.data["frame"] == 2 && e.data["frames"] == 2));
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id), "event ids increase");

    // Last-Event-ID: a reconnect replays exactly what came after that event.
    let cut = seen.iter().position(|e| e.kind == "progress" && e.data["phase"] == "step").unwrap();
    let replay = subscribe(&s.base, "", Some(seen[cut].id));
    for want in &seen[cut + 1..] {
        let got = replay.recv_timeout(PATIENCE).expect("replayed event");
        assert_eq!((got.id, &got.kind, &got.data), (want.id, &want.kind, &want.data));
    }
    // The JSON polling endpoint says the same.
    let job = s.job(jid);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["progress"]["phase"], "write");
    assert_eq!(job["resumed_from"], 0);

    // Files: MP4 (with provenance in its metadata, byte ranges), GIF, sidecar JSON.
    let (code, mp4) = s.bytes(job["outputs"]["mp4"].as_str().unwrap(), &[]);
    assert_eq!(code, 200);
    assert_eq!(&mp4[4..8], b"ftyp");
    let text = String::from_utf8_lossy(&mp4);
    assert!(text.contains("\"weights_sha256\"") && text.contains("\"seed\":7"), "MP4 metadata carries the provenance");
    // ffprobe (an independent reader) sees it as the comment tag.
    let path = d.join(format!("jobs/{jid}/video.mp4"));
    if let Ok(out) = std::process::Command::new("ffprobe").args(["-v", "error", "-show_entries", "format_tags=comment", "-of", "default=nw=1:nk=1"]).arg(&path).output() {
        let comment = String::from_utf8_lossy(&out.stdout).to_string();
        let tag: Value = serde_json::from_str(comment.trim().trim_start_matches("t2v ")).unwrap_or_else(|e| panic!("{e}: {comment}"));
        assert_eq!((tag["seed"].as_u64(), tag["job"].as_i64()), (Some(7), Some(jid)), "{tag}");
    }
    let (code, part) = s.bytes(job["outputs"]["mp4"].as_str().unwrap(), &[("Range", "bytes=0-99")]);
    assert_eq!((code, part.len()), (206, 100));
    let (code, gif) = s.bytes(job["outputs"]["gif"].as_str().unwrap(), &[]);
    assert_eq!(code, 200);
    assert_eq!(&gif[..6], b"GIF89a");
    let (_, side) = s.bytes(job["outputs"]["json"].as_str().unwrap(), &[]);
    let side: Value = serde_json::from_slice(&side).unwrap();
    assert_eq!(side["seed"], 7);
    assert_eq!(side["weights_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(side["t2v_version"], env!("CARGO_PKG_VERSION"));
    assert!(side["adapter"].is_string() && side["driver"].is_string());
    assert_eq!(job["provenance"], side);

    // Queue operations on a paused queue: order, move, cancel, duplicate, vary seed, retry.
    assert_eq!(s.post("/api/queue", json!({ "paused": true })).0, 200);
    let ids: Vec<i64> = (0..3).map(|i| id(&s.post("/api/jobs", tiny_job(&format!("queued {i}"), 1, 1, None)).1)).collect();
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    assert_eq!(s.job(a)["params"]["random_seed"], true);
    assert!(s.job(a)["params"]["seed"].is_u64(), "a random seed is drawn and kept");
    assert_eq!(s.get("/api/queue").1["queue"], json!([a, b, c]));
    assert_eq!(s.post(&format!("/api/jobs/{c}/move"), json!({ "index": 0 })).1["queue"], json!([c, a, b]));
    assert_eq!(s.post(&format!("/api/jobs/{a}/cancel"), json!({})).1["state"], "cancelled");
    let (code, dup) = s.post(&format!("/api/jobs/{b}/duplicate"), json!({}));
    assert_eq!(code, 201);
    assert_eq!(dup["params"], s.job(b)["params"], "rerun exactly: the same parameters and seed");
    let (_, vary) = s.post(&format!("/api/jobs/{b}/duplicate"), json!({ "seed": "random" }));
    assert_eq!(vary["params"]["prompt"], "queued 1");
    assert_eq!(s.post(&format!("/api/jobs/{a}/retry"), json!({})).1["state"], "queued");
    assert_eq!(s.get("/api/queue").1["queue"], json!([c, b, id(&dup), id(&vary), a]));
    for j in [c, b, id(&dup), id(&vary), a] {
        assert_eq!(s.post(&format!("/api/jobs/{j}/cancel"), json!({})).0, 200);
    }
    assert_eq!(s.post(&format!("/api/jobs/{a}/cancel"), json!({})).0, 409, "a cancelled job cannot be cancelled again");

    // Cancelling a running job stops it between steps.
    let (_, long) = s.post("/api/jobs", tiny_job("a long one", 1, 400, Some(1)));
    let long = id(&long);
    s.post("/api/queue", json!({ "paused": false }));
    s.wait_job(long, |j| j["progress"]["phase"] == "step" && j["progress"]["step"].as_u64().unwrap_or(0) >= 1);
    let (code, r) = s.post(&format!("/api/jobs/{long}/cancel"), json!({}));
    assert_eq!((code, r["cancel_requested"].as_bool()), (202, Some(true)), "{r}");
    let j = s.wait_state(long, "cancelled");
    assert!(j["progress"]["step"].as_u64().unwrap() < 400, "{j}");
    assert_eq!(s.get("/api/info").0, 200);
}

#[test]
fn bad_input_gets_4xx_and_the_server_keeps_serving() {
    let d = scratch("bad-input");
    // A small adapter (as the memory plan sees it): the tiny model at 32×32 (1.4 MiB) fits,
    // 256×256 × 4 frames (15 MiB) does not.
    let s = Server::start(&d, &["--paused"], &[("T2V_DEVICE_MEMORY_GIB", "0.004")]);
    let long = "x".repeat(10_000);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({ "prompt": "a", "model": "nope" }), 400, "unknown model"),
        (json!({ "prompt": "a", "model": "/etc" }), 400, "path"),
        (json!({ "prompt": "a", "model": "../../tiny-random" }), 400, "path"),
        (json!({ "prompt": "a", "model": "tiny-random", "num_frames": 0 }), 400, "num_frames"),
        (json!({ "prompt": "a", "model": "tiny-random", "width": 100000 }), 400, "width"),
        (json!({ "prompt": "a", "model": "tiny-random", "height": 30 }), 400, "height"),
        (json!({ "prompt": "a", "model": "tiny-random", "num_inference_steps": 0 }), 400, "num_inference_steps"),
        (json!({ "prompt": long, "model": "tiny-random" }), 400, "prompt"),
        (json!({ "prompt": "  ", "model": "tiny-random" }), 400, "prompt"),
        (json!({ "prompt": "a", "model": "tiny-random", "scheduler": "heun" }), 400, "scheduler"),
        (json!({ "prompt": "a", "model": "tiny-random", "guidance_scale": -1 }), 400, "guidance_scale"),
        (json!({ "prompt": "a", "model": "tiny-random", "guidance_scale_2": 3 }), 400, "guidance_scale_2"),
        (json!({ "prompt": "a", "promt": "typo" }), 400, "promt"),
        (json!({ "prompt": "a", "model": "tiny-random", "num_frames": "lots" }), 400, "malformed"),
        (json!({ "prompt": "a", "model": "tiny-random", "width": 256, "height": 256, "num_frames": 4, "num_inference_steps": 1 }), 422, "does not fit"),
    ];
    for (body, want, word) in cases {
        let (code, r) = s.post("/api/jobs", body.clone());
        let msg = r["error"].as_str().unwrap_or_default();
        assert_eq!(code, want, "{body}: {r}");
        assert!(msg.contains(word), "{body}: the message must say '{word}': {msg}");
        assert_eq!(s.get("/api/info").0, 200, "still serving after {body}");
    }
    let (_, r) = s.post("/api/jobs", json!({ "prompt": "a", "model": "tiny-random", "width": 256, "height": 256, "num_frames": 4, "num_inference_steps": 1 }));
    assert!(r["plan"].as_str().unwrap().contains("peak") && r["suggestion"].as_str().unwrap().contains("fewer frames"), "{r}");

    let port = s.port;
    let post = |headers: &str, body: &str| {
        raw(port, &format!("POST /api/jobs HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
    };
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let json_ct = "Content-Type: application/json\r\n";
    let ok_body = r#"{"prompt": "a", "model": "tiny-random", "num_frames": 1, "num_inference_steps": 1}"#;
    let raw_cases: Vec<((u16, String), u16, &str)> = vec![
        (post(&format!("{host}{json_ct}"), "{\"prompt\": "), 400, "malformed JSON"),
        (post(&format!("{host}{json_ct}"), ""), 400, "empty"),
        (post(&format!("{host}Content-Type: text/plain\r\n"), ok_body), 415, "application/json"),
        (post(&format!("{host}{json_ct}"), &format!("{{\"prompt\": \"{}\"}}", "y".repeat(100_000))), 413, ""),
        (post(&format!("{host}{json_ct}Origin: http://evil.example\r\n"), ok_body), 403, "cross-site"),
        (post(&format!("{host}{json_ct}Sec-Fetch-Site: cross-site\r\n"), ok_body), 403, "cross-site"),
        (post(&format!("Host: evil.example:{port}\r\n{json_ct}"), ok_body), 403, "DNS rebinding"),
        (raw(port, &format!("GET /api/jobs HTTP/1.1\r\nHost: attacker.test:{port}\r\nConnection: close\r\n\r\n")), 403, "Host"),
        (raw(port, "GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n"), 403, "Host"),
        (raw(port, &format!("GET /api/jobs/999999 HTTP/1.1\r\n{host}Connection: close\r\n\r\n")), 404, "no job"),
        (raw(port, &format!("GET /api/jobs/1/files/..%2Fjobs.sqlite3 HTTP/1.1\r\n{host}Connection: close\r\n\r\n")), 404, "no file"),
        (raw(port, &format!("GET /nope HTTP/1.1\r\n{host}Connection: close\r\n\r\n")), 404, "no such"),
    ];
    for ((code, body), want, word) in raw_cases {
        assert_eq!(code, want, "{body}");
        assert!(body.contains(word), "must say '{word}': {body}");
        assert_eq!(s.get("/api/info").0, 200);
    }
    // The same origin and localhost are fine.
    let (code, body) = post(&format!("Host: localhost:{port}\r\n{json_ct}Origin: http://localhost:{port}\r\n"), ok_body);
    assert_eq!(code, 201, "{body}");

    // A non-loopback host needs --allow-remote, then a token on every request.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_t2v")).args(["serve", "--host", "0.0.0.0", "--port", "0"]).arg("--data").arg(&d).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--allow-remote"), "{out:?}");
    let d2 = scratch("bad-input-remote");
    let r = Server::start(&d2, &["--host", "0.0.0.0", "--allow-remote", "--paused"], &[]);
    let t = Instant::now();
    while !r.log().contains("WARNING") {
        assert!(t.elapsed() < PATIENCE, "a remote host must print a warning: {}", r.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let token = r.url.split("token=").nth(1).expect("a generated token in the URL").to_string();
    assert!(token.len() >= 32);
    let (code, e) = r.get("/api/jobs");
    assert_eq!(code, 401);
    assert!(e["error"].as_str().unwrap().contains("token"));
    assert_eq!(r.post("/api/jobs", tiny_job("a", 1, 1, None)).0, 401);
    let (code, _) = reply(ureq::get(&format!("{}/api/jobs", r.base)).set("Authorization", &format!("Bearer {token}")).call());
    assert_eq!(code, 200);
    let (code, _) = reply(ureq::get(&format!("{}/api/jobs", r.base)).set("Authorization", "Bearer wrong-token-wrong-token").call());
    assert_eq!(code, 401);
    let (code, head) = raw(r.port, &format!("GET /?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", r.port));
    assert_eq!(code, 200, "{head}");
    let (code, _) = raw(r.port, &format!("GET /api/jobs HTTP/1.1\r\nHost: localhost:{}\r\nCookie: t2v_token={token}\r\nConnection: close\r\n\r\n", r.port));
    assert_eq!(code, 200, "the cookie set by ?token= works");
}

#[test]
fn a_hundred_concurrent_submissions_are_all_stored_once() {
    let d = scratch("concurrent");
    let s = Server::start(&d, &["--paused"], &[]);
    let base = s.base.clone();
    let t = Instant::now();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let base = base.clone();
            std::thread::spawn(move || reply(ureq::post(&format!("{base}/api/jobs")).send_json(tiny_job(&format!("job {i}"), 1, 1, Some(i)))))
        })
        .collect();
    let mut ids = HashSet::new();
    for h in handles {
        let (code, j) = h.join().unwrap();
        assert_eq!(code, 201, "{j}");
        assert!(ids.insert(id(&j)), "duplicate id {}", j["id"]);
    }
    eprintln!("100 submissions in {:.2} s", t.elapsed().as_secs_f64());
    let (_, list) = s.get("/api/jobs");
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 100);
    let prompts: HashSet<String> = jobs.iter().map(|j| j["params"]["prompt"].as_str().unwrap().to_string()).collect();
    assert_eq!(prompts, (0..100).map(|i| format!("job {i}")).collect::<HashSet<_>>());
    for j in jobs {
        assert_eq!(j["params"]["seed"].as_u64().unwrap(), j["params"]["prompt"].as_str().unwrap()[4..].parse::<u64>().unwrap());
    }
    assert_eq!(s.get("/api/queue").1["queue"].as_array().unwrap().len(), 100);
}

#[test]
fn jobs_survive_kill_9_and_resume_from_saved_latents() {
    let d = scratch("restart");
    // DPM-Solver++ keeps a history on the device: resuming must restore it, or the latents differ.
    let mut long = tiny_job("resume me", 1, 12, Some(11));
    long["scheduler"] = "dpm++".into();
    let short = tiny_job("decode fails", 1, 2, Some(5));

    // 1. A server whose decodes fail (fault injection) and which is killed mid-run.
    // The worker holds after its step-4 checkpoint (stall-after:4), so the kill lands mid-run
    // after a checkpoint however fast the machine is.
    let mut a = Server::start(&d, &["--checkpoint-every", "2"], &[("T2V_SERVE_FAULT", "decode,stall-after:4")]);
    let (_, f) = a.post("/api/jobs", short);
    let (_, j) = a.post("/api/jobs", long);
    let (fid, jid) = (id(&f), id(&j));
    let failed = a.wait_state(fid, "failed");
    assert!(failed["error"].as_str().unwrap().contains("decode failed"), "{failed}");
    assert_eq!(failed["checkpoint_step"], 2, "the final latents were saved before decoding");
    a.wait_job(jid, |j| j["checkpoint_step"].as_i64().unwrap_or(0) >= 4);
    a.kill9();

    // 2. Restarted: the job is there, resumes from its checkpoint (not from zero) and finishes.
    let b = Server::start(&d, &["--paused"], &[]);
    let j = b.job(jid);
    assert_eq!(j["state"], "interrupted", "{j}");
    let saved = j["checkpoint_step"].as_i64().unwrap();
    assert_eq!(saved, 4, "killed mid-run, after the step-4 checkpoint: {j}");
    b.post("/api/queue", json!({ "paused": false }));
    let j = b.wait_state(jid, "done");
    assert_eq!(j["resumed_from"].as_i64().unwrap(), saved, "{j}");
    assert_eq!(j["attempts"], 2);
    assert_eq!(j["provenance"]["resumed_from_step"].as_i64().unwrap(), saved);
    // The failed decode is retried from the final latents: no step runs again.
    assert_eq!(b.post(&format!("/api/jobs/{fid}/retry"), json!({})).0, 200);
    let f = b.wait_state(fid, "done");
    assert_eq!(f["resumed_from"], 2, "{f}");
    // The resumed run ends exactly where an uninterrupted run of the same job does.
    let (_, r) = b.post(&format!("/api/jobs/{jid}/duplicate"), json!({}));
    let r = b.wait_state(id(&r), "done");
    assert_eq!(r["resumed_from"], 0);
    assert_eq!(j["outputs"]["latents_sha256"], r["outputs"]["latents_sha256"], "resumed vs uninterrupted latents");

    // 3. A normal stop keeps the queue as well.
    let mut b = b;
    b.post("/api/queue", json!({ "paused": true }));
    let (_, q) = b.post("/api/jobs", tiny_job("after a restart", 1, 1, Some(3)));
    b.terminate();
    let c = Server::start(&d, &["--paused"], &[]);
    let q = c.job(id(&q));
    assert_eq!(q["state"], "queued", "{q}");
    assert_eq!(c.job(jid)["state"], "done");
}

#[test]
fn wan_folders_are_offered_with_their_defaults_run_and_resume_after_kill_9() {
    let d = scratch("wan");
    let wan = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan/tiny-wan");
    let experts = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan/tiny-wan22-a");
    let s = Server::start(&d, &["--model-dir", wan.to_str().unwrap(), "--model-dir", experts.to_str().unwrap()], &[]);
    let (_, models) = s.get("/api/models");
    let m = models["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny-wan").cloned().unwrap_or_else(|| panic!("{models}"));
    // WanPipeline's defaults, and its frame and size steps.
    assert_eq!((m["width"].as_u64(), m["height"].as_u64(), m["num_frames"].as_u64(), m["fps"].as_u64()), (Some(832), Some(480), Some(81), Some(16)), "{m}");
    assert_eq!((m["temporal"].as_u64(), m["size_multiple"].as_u64(), m["guidance_scale"].as_f64()), (Some(4), Some(16), Some(5.0)), "{m}");
    let (code, e) = s.post("/api/jobs", json!({ "prompt": "a cat", "model": "tiny-wan", "width": 24, "height": 16 }));
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("multiple of 16"), "{e}");
    // 6 frames are stored as the 5 that run (diffusers' 4k+1 rounding).
    let job = json!({ "prompt": "a cat dancing", "model": "tiny-wan", "width": 32, "height": 16, "num_frames": 6, "num_inference_steps": 2, "seed": 3 });
    let (code, j) = s.post("/api/jobs", job);
    assert_eq!(code, 201, "{j}");
    assert_eq!(j["params"]["num_frames"], 5, "{j}");
    let done = s.wait_state(id(&j), "done");
    assert_eq!(done["provenance"]["scheduler"], "unipc", "{done}");
    // Wan 2.2 A14B's two experts: offered as such, with the second guidance scale stored.
    let (_, models) = s.get("/api/models");
    let two = |n: &str| models["models"].as_array().unwrap().iter().find(|m| m["name"] == n).map(|m| m["two_experts"].clone());
    assert_eq!((two("tiny-wan"), two("tiny-wan22-a")), (Some(json!(false)), Some(json!(true))), "{models}");
    let (code, e) = s.post("/api/jobs", json!({ "prompt": "a cat", "model": "tiny-wan", "guidance_scale_2": 3.0 }));
    assert!(code == 400 && e["error"].as_str().unwrap().contains("guidance_scale_2"), "{e}");
    let job = json!({ "prompt": "a paper boat", "model": "tiny-wan22-a", "width": 16, "height": 16, "num_frames": 1, "num_inference_steps": 4, "guidance_scale": 4.0, "guidance_scale_2": 3.0, "seed": 4 });
    let (code, j) = s.post("/api/jobs", job);
    assert_eq!(code, 201, "{j}");
    assert_eq!(j["params"]["guidance_scale_2"], 3.0, "{j}");
    s.wait_state(id(&j), "done");
    drop(s);

    // kill -9 mid-run and resume, on Wan: UniPC's multistep history (last model outputs, the
    // corrector's state) comes back from the checkpoint, so the resumed latents are those of an
    // uninterrupted run.
    let d = scratch("wan-restart");
    let mut a = Server::start(&d, &["--model-dir", wan.to_str().unwrap(), "--checkpoint-every", "2"], &[("T2V_SERVE_FAULT", "stall-after:4")]);
    let job = json!({ "prompt": "a red fox in the snow", "model": "tiny-wan", "width": 32, "height": 16, "num_frames": 5, "num_inference_steps": 7, "seed": 9 });
    let (code, j) = a.post("/api/jobs", job);
    assert_eq!(code, 201, "{j}");
    let jid = id(&j);
    a.wait_job(jid, |j| j["checkpoint_step"].as_i64().unwrap_or(0) >= 4);
    a.kill9();
    let b = Server::start(&d, &["--model-dir", wan.to_str().unwrap(), "--paused"], &[]);
    let j = b.job(jid);
    assert_eq!((j["state"].as_str(), j["checkpoint_step"].as_i64()), (Some("interrupted"), Some(4)), "{j}");
    b.post("/api/queue", json!({ "paused": false }));
    let j = b.wait_state(jid, "done");
    assert_eq!(j["resumed_from"], 4, "{j}");
    let (_, r) = b.post(&format!("/api/jobs/{jid}/duplicate"), json!({}));
    let r = b.wait_state(id(&r), "done");
    assert_eq!(r["resumed_from"], 0, "{r}");
    assert_eq!(j["outputs"]["latents_sha256"], r["outputs"]["latents_sha256"], "Wan: resumed vs uninterrupted latents");
}

#[test]
fn a_job_too_big_for_the_device_is_accepted_and_streams() {
    // A 1.43 MiB device (as the plan sees it): the tiny model at 48×48 needs 1.64 MiB with every
    // block resident, 1.09 MiB with every block streamed. The job is accepted, runs with blocks
    // streamed from host memory, and its provenance carries that plan.
    let d = scratch("streams");
    let s = Server::start(&d, &[], &[("T2V_DEVICE_MEMORY_GIB", "0.0014")]);
    let mut job = tiny_job("a small room", 2, 1, Some(3));
    job["width"] = 48.into();
    job["height"] = 48.into();
    let (code, j) = s.post("/api/jobs", job);
    assert_eq!(code, 201, "{j}");
    let done = s.wait_state(id(&j), "done");
    let plan = &done["provenance"]["memory_plan"];
    let streamed = plan["streamed_blocks"].as_array().unwrap_or_else(|| panic!("{done}"));
    assert!(!streamed.is_empty() && streamed.len() < 9, "{plan}");
    assert!(plan["streamed_bytes_per_step"].as_u64().unwrap() > 0 && plan["report"].as_str().unwrap().contains("weights streamed"), "{plan}");
    assert!(plan["peak_bytes"].as_u64().unwrap() <= plan["capacity_bytes"].as_u64().unwrap(), "{plan}");
}
