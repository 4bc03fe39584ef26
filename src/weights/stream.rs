//! Weight streaming: a model's big blocks as [`Unit`]s that either stay on the device for the
//! whole run (resident) or live in host memory — the memory-mapped checkpoint, or a host copy
//! converted to the device dtype once — and are uploaded each time they run, then released.
//!
//! The memory plan decides which units stream (`pipelines::plan::within_budget`); a streamed
//! unit's buffers are ordinary allocations of the run, so the planner sees them, the schedule
//! gives them slots and the measured peak still equals the plan. Models fetch the next unit
//! before running the current one ([`Unit::fetch`] one ahead), which double-buffers: the host
//! copy of unit i+1 is written while the device still runs the work of unit i−1 and i that is
//! already submitted (uploads flush the queued dispatches first).

use crate::error::Result;
use crate::Gpu;
use std::sync::Arc;

type Loader<T> = Box<dyn Fn() -> Result<T> + Send + Sync>;

/// One block of a model's weights, named by its state-dict prefix (`blocks.7`, `up_blocks.1`).
pub struct Unit<T> {
    pub name: String,
    /// Device bytes of its parameters (as requested, without the pool's size classes),
    /// measured when first uploaded; 0 until then.
    pub bytes: u64,
    resident: Option<T>,
    load: Loader<T>,
    gpu: Arc<Gpu>,
}

/// A fetched unit: the resident one borrowed, or a streamed one uploaded for this use.
pub enum Held<'a, T> {
    Borrowed(&'a T),
    Owned(T),
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Borrowed(t) => t,
            Held::Owned(t) => t,
        }
    }
}

impl<T> Unit<T> {
    /// A unit uploaded now and kept (`load` is kept too, to stream it later if a plan says so).
    pub fn resident(gpu: &Arc<Gpu>, name: impl Into<String>, load: impl Fn() -> Result<T> + Send + Sync + 'static) -> Result<Unit<T>> {
        let mut u = Unit { name: name.into(), bytes: 0, resident: None, load: Box::new(load), gpu: gpu.clone() };
        let (t, bytes) = u.upload()?;
        u.resident = Some(t);
        u.bytes = bytes;
        Ok(u)
    }

    /// A unit left in host memory until it runs.
    pub fn streamed(gpu: &Arc<Gpu>, name: impl Into<String>, bytes: u64, load: impl Fn() -> Result<T> + Send + Sync + 'static) -> Unit<T> {
        Unit { name: name.into(), bytes, resident: None, load: Box::new(load), gpu: gpu.clone() }
    }

    fn upload(&self) -> Result<(T, u64)> {
        let before = self.gpu.memory().live_requested;
        let t = (self.load)()?;
        Ok((t, self.gpu.memory().live_requested.saturating_sub(before)))
    }

    pub fn is_streamed(&self) -> bool {
        self.resident.is_none()
    }

    /// The resident block, if it is one (tests and per-module checks use resident models).
    pub fn get(&self) -> Option<&T> {
        self.resident.as_ref()
    }

    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.resident.as_mut()
    }

    /// Keeps the unit on the device (`true`, uploading it now if it was streamed) or releases
    /// its buffers and streams it from now on (`false`).
    pub fn set_resident(&mut self, keep: bool) -> Result<()> {
        match (keep, self.resident.is_some()) {
            (true, false) => {
                let (t, bytes) = self.upload()?;
                self.resident = Some(t);
                self.bytes = bytes;
            }
            (false, true) => self.resident = None,
            _ => {}
        }
        Ok(())
    }

    /// The unit for one use: borrowed when resident, else uploaded now (its bytes counted in
    /// `Gpu::streamed_bytes`) and released when the [`Held`] drops.
    pub fn fetch(&self) -> Result<Held<'_, T>> {
        if let Some(t) = &self.resident {
            return Ok(Held::Borrowed(t));
        }
        let (t, bytes) = self.upload()?;
        self.gpu.note_streamed(bytes);
        Ok(Held::Owned(t))
    }
}
