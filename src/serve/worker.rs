//! The GPU worker: one thread, one job at a time. It claims the next job from the store
//! (interrupted ones first), loads the model (kept loaded while the next job uses it too),
//! encodes the prompt, denoises from the seed or from the job's last checkpoint — saving one
//! every few steps — saves the final latents, decodes and writes the MP4, GIF and sidecar JSON.
//! Cancellation is checked before every step and every decoded frame.

use super::params::JobParams;
use super::App;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t2v::pipelines::{Checkpoint, Progress, VideoPipeline};
use t2v::{Error, Result};

/// The job running now and its cancel flag.
#[derive(Default)]
pub struct Running {
    pub job: Option<(i64, Arc<AtomicBool>)>,
}

const CANCELLED: &str = "cancelled by the user";

pub fn run(app: Arc<App>) {
    let mut loaded: Option<(String, Box<dyn VideoPipeline + Send>)> = None;
    let mut hashes: HashMap<PathBuf, String> = HashMap::new();
    loop {
        if app.paused.load(Ordering::SeqCst) {
            app.wait_for_work(Duration::from_millis(500));
            continue;
        }
        let job = match app.store.claim_next() {
            Ok(Some(j)) => j,
            Ok(None) => {
                app.wait_for_work(Duration::from_millis(500));
                continue;
            }
            Err(e) => {
                eprintln!("serve: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        app.running.lock().unwrap_or_else(|p| p.into_inner()).job = Some((job.id, cancel.clone()));
        let dir = app.job_dir(job.id);
        let result = std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Other(format!("{}: {e}", dir.display())))
            .and_then(|_| run_job(&app, job.id, &job.params, &dir, &cancel, &mut loaded, &mut hashes));
        app.running.lock().unwrap_or_else(|p| p.into_inner()).job = None;
        let done = match result {
            Ok((outputs, provenance)) => {
                // The final latents are only needed to retry a failed decode.
                let _ = std::fs::remove_file(dir.join("checkpoint.bin"));
                let o = outputs.to_string();
                let p = provenance.to_string();
                app.store.update(
                    job.id,
                    "state = 'done', finished = ?2, error = NULL, outputs = ?3, provenance = ?4",
                    rusqlite::params![now(), o, p],
                )
            }
            Err(_) if cancel.load(Ordering::SeqCst) => {
                app.store.update(job.id, "state = 'cancelled', finished = ?2, error = ?3", rusqlite::params![now(), CANCELLED])
            }
            Err(e) => {
                let msg = e.to_string();
                eprintln!("serve: job {} failed: {msg}", job.id);
                app.store.update(job.id, "state = 'failed', finished = ?2, error = ?3", rusqlite::params![now(), msg])
            }
        };
        if let Err(e) = done {
            eprintln!("serve: recording job {}: {e}", job.id);
        }
    }
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn store_err(e: String) -> Error {
    Error::Other(e)
}

fn run_job(
    app: &App,
    id: i64,
    p: &JobParams,
    dir: &Path,
    cancel: &AtomicBool,
    loaded: &mut Option<(String, Box<dyn VideoPipeline + Send>)>,
    hashes: &mut HashMap<PathBuf, String>,
) -> Result<(Value, Value)> {
    let mut progress = JobProgress::new(app, id, cancel);
    let gp = p.generate_params();
    let ckpt_path = dir.join("checkpoint.bin");
    // A checkpoint from an earlier attempt (crash, failed decode): continue from it.
    let resume = Checkpoint::read(&ckpt_path).ok();
    let first = resume.as_ref().map(|c| c.next_step).unwrap_or(0);
    app.store.update(id, "resumed_from = ?2, error = NULL", rusqlite::params![first as i64]).map_err(store_err)?;

    progress.phase("load", json!({}));
    let model_dir = app.model_dir(&p.model)?;
    if loaded.as_ref().is_none_or(|(m, _)| *m != p.model) {
        *loaded = None; // free the old model's weights first
        let pipe = app.family(&p.model)?.load(&app.gpu, &model_dir, t2v::weights::Placement { matrices: t2v::DType::F16 })?;
        *loaded = Some((p.model.clone(), pipe));
    }
    let pipe = &mut loaded.as_mut().ok_or_else(|| Error::Other("no pipeline".into()))?.1;
    let plan = app.plan(p)?;
    if !plan.fits() {
        return Err(Error::Other(format!("does not fit this adapter: {}", plan.report())));
    }
    pipe.use_plan(&plan)?;
    pipe.check(&gp)?;
    let weights_hash = match hashes.get(&model_dir) {
        Some(h) => h.clone(),
        None => {
            let h = weights_hash(&model_dir)?;
            hashes.insert(model_dir.clone(), h.clone());
            h
        }
    };

    progress.phase("encode", json!({}));
    let embeds = pipe.encode_prompt(&gp, &mut progress)?;
    let steps = gp.num_inference_steps;
    progress.first_step = first;
    let every = app.checkpoint_every.max(1);
    let latents = pipe.denoise_resumable(&gp, &embeds, &mut progress, resume, &mut |i, latents, sched| {
        let done = i + 1;
        // Every few steps (schedulers whose state is saved), and always after the last: the
        // final latents let a failed decode be retried without denoising again.
        if (done % every == 0 && sched.resumable()) || done == steps {
            Checkpoint::capture(i, steps, latents, sched)?.write(&ckpt_path)?;
            app.store.update(id, "checkpoint_step = ?2", rusqlite::params![done as i64]).map_err(store_err)?;
            if fault("stall-after").is_some_and(|n| n == done.to_string()) {
                // Fault injection for tests: hold here until the process is killed, so a kill -9
                // lands after this checkpoint however fast the machine is.
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
        Ok(())
    })?;
    let final_latents = latents.to_f32()?;
    let latents_hash = hex(&Sha256::digest(bytemuck::cast_slice::<f32, u8>(&final_latents)));

    if fault("decode").is_some() {
        // Fault injection for tests: a decode that fails after the final latents are saved.
        return Err(Error::Other("decode failed (T2V_SERVE_FAULT=decode)".into()));
    }
    let frames = pipe.decode(&latents, &mut progress)?;
    progress.check_cancelled()?;

    progress.phase("write", json!({}));
    let info = &app.gpu.info;
    let provenance = json!({
        "job": id,
        "seed": p.seed,
        "model": p.model,
        "weights_sha256": weights_hash,
        "t2v_version": env!("CARGO_PKG_VERSION"),
        "adapter": info.name,
        "backend": format!("{:?}", info.backend),
        "driver": info.driver,
        "driver_info": info.driver_info,
        "scheduler": pipe.scheduler_for(&gp)?.kind().name(),
        "params": p,
        "latents_sha256": latents_hash,
        "resumed_from_step": first,
        "memory_plan": {
            "peak_bytes": plan.peak,
            "capacity_bytes": plan.capacity,
            "streamed_blocks": plan.streamed(),
            "streamed_bytes_per_step": plan.streamed_per_step(),
            "vae_tiled": plan.vae_tiling.is_some(),
            "report": plan.report(),
        },
    });
    let comment = format!("t2v {}", provenance);
    let (f, h, w) = (frames.frames, frames.height, frames.width);
    t2v::video::write_mp4_tagged(&dir.join("video.mp4"), &frames.data, f, h, w, p.fps, Some(&comment))?;
    t2v::video::write_gif(&dir.join("video.gif"), &frames.data, f, h, w, p.fps)?;
    let sidecar = serde_json::to_vec_pretty(&provenance).map_err(|e| Error::Other(e.to_string()))?;
    let json_path = dir.join("job.json");
    t2v::video::write_atomic(&json_path, |out| {
        out.write_all(&sidecar).map_err(|e| Error::Other(format!("{}: {e}", json_path.display())))
    })?;
    let base = format!("/api/jobs/{id}/files");
    let outputs = json!({
        "mp4": format!("{base}/video.mp4"),
        "gif": format!("{base}/video.gif"),
        "json": format!("{base}/job.json"),
        "frames": f, "height": h, "width": w,
        "latents_sha256": latents_hash,
    });
    Ok((outputs, provenance))
}


fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 over the weight files (name and digest of each; `*.index.json` shard maps are not
/// weights). Files in the Hugging Face cache are
/// links to blobs named by their own SHA-256 (the hub's LFS id), which is used without reading.
pub fn weights_hash(dir: &Path) -> Result<String> {
    let mut lines = Vec::new();
    // The components with weights: the UNet pipelines' or Wan's (a folder has one set).
    for sub in ["text_encoder", "unet", "transformer", "transformer_2", "vae"] {
        let d = dir.join(sub);
        if !d.is_dir() && matches!(sub, "unet" | "transformer" | "transformer_2") {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(|e| Error::Other(format!("{}: {e}", d.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors" || x == "bin"))
            .collect();
        files.sort();
        for f in files {
            let blob = std::fs::read_link(&f).ok().and_then(|t| t.file_name().map(|n| n.to_string_lossy().to_string()));
            let digest = match blob {
                Some(b) if b.len() == 64 && b.chars().all(|c| c.is_ascii_hexdigit()) => b,
                _ => {
                    let mut h = Sha256::new();
                    let mut file = std::fs::File::open(&f).map_err(|e| Error::Other(format!("{}: {e}", f.display())))?;
                    std::io::copy(&mut file, &mut h).map_err(|e| Error::Other(format!("{}: {e}", f.display())))?;
                    hex(&h.finalize())
                }
            };
            lines.push(format!("{sub}/{} {digest}\n", f.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        }
    }
    Ok(hex(&Sha256::digest(lines.concat().as_bytes())))
}

/// Progress as store events: phase, step i/N with s/step and ETA, decode k/F.
struct JobProgress<'a> {
    app: &'a App,
    id: i64,
    cancel: &'a AtomicBool,
    phase: &'static str,
    total: usize,
    done: usize,
    first_step: usize,
    started: Instant,
}

impl<'a> JobProgress<'a> {
    fn new(app: &'a App, id: i64, cancel: &'a AtomicBool) -> JobProgress<'a> {
        JobProgress { app, id, cancel, phase: "load", total: 0, done: 0, first_step: 0, started: Instant::now() }
    }

    fn phase(&mut self, phase: &'static str, extra: Value) {
        self.phase = phase;
        self.started = Instant::now();
        self.emit(extra);
    }

    fn emit(&self, extra: Value) {
        let mut data = json!({ "job": self.id, "phase": self.phase });
        if let (Some(m), Value::Object(e)) = (data.as_object_mut(), extra) {
            m.extend(e);
        }
        if let Err(e) = self.app.store.progress(self.id, data) {
            eprintln!("serve: {e}");
        }
    }
}

impl Progress for JobProgress<'_> {
    fn stage(&mut self, name: &str, total: usize) {
        let (phase, done) = match name {
            "denoising" => ("step", self.first_step),
            "decoding" => ("decode", 0),
            "encoding prompt" => ("encode", 0),
            _ => ("load", 0),
        };
        self.total = total;
        self.done = done;
        let extra = match phase {
            "step" => json!({ "step": done, "steps": total, "resumed_from": self.first_step }),
            "decode" => json!({ "frame": 0, "frames": total }),
            _ => json!({}),
        };
        self.phase(phase, extra);
    }

    fn tick(&mut self) {
        self.done += 1;
        let ran = (self.done - if self.phase == "step" { self.first_step } else { 0 }).max(1);
        let per = self.started.elapsed().as_secs_f64() / ran as f64;
        let eta = per * self.total.saturating_sub(self.done) as f64;
        let extra = match self.phase {
            "step" => json!({ "step": self.done, "steps": self.total, "s_per_step": per, "eta_s": eta, "resumed_from": self.first_step }),
            "decode" => json!({ "frame": self.done, "frames": self.total, "s_per_frame": per, "eta_s": eta }),
            _ => return,
        };
        self.emit(extra);
    }

    fn note(&mut self, msg: &str) {
        self.emit(json!({ "note": msg }));
    }

    fn check_cancelled(&self) -> Result<()> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Error::Other(CANCELLED.into()));
        }
        Ok(())
    }
}

/// A fault injected for tests: `T2V_SERVE_FAULT` is a comma-separated list of `name` or
/// `name:value` (`decode`: decoding fails after the final latents are saved; `stall-after:N`:
/// the worker stops after saving the checkpoint of step N). Returns the value ("" for none).
fn fault(name: &str) -> Option<String> {
    let v = std::env::var("T2V_SERVE_FAULT").ok()?;
    v.split(',').find_map(|f| {
        let (n, val) = f.trim().split_once(':').unwrap_or((f.trim(), ""));
        (n == name).then(|| val.to_string())
    })
}
