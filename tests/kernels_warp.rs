//! The Text2Video-Zero warp kernel (shaders/warp.wgsl): grid_sample nearest with reflection
//! padding against the CPU reference on awkward shapes, and against torch's own grid_sample
//! and diffusers' `create_motion_field_and_warp_latents` (tests/fixtures/zero/warp.safetensors,
//! made by tools/reference/zero_fixtures.py). Nearest sampling copies values, so the bound is
//! exact equality.

mod common;
use common::fixtures::{dump_at, fixtures};
use common::reference::cpu_grid_sample_nearest_reflection;
use common::*;
use t2v::ops::warp::{grid_sample_nearest_reflection, motion_grid, warp_latents};

#[test]
fn grid_sample_matches_cpu_reference() {
    let mut rng = Rng::new(12);
    // odd sizes, 1-pixel planes, output larger and smaller than the input, grids reaching far
    // outside [-1, 1] (several reflections) and exactly onto the borders.
    for &(n, c, h, w, oh, ow) in &[(1, 1, 1, 1, 2, 3), (2, 4, 5, 7, 5, 7), (3, 3, 2, 9, 6, 4), (1, 5, 13, 1, 3, 8)] {
        let x = rng.normals(n * c * h * w, 1.0);
        let mut grid: Vec<f32> = (0..n * oh * ow * 2).map(|_| (rng.uniform() - 0.5) * 9.0).collect();
        grid[0] = -1.0;
        grid[1] = 1.0;
        let want = cpu_grid_sample_nearest_reflection(&x, &grid, n, c, h, w, oh, ow);
        let y = grid_sample_nearest_reflection(&upload(&[n, c, h, w], &x), &upload(&[n, oh, ow, 2], &grid)).unwrap();
        assert_eq!(y.shape(), &[n, c, oh, ow]);
        assert_close(&format!("grid_sample {n}x{c}x{h}x{w} -> {oh}x{ow}"), &y.to_f32().unwrap(), &want, 0.0);
    }
}

#[test]
fn grid_sample_and_motion_warp_match_torch() {
    let d = dump_at(&fixtures().join("zero/warp.safetensors"), "warp");
    let y = grid_sample_nearest_reflection(&d.input("x"), &d.input("grid")).unwrap();
    d.check("out", &y, 0.0);

    let sx: f64 = d.meta["motion_field_strength_x"].parse().unwrap();
    let sy: f64 = d.meta["motion_field_strength_y"].parse().unwrap();
    let ids: Vec<usize> = serde_json::from_str(&d.meta["frame_ids"]).unwrap();
    let warped = warp_latents(&d.input("motion_in"), sx, sy, &ids).unwrap();
    d.check("motion_out", &warped, 0.0);
    // the motion moved something (a zero field is the identity)
    assert_ne!(d.host("motion_in"), d.host("motion_out"));
    let id = motion_grid(3, 4, 0.0, 0.0);
    let still = grid_sample_nearest_reflection(&upload(&[1, 1, 3, 4], &(0..12).map(|i| i as f32).collect::<Vec<_>>()), &upload(&[1, 3, 4, 2], &id)).unwrap();
    assert_eq!(still.to_f32().unwrap(), (0..12).map(|i| i as f32).collect::<Vec<_>>());
}
