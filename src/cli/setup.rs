//! What `generate` (all its pipelines), `compare` and `serve` share around a run: the seed,
//! choosing a model (name or folder → folder, family, defaults), the memory-plan check, and
//! writing the video.

use super::settings::Settings;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use t2v::pipelines::{Defaults, Family, Frames, MemoryPlan, PipelineClass};
use t2v::weights::hub;
use t2v::{Error, Gpu};

/// The run's seed: the config's, or a fresh one (printed, so it can be repeated).
pub fn seed(s: &Settings) -> u64 {
    if !s.randomize_seed {
        return s.seed;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    // Keep seeds in 32 bits: easy to type back, same stream as numpy's RandomState.
    let seed = h.finish() & 0xffff_ffff;
    eprintln!("seed: {seed} (randomize_seed is on; pass --seed {seed} to repeat this video)");
    seed
}

/// A model as `--model` names it.
pub struct Model {
    /// Its folder; None when only planning a named model (its configs ship in the binary).
    pub dir: Option<PathBuf>,
    pub family: Family,
    pub defaults: Defaults,
}

impl Model {
    /// Resolves `name` (a known name, `tiny-random` or a folder; `pipeline` overrides what
    /// the folder's `model_index.json` says). Without `need_weights` a named model is planned
    /// from its shipped configs and nothing downloads.
    pub fn choose(name: &str, pipeline: Option<PipelineClass>, gpu: &Arc<Gpu>, need_weights: bool) -> t2v::Result<Model> {
        let known = hub::known(name);
        let (dir, family) = match known {
            Some(k) if !need_weights => (None, Family::builtin(k)?),
            _ => {
                let d = hub::resolve(name, gpu)?;
                let f = Family::of_folder(&d, pipeline)?;
                (Some(d), f)
            }
        };
        if name == t2v::weights::tiny_random::NAME {
            eprintln!("note: tiny-random has random weights — its video is noise; it exercises the whole path offline");
        }
        let defaults = family.defaults(known.map(|m| m.size));
        Ok(Model { dir, family, defaults })
    }

    pub fn dir(&self) -> t2v::Result<&Path> {
        self.dir.as_deref().ok_or_else(|| Error::Other("no model folder".into()))
    }
}

/// Prints a plan (`label`: which run) and, on a dry run, prints it to stdout too.
pub fn show_plan(label: &str, report: &str, dry_run: bool) {
    eprintln!("memory plan{label}: {}", report.replace('\n', "\n  "));
    if dry_run {
        println!("{report}");
    }
}

/// An error saying what to shrink when `plan` does not fit the adapter.
pub fn refuse_unless_fits(gpu: &Gpu, plan: &MemoryPlan, shrink: &str) -> t2v::Result<()> {
    if plan.fits() {
        return Ok(());
    }
    Err(Error::Other(format!("{} cannot run this: {}\n  {shrink}", gpu.info.name, plan.report())))
}

/// After a run: a note if it left its plan, then the video written (temp file + rename).
pub fn write_video(gpu: &Gpu, out: &Path, frames: &Frames, fps: u32, started: Instant) -> t2v::Result<()> {
    if let Some(d) = gpu.schedule_divergence() {
        eprintln!("note: the run left the memory plan ({d}); the rest was allocated on demand");
    }
    t2v::video::write(out, &frames.data, frames.frames, frames.height, frames.width, fps)
        .map_err(|e| Error::Other(format!("writing {}: {e}", out.display())))?;
    eprintln!(
        "wrote {} ({} frames, {}×{}, {fps} fps) in {:.1} s",
        out.display(),
        frames.frames,
        frames.width,
        frames.height,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
