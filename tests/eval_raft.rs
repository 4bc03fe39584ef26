//! RAFT and VBench's dynamic degree / static filter against princeton-vl/RAFT's own code and
//! VBench's functions (fixtures: `tools/reference/vbench_fixtures.py raft`): a RAFT-large with
//! every width / 16 and random weights, saved as a DataParallel `.pth` like raft-things.pth.
//! Encoder features and the first correlation lookups at rel-L2 ≤ 1e-4; the flows after 20
//! iterations at a looser bound (below); every dynamic/static decision equal to VBench's.

mod common;
use common::fixtures::{fixtures, read_raw, Raw};
use t2v::models::raft::{prepare_frame, RaftModel, RaftTrace, ITERS};

fn cases() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("vbench/cases.json")).unwrap()).unwrap()
}

fn get<'a>(r: &'a [Raw], name: &str) -> &'a Raw {
    r.iter().find(|x| x.0 == name).unwrap_or_else(|| panic!("no {name}"))
}

fn f64s(r: &Raw) -> Vec<f64> {
    bytemuck::pod_collect_to_vec::<u8, f32>(&r.3).iter().map(|&x| x as f64).collect()
}

/// clip_fixtures.py's `image(h, w, seed)`: the same integer recipe (as tests/eval_clip.rs).
fn image(h: usize, w: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(h * w * 3);
    for y in 0..h as u64 {
        for x in 0..w as u64 {
            for c in 0..3u64 {
                let mut z = ((y * w as u64 + x) * 3 + c).wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let noise = (z >> 56) as i64;
                let block = (((x / 5 + y / 7 + c) % 2) * 255) as i64;
                out.push(((3 * block + noise) / 4) as u8);
            }
        }
    }
    out
}

/// vbench_fixtures.py's `raft_frames`: frame k is the image at column offset pan·k, (t, h, w, 3).
fn frames(v: &serde_json::Value) -> (Vec<u8>, usize, usize, usize) {
    let u = |k: &str| v[k].as_u64().unwrap() as usize;
    let (t, h, w, pan) = (u("frames"), u("height"), u("width"), u("pan"));
    let bw = w + pan * (t - 1);
    let base = image(h, bw, v["seed"].as_u64().unwrap());
    let mut out = Vec::with_capacity(t * h * w * 3);
    for k in 0..t {
        for y in 0..h {
            out.extend_from_slice(&base[(y * bw + pan * k) * 3..(y * bw + pan * k + w) * 3]);
        }
    }
    (out, t, h, w)
}

fn model() -> RaftModel {
    RaftModel::load(&common::gpu(), &fixtures().join("vbench").join(cases()["raft_model"].as_str().unwrap())).unwrap()
}

#[test]
fn raft_matches_princeton_vl() {
    let c = cases();
    let r = read_raw(&fixtures().join("vbench/raft.safetensors"));
    let v = c["raft_videos"].as_array().unwrap().iter().find(|v| v["name"] == "pan").unwrap();
    let (rgb, _, h, w) = frames(v);
    let sum: u64 = rgb.iter().map(|&b| b as u64).sum();
    assert_eq!(sum, v["sum"].as_u64().unwrap(), "the frames are the fixture's");
    let m = model();
    let plane = h * w * 3;
    let (a, hp, wp) = prepare_frame(&rgb[..plane], h, w);
    let (b, _, _) = prepare_frame(&rgb[plane..2 * plane], h, w);
    let mut trace = RaftTrace::default();
    let t0 = std::time::Instant::now();
    let up = m.raft.forward(&a, &b, hp, wp, ITERS, Some(&mut trace)).unwrap().to_f32().unwrap();
    eprintln!("RAFT (widths /16) on {hp}×{wp}, {ITERS} iterations: {:.2} s", t0.elapsed().as_secs_f64());
    let mut worst = Vec::new();
    for (name, got, tol) in [
        // Features and the lookups of iteration 1: a few f32 roundings deep.
        ("pan_fmap", &trace.fmap, 1e-4),
        ("pan_net", &trace.net, 1e-4),
        ("pan_inp", &trace.inp, 1e-4),
        ("pan_corr1", &trace.corr1, 1e-4),
        // After 20 iterations: each feeds its flow back through the bilinear lookup, whose
        // weights move with the coordinates, so f32 rounding (features at ~1e-6) is carried and
        // can grow through 20 GRU steps (how much depends on the device's FMA contraction);
        // measured 1.9e-6 / 8.0e-7 on lavapipe, bound 10× the features'.
        ("pan_flow_low", &trace.flow_low, 1e-3),
        ("pan_flow_up", &up, 1e-3),
    ] {
        let want = f64s(get(&r, name));
        assert_eq!(got.len(), want.len(), "{name}: length");
        let e = common::rel_l2(got, &want);
        eprintln!("{name}: rel-L2 {e:.2e}");
        worst.push((name, e, tol));
    }
    for (name, e, tol) in worst {
        assert!(e <= tol, "{name}: rel-L2 {e:.3e} > {tol:e}");
    }
}
