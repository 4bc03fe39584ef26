//! `t2v devices` and `t2v bench kernels` as a user runs them.

use std::process::Command;

fn t2v(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_t2v")).args(args).output().expect("run t2v");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn devices_lists_the_adapter() {
    let (ok, out, err) = t2v(&["devices"]);
    assert!(ok, "{err}");
    assert!(out.contains("selected:") && out.contains("max storage binding"), "{out}");
    if std::env::var("CI").is_ok() {
        assert!(out.to_lowercase().contains("llvmpipe"), "CI runs on lavapipe: {out}");
    }
}

#[test]
fn bench_kernels_prints_a_table() {
    let (ok, out, err) = t2v(&["bench", "kernels", "--filter", "issue shape", "--budget", "0.01"]);
    assert!(ok, "{err}");
    assert!(out.contains("| kernel |") && out.contains("GFLOP/s"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("| linear | issue shape")), "{out}");
}

#[test]
fn unknown_backend_is_a_clear_error() {
    let (ok, _, err) = t2v(&["devices", "--backend", "glide"]);
    assert!(!ok);
    assert!(err.contains("unknown backend 'glide'"), "{err}");
}

/// `bench pipeline` on a WanPipeline folder (the tiny fixture): transformer steps, the stages,
/// and the generation served from its plan; `bench kernels --shapes wan` at a small token count.
#[test]
fn bench_runs_wan() {
    let wan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan/tiny-wan");
    let (ok, out, err) =
        t2v(&["bench", "pipeline", "--model", wan.to_str().unwrap(), "--frames", "5", "--height", "16", "--width", "32", "--steps", "2", "--unet-steps", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("(WanPipeline)") && out.contains("prompt encoding (UMT5") && out.contains("VAE decode, 5 frames"), "{out}");
    let (ok, out, err) = t2v(&["bench", "kernels", "--shapes", "wan", "--tokens", "64", "--heads", "2", "--filter", "wan self", "--budget", "0.01"]);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("| attention | wan self B=1 Lq=64 Lk=64 H=2 D=128")), "{out}");
    let (ok, _, err) = t2v(&["bench", "kernels", "--shapes", "sdxl"]);
    assert!(!ok && err.contains("--shapes sdxl"), "{err}");
}
