//! conv2d (3×3 / 1×1, stride 1 / 2) and temporal conv (Conv3d (3,1,1)) against CPU references.

mod common;
use common::reference::{cpu_conv2d, cpu_conv_temporal, fold};
use common::*;
use t2v::ops::conv2d::conv2d;
use t2v::ops::conv_temporal::{conv_temporal, FrameLayout};
use t2v::ops::tiles::Tile;
use t2v::Tensor;

/// The adapter's own pick (None) and tilings of both kinds, some off every power of two: each
/// kernel is checked under all of them whatever the tile table would choose.
fn tilings() -> Vec<Option<Tile>> {
    let mut v = vec![None];
    v.extend(
        [
            Tile::Rows { wg: 8, tm: 1, tn: 8 },
            Tile::Rows { wg: 64, tm: 8, tn: 8 },
            Tile::Rows { wg: 8, tm: 3, tn: 5 },
            Tile::Cols { wg: 8, tm: 1, tn: 8 },
            Tile::Cols { wg: 16, tm: 16, tn: 4 },
            Tile::Cols { wg: 4, tm: 3, tn: 5 },
        ]
        .map(Some),
    );
    v
}

#[allow(clippy::too_many_arguments)]
fn check_conv2d(n: usize, cin: usize, h: usize, wd: usize, cout: usize, k: usize, s: usize, f16w: bool, seed: u64) {
    let g = gpu();
    let pad = k / 2;
    let mut r = Rng::new(seed);
    let x = r.normals(n * cin * h * wd, 1.0);
    let mut w = r.normals(cout * cin * k * k, 1.0 / ((cin * k * k) as f32).sqrt());
    let b = r.normals(cout, 0.3);
    let wt = if f16w {
        w = round_f16(&w);
        Tensor::from_f32_as_f16(&g, &[cout, cin, k, k], &w).unwrap()
    } else {
        Tensor::from_f32(&g, &[cout, cin, k, k], &w).unwrap()
    };
    let (want, oh, ow) = cpu_conv2d(&x, &w, Some(&b), n, cin, h, wd, cout, k, s, pad);
    let (xt, bt) = (upload(&[n, cin, h, wd], &x), upload(&[cout], &b));
    for t in tilings() {
        let y = t2v::ops::conv2d::conv2d_tiled(&xt, &wt, Some(&bt), s, pad, t).unwrap();
        assert_eq!(y.shape(), &[n, cout, oh, ow]);
        // f32 accumulation over Cin·k² ≤ 2304 terms: error ~sqrt(K)·2^-24 relative, far under 1e-5.
        assert_close(&format!("conv2d n{n} {cin}->{cout} {h}x{wd} k{k} s{s} f16w={f16w} {t:?}"), &y.to_f32().unwrap(), &want, 1e-5);
    }
    let y = conv2d(&xt, &wt, Some(&bt), s, pad).unwrap();
    assert_close("conv2d", &y.to_f32().unwrap(), &want, 1e-5);
}

#[test]
fn conv2d_3x3_stride1() {
    check_conv2d(1, 4, 8, 8, 32, 3, 1, false, 1); // conv_in-like: 4 latent channels
    check_conv2d(2, 16, 5, 9, 24, 3, 1, false, 2); // non-square, 9×5 like level 3
    check_conv2d(3, 7, 1, 1, 5, 3, 1, false, 3); // 1×1 image: only the centre tap
    check_conv2d(1, 32, 10, 18, 13, 3, 1, true, 4); // f16 weights, Cout off the tile
    check_conv2d(2, 5, 6, 7, 9, 3, 1, true, 10); // f16 weights, odd Cin: no channel pairs
}

#[test]
fn conv2d_stride2_and_1x1() {
    check_conv2d(2, 8, 10, 18, 8, 3, 2, false, 5); // Downsample2D: pad 1, stride 2
    check_conv2d(1, 6, 7, 9, 6, 3, 2, true, 6); // odd sizes
    check_conv2d(3, 24, 6, 11, 16, 1, 1, false, 7); // conv_shortcut
    check_conv2d(2, 10, 4, 4, 3, 1, 1, true, 8);
}

#[test]
fn conv2d_without_bias_and_bad_shapes() {
    let g = gpu();
    let mut r = Rng::new(9);
    let x = r.normals(2 * 3 * 4 * 5, 1.0);
    let w = r.normals(4 * 3 * 9, 0.3);
    let y = conv2d(&upload(&[2, 3, 4, 5], &x), &upload(&[4, 3, 3, 3], &w), None, 1, 1).unwrap();
    let (want, _, _) = cpu_conv2d(&x, &w, None, 2, 3, 4, 5, 4, 3, 1, 1);
    assert_close("conv2d no bias", &y.to_f32().unwrap(), &want, 1e-5);
    let bad = Tensor::from_f32(&g, &[4, 2, 3, 3], &[0.0; 72]).unwrap();
    let e = conv2d(&upload(&[2, 3, 4, 5], &x), &bad, None, 1, 1).unwrap_err().to_string();
    assert!(e.contains("[4, 2, 3, 3]"), "{e}");
}

#[test]
fn conv_temporal_both_layouts() {
    let g = gpu();
    for (i, &(bs, cin, cout, f, h, w, f16w)) in
        // Frames of < 256 pixels take the across-frames variant (rows = batch·frame·pixel, tiles
        // spanning frame and batch edges); 17×16 = 272 and 16×20 take the per-frame one.
        [
            (1, 8, 8, 5, 3, 4, false),
            (2, 12, 20, 3, 5, 9, true),
            (1, 16, 16, 1, 4, 4, false),
            (2, 9, 7, 24, 2, 3, false),
            (3, 5, 11, 7, 1, 1, true),
            (2, 6, 9, 13, 11, 23, false),
            (1, 4, 10, 3, 17, 16, true),
            (2, 3, 5, 4, 16, 20, false),
        ]
            .iter()
            .enumerate()
    {
        let s = h * w;
        let mut r = Rng::new(40 + i as u64);
        let x = r.normals(bs * cin * f * s, 1.0);
        let mut wv = r.normals(cout * cin * 3, 1.0 / ((cin * 3) as f32).sqrt());
        let b = r.normals(cout, 0.2);
        let wt = if f16w {
            wv = round_f16(&wv);
            Tensor::from_f32_as_f16(&g, &[cout, cin, 3, 1, 1], &wv).unwrap()
        } else {
            Tensor::from_f32(&g, &[cout, cin, 3, 1, 1], &wv).unwrap()
        };
        let bt = upload(&[cout], &b);
        let want = cpu_conv_temporal(&x, &wv, &b, bs, cin, f, s, cout);
        let name = format!("conv_temporal b{bs} {cin}->{cout} f{f} {h}x{w}");

        let (xc, xf) = (upload(&[bs, cin, f, h, w], &x), upload(&[bs * f, cin, h, w], &fold(&x, bs, cin, f, s)));
        let want_folded = fold(&want, bs, cout, f, s);
        for t in tilings() {
            use t2v::ops::conv_temporal::conv_temporal_tiled;
            let y = conv_temporal_tiled(&xc, f, FrameLayout::ChannelsFirst, &wt, Some(&bt), t).unwrap();
            assert_eq!(y.shape(), &[bs, cout, f, h, w]);
            assert_close(&format!("{name} (B,C,F,H,W) {t:?}"), &y.to_f32().unwrap(), &want, 1e-5);

            let y = conv_temporal_tiled(&xf, f, FrameLayout::Folded, &wt, Some(&bt), t).unwrap();
            assert_eq!(y.shape(), &[bs * f, cout, h, w]);
            assert_close(&format!("{name} (B·F,C,H,W) {t:?}"), &y.to_f32().unwrap(), &want_folded, 1e-5);
        }
        let y = conv_temporal(&xf, f, FrameLayout::Folded, &wt, Some(&bt)).unwrap();
        assert_close(&format!("{name} (B·F,C,H,W)"), &y.to_f32().unwrap(), &want_folded, 1e-5);
    }
}

#[test]
fn conv_temporal_rejects_frame_mismatch() {
    let x = upload(&[5, 2, 2, 2], &[0.0; 40]);
    let w = upload(&[2, 2, 3, 1, 1], &[0.0; 12]);
    let e = conv_temporal(&x, 2, FrameLayout::Folded, &w, None).unwrap_err().to_string();
    assert!(e.contains("2 frames"), "{e}");
}

#[test]
fn conv2d_input_larger_than_a_binding() {
    // 35 single-channel 1024×1024 images = 140 MiB: over lavapipe's 128 MiB binding, so the
    // wrapper splits images into chunks. Also > 65,535 workgroups (35·2^20/512 = 71,680).
    let (n, h, w) = (35usize, 1024usize, 1024usize);
    let mut r = Rng::new(77);
    let x = r.normals(n * h * w, 1.0);
    let k = r.normals(9, 0.3);
    let y = conv2d(&upload(&[n, 1, h, w], &x), &upload(&[1, 1, 3, 3], &k), None, 1, 1).unwrap().to_f32().unwrap();
    let (want, _, _) = cpu_conv2d(&x, &k, None, n, 1, h, w, 1, 3, 1, 1);
    assert_close("conv2d > binding", &y, &want, 1e-5);
}

#[test]
fn conv2d_single_image_larger_than_a_binding() {
    // One 8-channel 2048×2304 image is 144 MiB in and out: over lavapipe's 128 MiB binding, so
    // the wrapper splits output channels and sums input-channel chunks (bias added once). The
    // VAE decoder's full-resolution layers at 576×320 are the real case (256 ch, 180 MiB).
    let (c, h, w) = (8usize, 2048usize, 2304usize);
    let mut r = Rng::new(78);
    let x = r.normals(c * h * w, 1.0);
    let xt = upload(&[1, c, h, w], &x);
    // f16 weights too: on CPU drivers those take the column tiling's channel-pair loop, which
    // must start each input-channel chunk on a whole pair.
    for (cout, k, pad, f16w) in [(c, 1, 0, false), (2, 3, 1, false), (3, 3, 1, true)] {
        let mut wt = r.normals(cout * c * k * k, 0.3);
        let b = r.normals(cout, 0.5);
        let wd = if f16w {
            wt = round_f16(&wt);
            Tensor::from_f32_as_f16(&gpu(), &[cout, c, k, k], &wt).unwrap()
        } else {
            upload(&[cout, c, k, k], &wt)
        };
        let y = conv2d(&xt, &wd, Some(&upload(&[cout], &b)), 1, pad).unwrap().to_f32().unwrap();
        let (want, _, _) = cpu_conv2d(&x, &wt, Some(&b), 1, c, h, w, cout, k, 1, pad);
        assert_close(&format!("conv2d {k}×{k} → {cout} channels, one image > binding, f16w={f16w}"), &y, &want, 1e-5);
    }
}
