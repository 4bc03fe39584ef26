//! Denoising checkpoints: the latents after some step plus the scheduler's multistep history,
//! read back from the device and kept in a file, so a run interrupted by a crash continues from
//! there (`TextToVideo::denoise_resumable`) instead of from the noise. A checkpoint taken after
//! the last step holds the final latents: a failed decode is retried from it without
//! denoising again.
//!
//! File layout: `T2VCKPT2`, a little-endian u64 header length, the JSON header, then the latents
//! and each of the scheduler state's tensors (in the header's order) as little-endian f32.
//! Written under a temporary name and renamed. Version-1 files (`T2VCKPT1`: one history tensor,
//! which only DPM-Solver kept) are still read.

use crate::error::{Error, Result};
use crate::schedulers::{Scheduler, SchedulerState, DPM_SOLVER_HISTORY};
use crate::tensor::Tensor;
use crate::Gpu;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"T2VCKPT2";
const MAGIC_V1: &[u8; 8] = b"T2VCKPT1";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    next_step: usize,
    num_steps: usize,
    scheduler: String,
    shape: Vec<usize>,
    state: Option<StateHeader>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateHeader {
    step: usize,
    scalars: Vec<(String, i64)>,
    /// Name and shape of each tensor, in file order.
    tensors: Vec<(String, Vec<usize>)>,
}

#[derive(Debug, Clone, Deserialize)]
struct HeaderV1 {
    next_step: usize,
    num_steps: usize,
    scheduler: String,
    shape: Vec<usize>,
    history_step: Option<usize>,
    history_shape: Vec<usize>,
}

/// A [`SchedulerState`] on the host: what a checkpoint file holds of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedState {
    pub step: usize,
    pub scalars: Vec<(String, i64)>,
    /// Name, shape, values.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
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
    /// The scheduler's history (None for one-step schedulers).
    pub state: Option<SavedState>,
}

impl Checkpoint {
    /// Reads back the latents after step `done` (and the scheduler's history). This waits for
    /// the device, so loops take one every few steps, not every step. Before the last step
    /// only for schedulers that are [`resumable`](Scheduler::resumable).
    pub fn capture(done: usize, num_steps: usize, latents: &Tensor, sched: &dyn Scheduler) -> Result<Checkpoint> {
        let state = match sched.saved_state() {
            Some(s) => Some(SavedState {
                step: s.step,
                scalars: s.scalars,
                tensors: s.tensors.iter().map(|(n, t)| Ok((n.clone(), t.shape().to_vec(), t.to_f32()?))).collect::<Result<_>>()?,
            }),
            None => None,
        };
        Ok(Checkpoint {
            next_step: done + 1,
            num_steps,
            scheduler: sched.kind().class_name().to_string(),
            shape: latents.shape().to_vec(),
            latents: latents.to_f32()?,
            state,
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
        if let Some(s) = &self.state {
            let mut state = SchedulerState::new(s.step);
            state.scalars = s.scalars.clone();
            for (name, shape, values) in &s.tensors {
                state.tensors.push((name.clone(), Tensor::from_f32(gpu, shape, values)?));
            }
            sched.restore_state(state)?;
        }
        Tensor::from_f32(gpu, shape, &self.latents)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let header = Header {
            next_step: self.next_step,
            num_steps: self.num_steps,
            scheduler: self.scheduler.clone(),
            shape: self.shape.clone(),
            state: self.state.as_ref().map(|s| StateHeader {
                step: s.step,
                scalars: s.scalars.clone(),
                tensors: s.tensors.iter().map(|(n, shape, _)| (n.clone(), shape.clone())).collect(),
            }),
        };
        let json = serde_json::to_vec(&header).map_err(|e| Error::Other(format!("checkpoint header: {e}")))?;
        let io = |e: std::io::Error| Error::Other(format!("{}: writing checkpoint: {e}", path.display()));
        crate::video::write_atomic(path, |out| {
            out.write_all(MAGIC).map_err(io)?;
            out.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
            out.write_all(&json).map_err(io)?;
            out.write_all(bytemuck::cast_slice(&self.latents)).map_err(io)?;
            for (_, _, values) in self.state.iter().flat_map(|s| &s.tensors) {
                out.write_all(bytemuck::cast_slice(values)).map_err(io)?;
            }
            Ok(())
        })
    }

    pub fn read(path: &Path) -> Result<Checkpoint> {
        let bad = |msg: String| Error::Other(format!("{}: {msg}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let v1 = bytes.len() >= 8 && &bytes[..8] == MAGIC_V1;
        if bytes.len() < 16 || !(v1 || &bytes[..8] == MAGIC) {
            return Err(bad("not a t2v checkpoint".into()));
        }
        let n = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| bad("short header".into()))?) as usize;
        let body = bytes.get(16..).unwrap_or(&[]);
        if n > body.len() {
            return Err(bad("truncated header".into()));
        }
        let mut at = 0usize; // in floats after the header
        let mut floats = |shape: &[usize]| -> Result<Vec<f32>> {
            let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("tensor too large".into()))?;
            let b = at
                .checked_add(len)
                .and_then(|end| body.get(n + at * 4..n.checked_add(end.checked_mul(4)?)?))
                .ok_or_else(|| bad("truncated data".into()))?;
            at += len;
            Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        };
        if v1 {
            let h: HeaderV1 = serde_json::from_slice(&body[..n]).map_err(|e| bad(format!("header: {e}")))?;
            let latents = floats(&h.shape)?;
            let state = match h.history_step {
                Some(step) => Some(SavedState {
                    step,
                    scalars: Vec::new(),
                    tensors: vec![(DPM_SOLVER_HISTORY.to_string(), h.history_shape.clone(), floats(&h.history_shape)?)],
                }),
                None => None,
            };
            return Ok(Checkpoint { next_step: h.next_step, num_steps: h.num_steps, scheduler: h.scheduler, shape: h.shape, latents, state });
        }
        let h: Header = serde_json::from_slice(&body[..n]).map_err(|e| bad(format!("header: {e}")))?;
        let latents = floats(&h.shape)?;
        let state = match h.state {
            Some(s) => Some(SavedState {
                step: s.step,
                scalars: s.scalars,
                tensors: s
                    .tensors
                    .into_iter()
                    .map(|(name, shape)| {
                        let values = floats(&shape)?;
                        Ok((name, shape, values))
                    })
                    .collect::<Result<_>>()?,
            }),
            None => None,
        };
        Ok(Checkpoint { next_step: h.next_step, num_steps: h.num_steps, scheduler: h.scheduler, shape: h.shape, latents, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("t2v-ckpt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn state_round_trips_through_a_file() {
        let c = Checkpoint {
            next_step: 4,
            num_steps: 6,
            scheduler: "UniPCMultistepScheduler".into(),
            shape: vec![1, 2],
            latents: vec![1.0, -2.5],
            state: Some(SavedState {
                step: 3,
                scalars: vec![("lower_order_nums".into(), 2), ("this_order".into(), 2)],
                tensors: vec![("a".into(), vec![3], vec![0.5, 1.5, 2.5]), ("b".into(), vec![1, 1], vec![-7.0])],
            }),
        };
        let p = temp("v2.bin");
        c.write(&p).unwrap();
        let r = Checkpoint::read(&p).unwrap();
        assert_eq!((r.next_step, r.num_steps, &r.scheduler, &r.shape, &r.latents), (4, 6, &c.scheduler, &c.shape, &c.latents));
        assert_eq!(r.state, c.state);
        // truncated data is an error, not a panic
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        assert!(Checkpoint::read(&p).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn version_1_files_are_read_as_dpm_solver_history() {
        let json = br#"{"next_step":3,"num_steps":5,"scheduler":"DPMSolverMultistepScheduler","shape":[2],"history_step":1,"history_shape":[2]}"#;
        let mut bytes = b"T2VCKPT1".to_vec();
        bytes.extend((json.len() as u64).to_le_bytes());
        bytes.extend(json);
        for v in [1.0f32, 2.0, 3.0, 4.0] {
            bytes.extend(v.to_le_bytes());
        }
        let p = temp("v1.bin");
        std::fs::write(&p, bytes).unwrap();
        let r = Checkpoint::read(&p).unwrap();
        assert_eq!((r.next_step, r.latents.clone()), (3, vec![1.0, 2.0]));
        assert_eq!(r.state.unwrap(), SavedState { step: 1, scalars: vec![], tensors: vec![(DPM_SOLVER_HISTORY.into(), vec![2], vec![3.0, 4.0])] });
    }
}
