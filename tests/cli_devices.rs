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
