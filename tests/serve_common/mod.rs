//! Shared by the `t2v serve` tests: a real server process on a free loopback port (its own
//! data folder, the offline tiny-random model) and small HTTP helpers over real sockets.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for a state it expects (a job step, an event, a server line) before it
/// fails. Generous on purpose: outcomes must not depend on how fast or loaded the machine is.
pub const PATIENCE: Duration = Duration::from_secs(240);

pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct Server {
    child: Child,
    pub port: u16,
    pub base: String,
    /// The URL line it printed (with ?token=… when it made one).
    pub url: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_t2v"));
        cmd.args(["serve", "--port", "0", "--data"]).arg(data).args(args);
        cmd.env("T2V_CACHE", PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("t2v-cache"))
            .env("HF_HOME", data.join("hf"))
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("T2V_SERVE_TOKEN")
            .env_remove("T2V_SERVE_FAULT");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start t2v serve");
        let log = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let url = loop {
            match rx.recv_timeout(PATIENCE) {
                Ok(line) if line.starts_with("listening on ") => break line["listening on ".len()..].to_string(),
                Ok(_) => continue,
                Err(_) => panic!("t2v serve did not start: {}", log.lock().unwrap()),
            }
        };
        let hostport = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
        let port: u16 = hostport.rsplit(':').next().unwrap().parse().unwrap();
        Server { child, port, base: format!("http://127.0.0.1:{port}"), url, log }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        // sh's own kill: the trixie root (minbase) has no procps.
        let _ = Command::new("sh").arg("-c").arg(format!("kill -TERM {}", self.child.id())).status();
        let t = Instant::now();
        while t.elapsed() < PATIENCE {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        reply(ureq::get(&format!("{}{path}", self.base)).call())
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        reply(ureq::post(&format!("{}{path}", self.base)).send_json(body))
    }

    pub fn bytes(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let mut r = ureq::get(&format!("{}{path}", self.base));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        let resp = match r.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET {path}: {e}"),
        };
        let code = resp.status();
        let mut b = Vec::new();
        resp.into_reader().read_to_end(&mut b).unwrap();
        (code, b)
    }

    pub fn job(&self, id: i64) -> Value {
        let (code, j) = self.get(&format!("/api/jobs/{id}"));
        assert_eq!(code, 200, "{j}");
        j
    }

    /// Polls a job until `pred` holds (panics with the job and the server log after
    /// [`PATIENCE`]: the deadline only catches a job that never gets there, never a slow one).
    pub fn wait_job(&self, id: i64, pred: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let j = self.job(id);
            if pred(&j) {
                return j;
            }
            if t.elapsed() > PATIENCE {
                panic!("job {id} did not get there in {} s: {j}\nserver log:\n{}", PATIENCE.as_secs(), self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_state(&self, id: i64, state: &str) -> Value {
        self.wait_job(id, |j| j["state"] == state || (state != "failed" && j["state"] == "failed" && panic!("job {id} failed: {j}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn reply(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(resp) => {
            let code = resp.status();
            (code, resp.into_json().unwrap_or(Value::Null))
        }
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("request failed: {e}"),
    }
}

/// One raw HTTP/1.1 request (for headers a client library would set itself, like Host);
/// returns the status and the body.
pub fn raw(port: u16, request: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|b| b.1.to_string()).unwrap_or_default();
    (code, body)
}

/// A tiny-random job: 32×32, `frames` frames, `steps` steps, no guidance (one UNet pass a
/// step: a tiny step is ~0.1–0.5 s on lavapipe, all dispatch overhead).
pub fn tiny_job(prompt: &str, frames: usize, steps: usize, seed: Option<u64>) -> Value {
    let mut j = serde_json::json!({
        "prompt": prompt, "model": "tiny-random", "width": 32, "height": 32,
        "num_frames": frames, "num_inference_steps": steps, "guidance_scale": 1.0, "fps": 8,
    });
    if let Some(s) = seed {
        j["seed"] = s.into();
    }
    j
}

/// An SSE event as read off the wire.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: i64,
    pub kind: String,
    pub data: Value,
}

/// Reads `/api/events` on a thread; events arrive on the returned channel.
pub fn subscribe(base: &str, query: &str, last_event_id: Option<i64>) -> std::sync::mpsc::Receiver<Sse> {
    let agent = ureq::AgentBuilder::new().timeout_read(PATIENCE).build();
    let mut req = agent.get(&format!("{base}/api/events{query}"));
    if let Some(id) = last_event_id {
        req = req.set("Last-Event-ID", &id.to_string());
    }
    let resp = req.call().expect("subscribe");
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut id, mut kind, mut data) = (0, String::new(), String::new());
        for line in BufReader::new(resp.into_reader()).lines().map_while(Result::ok) {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() && !kind.is_empty() {
                let ev = Sse { id, kind: std::mem::take(&mut kind), data: serde_json::from_str(&data).unwrap_or(Value::Null) };
                data.clear();
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    });
    rx
}
