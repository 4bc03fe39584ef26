//! The runtime under the kernels: poisoning, the pool, batching, the preprocessor, errors.

mod common;
use common::*;
use t2v::gpu::{preprocess, AdapterSelector};
use t2v::ops::elementwise as ew;
use t2v::{DType, Error, Gpu, Tensor};

#[test]
fn fresh_tensors_are_poisoned_in_tests() {
    let t = Tensor::empty(&gpu(), &[37], DType::F32).unwrap();
    assert!(t.to_f32().unwrap().iter().all(|v| v.is_nan()));
    let z = Tensor::zeros(&gpu(), &[37], DType::F32).unwrap();
    assert!(z.to_f32().unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn pool_reuses_buffers_and_tracks_the_peak() {
    // A private device so other tests' allocations don't move the counters.
    let g = Gpu::from_env().unwrap();
    let before = g.memory();
    assert_eq!(before.live, 0);
    {
        let a = Tensor::zeros(&g, &[1 << 20], DType::F32).unwrap();
        let _b = ew::scale(&a, 2.0).unwrap();
        assert_eq!(g.memory().live, 8 << 20);
    }
    let m = g.memory();
    assert_eq!(m.live, 0);
    assert_eq!(m.peak_live, 8 << 20);
    assert_eq!(m.allocated, 8 << 20, "buffers stay pooled");
    // Same sizes again: served from the pool, nothing new allocated.
    let a = Tensor::zeros(&g, &[1 << 20], DType::F32).unwrap();
    let b = ew::scale(&a, 2.0).unwrap();
    assert_eq!(g.memory().allocated, 8 << 20);
    assert!(b.to_f32().unwrap().iter().all(|&v| v == 0.0));
    drop((a, b));
    g.trim();
    assert_eq!(g.memory().allocated, 0);
}

#[test]
fn schedules_serve_planned_slots_and_never_a_busy_one() {
    use t2v::gpu::schedule::Schedule;
    let g = Gpu::from_env().unwrap();
    // Three 4 KiB tensors: the first two overlap in time, the third comes after the first.
    let s = Schedule { slots: vec![4096, 4096], assign: vec![(4096, 0), (4096, 1), (4096, 0)], later: Vec::new() };
    g.install_schedule(&s).unwrap();
    assert_eq!(g.memory().allocated, 8192, "slots are made at install");
    let a = Tensor::zeros(&g, &[1024], DType::F32).unwrap();
    let b = ew::scale(&a, 2.0).unwrap();
    drop(a);
    let c = ew::scale(&b, 2.0).unwrap();
    assert_eq!(g.schedule_divergence(), None);
    assert_eq!(g.memory().allocated, 8192, "nothing beyond the slots");
    // A fourth allocation was not planned: the pool serves it, and the schedule says so.
    let d = ew::scale(&c, 2.0).unwrap();
    assert!(g.schedule_divergence().unwrap().contains("allocation 3"));
    assert_eq!(g.memory().allocated, 8192 + 4096);
    // Reinstalled while c holds slot 0: the first allocation (planned into slot 0) must not
    // get it.
    g.install_schedule(&s).unwrap();
    let e = Tensor::zeros(&g, &[1024], DType::F32).unwrap();
    assert!(g.schedule_divergence().unwrap().contains("still in use"));
    assert!(c.to_f32().unwrap().iter().all(|&v| v == 0.0) && e.to_f32().unwrap().iter().all(|&v| v == 0.0));
    // Uninstalled while b and c hold both slots: each slot is uncounted when its tensor goes.
    g.clear_schedule();
    drop((b, c));
    drop((d, e));
    g.trim();
    assert_eq!(g.memory().allocated, 0);
    // A schedule whose slot cannot hold its allocation is refused.
    let bad = Schedule { slots: vec![1024], assign: vec![(4096, 0)], later: Vec::new() };
    assert!(g.install_schedule(&bad).unwrap_err().to_string().contains("no slot"));
}

#[test]
fn a_chain_of_dispatches_is_one_submit_with_correct_order() {
    // 200 dependent ops recorded without readback; buffers freed mid-chain get reused, which
    // must not break ordering.
    let g = gpu();
    let mut x = Tensor::from_f32(&g, &[1000], &vec![1.0; 1000]).unwrap();
    for _ in 0..200 {
        let y = ew::scale(&x, 1.01).unwrap();
        x = ew::add(&y, &x).unwrap(); // x ← 2.01·x
        x = ew::scale(&x, 0.5).unwrap(); // x ← 1.005·x
    }
    let want = 1.005f64.powi(200);
    for v in x.to_f32().unwrap() {
        assert!(((v as f64) - want).abs() / want < 1e-5, "{v} vs {want}");
    }
}

#[test]
fn views_and_reshapes() {
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let t = upload(&[4, 6], &data);
    assert_eq!(t.narrow0(1, 2).unwrap().to_f32().unwrap(), data[6..18]);
    assert_eq!(t.reshape(&[2, 12]).unwrap().shape(), &[2, 12]);
    assert!(t.reshape(&[5, 5]).is_err());
    assert!(t.narrow0(3, 2).is_err());
    // An op on an unaligned view: the window shift carries the offset.
    let v = t.narrow0(1, 1).unwrap().reshape(&[6]).unwrap();
    let y = ew::scale(&v, 2.0).unwrap().to_f32().unwrap();
    assert_eq!(y, data[6..12].iter().map(|x| x * 2.0).collect::<Vec<_>>());
    assert!(Tensor::from_f32(&gpu(), &[3], &[1.0, 2.0]).is_err());
}

#[test]
fn f16_tensors_round_trip() {
    let v = [0.1f32, -2.5, 65504.0, 1e-4, 3.0];
    let t = Tensor::from_f32_as_f16(&gpu(), &[5], &v).unwrap();
    assert_eq!(t.dtype(), DType::F16);
    assert_eq!(t.bytes(), 10);
    assert_eq!(t.to_f32().unwrap(), round_f16(&v));
}

#[test]
fn preprocessor_flags_and_values() {
    let src = "a\n#if X\nb {{N}}\n#if Y\nc\n#else\nd\n#endif\n#else\ne\n#endif\nf";
    let on = preprocess("t", src, &[("X", "1".into()), ("N", "8".into())]).unwrap();
    assert_eq!(on, "a\nb 8\nd\nf\n");
    let off = preprocess("t", src, &[("X", "0".into())]).unwrap();
    assert_eq!(off, "a\ne\nf\n");
    assert!(preprocess("t", "#if X\n", &[]).is_err());
    assert!(preprocess("t", "{{Q}}", &[]).unwrap_err().to_string().contains("Q"));
}

#[test]
fn a_missing_backend_says_how_to_install_a_driver() {
    // No Metal on Linux: the selector finds nothing and the error tells the user what to do.
    if cfg!(target_os = "macos") {
        return;
    }
    let sel = AdapterSelector { backend: Some("metal".into()), ..Default::default() };
    let e = Gpu::new(&sel).err().expect("no Metal adapter on this OS");
    assert!(matches!(e, Error::NoAdapter { .. }));
    assert!(e.to_string().contains("mesa-vulkan-drivers"), "{e}");
    let sel = AdapterSelector { name: Some("no such gpu".into()), ..Default::default() };
    let e = Gpu::new(&sel).err().expect("no such adapter").to_string();
    assert!(e.contains("no such gpu") && e.contains("available"), "{e}");
}
