/// What a pipeline reports while it runs; the CLI draws progress bars from it.
pub trait Progress {
    /// A new stage ("encoding prompt", "denoising", "decoding") of `total` units begins.
    fn stage(&mut self, name: &str, total: usize);
    /// One unit of the current stage is done.
    fn tick(&mut self);
    /// A message for the user (warnings such as prompt truncation).
    fn note(&mut self, msg: &str) {
        eprintln!("{msg}");
    }
    /// An error when the run should stop now (a cancelled job); checked before every
    /// denoising step and every decoded frame.
    fn check_cancelled(&self) -> crate::Result<()> {
        Ok(())
    }
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&mut self, _: &str, _: usize) {}
    fn tick(&mut self) {}
    fn note(&mut self, _: &str) {}
}
