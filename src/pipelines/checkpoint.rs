//! Denoising checkpoints: the latents after some step plus the scheduler's multistep history,
//! read back from the device and kept in a file, so a run interrupted by a crash continues from
//! there (`TextToVideo::denoise_resumable`) instead of from the noise. A checkpoint taken after
//! the last step holds the final latents: a failed decode is retried from it without
//! denoising again.
//!
//! File layout: `T2VCKPT1`, a little-endian u64 header length, the JSON header, then the latents
//! and the history as little-endian f32. Written under a temporary name and renamed.

use crate::error::{Error, Result};
use crate::schedulers::Scheduler;
use crate::tensor::Tensor;
use crate::Gpu;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"T2VCKPT1";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    next_step: usize,
    num_steps: usize,
    scheduler: String,
    shape: Vec<usize>,
    history_step: Option<usize>,
    history_shape: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The first step still to run (`num_steps` when denoising is complete).
    pub next_step: usize,
    pub num_steps: usize,
    /// The scheduler's class name: a checkpoint never continues under another scheduler.
    pub scheduler: String,
    pub shape: Vec<usize>,
    pub latents: Vec<f32>,
    /// The scheduler's history: the step it belongs to, its shape and values.
    pub history: Option<(usize, Vec<usize>, Vec<f32>)>,
}

impl Checkpoint {
    /// Reads back the latents after step `done` (and the scheduler's history). This waits for
    /// the device, so loops take one every few steps, not every step. Before the last step
    /// only for schedulers that are [`resumable`](Scheduler::resumable).
    pub fn capture(done: usize, num_steps: usize, latents: &Tensor, sched: &dyn Scheduler) -> Result<Checkpoint> {
        let history = match sched.saved_state() {
            Some((i, t)) => Some((i, t.shape().to_vec(), t.to_f32()?)),
            None => None,
        };
        Ok(Checkpoint {
            next_step: done + 1,
            num_steps,
            scheduler: sched.kind().class_name().to_string(),
            shape: latents.shape().to_vec(),
            latents: latents.to_f32()?,
            history,
        })
    }

    /// The latents to continue from, with `sched` (after `set_timesteps`) given its history
    /// back. Refuses a checkpoint of another shape, step count or scheduler.
    pub fn restore(&self, gpu: &Arc<Gpu>, shape: &[usize], num_steps: usize, sched: &mut dyn Scheduler) -> Result<Tensor> {
        let class = sched.kind().class_name();
        if self.shape != shape || self.num_steps != num_steps || self.scheduler != class || self.next_step > num_steps {
            return Err(Error::Other(format!(
                "checkpoint is of latents {:?}, {} steps, {} (at step {}); this run is {shape:?}, {num_steps} steps, {class}",
                self.shape, self.num_steps, self.scheduler, self.next_step
            )));
        }
        if self.next_step < num_steps && !sched.resumable() {
            return Err(Error::Other(format!("{class} cannot resume part-way (its history is not saved); start the run again")));
        }
        if let Some((i, hs, h)) = &self.history {
            sched.restore_state(*i, Tensor::from_f32(gpu, hs, h)?)?;
        }
        Tensor::from_f32(gpu, shape, &self.latents)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let header = Header {
            next_step: self.next_step,
            num_steps: self.num_steps,
            scheduler: self.scheduler.clone(),
            shape: self.shape.clone(),
            history_step: self.history.as_ref().map(|h| h.0),
            history_shape: self.history.as_ref().map(|h| h.1.clone()).unwrap_or_default(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| Error::Other(format!("checkpoint header: {e}")))?;
        let io = |e: std::io::Error| Error::Other(format!("{}: writing checkpoint: {e}", path.display()));
        crate::video::write_atomic(path, |out| {
            out.write_all(MAGIC).map_err(io)?;
            out.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
            out.write_all(&json).map_err(io)?;
            let history = self.history.as_ref().map(|h| h.2.as_slice()).unwrap_or(&[]);
            out.write_all(bytemuck::cast_slice(&self.latents)).map_err(io)?;
            out.write_all(bytemuck::cast_slice(history)).map_err(io)
        })
    }

    pub fn read(path: &Path) -> Result<Checkpoint> {
        let bad = |msg: String| Error::Other(format!("{}: {msg}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("not a t2v checkpoint".into()));
        }
        let n = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| bad("short header".into()))?) as usize;
        let body = bytes.get(16..).unwrap_or(&[]);
        if n > body.len() {
            return Err(bad("truncated header".into()));
        }
        let h: Header = serde_json::from_slice(&body[..n]).map_err(|e| bad(format!("header: {e}")))?;
        let floats = |len: usize, at: usize| -> Result<Vec<f32>> {
            let b = body.get(n + at * 4..n + (at + len) * 4).ok_or_else(|| bad("truncated data".into()))?;
            Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        };
        let len: usize = h.shape.iter().product();
        let latents = floats(len, 0)?;
        let history = match h.history_step {
            Some(i) => Some((i, h.history_shape.clone(), floats(h.history_shape.iter().product(), len)?)),
            None => None,
        };
        Ok(Checkpoint { next_step: h.next_step, num_steps: h.num_steps, scheduler: h.scheduler, shape: h.shape, latents, history })
    }
}
