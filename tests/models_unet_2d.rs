//! UNet2DConditionModel (Stable Diffusion 1.x blocks) against diffusers, module by module
//! (tests/fixtures/zero/modules, made by tools/reference/zero_fixtures.py from the tiny SD
//! model tests/fixtures/tiny-sd): the stock attention ("b2": a guidance pair) and
//! Text2Video-Zero's cross-frame attention ("xf3": 3 frames × guidance, each half attending to
//! its frame 0; "xf4": 4 frames without guidance, diffusers' halves of 2). f32 weights:
//! relative L2 ≤ 1e-4 everywhere, as the 3-D UNet's module tests.

mod common;
use common::fixtures::{dump_at, fixtures, Dump};
use common::gpu;
use std::sync::OnceLock;
use t2v::models::unet_2d::UNet2DConditionModel;
use t2v::weights::Placement;
use t2v::DType;

const TOL: f64 = 1e-4;

fn unet() -> &'static UNet2DConditionModel {
    static M: OnceLock<UNet2DConditionModel> = OnceLock::new();
    M.get_or_init(|| {
        UNet2DConditionModel::from_dir(&gpu(), &fixtures().join("tiny-sd/unet"), Placement { matrices: DType::F32 }).expect("load tiny SD unet")
    })
}

fn dump(module: &str, case: &str) -> Dump {
    let name = format!("sd_unet.{module}.{case}");
    dump_at(&fixtures().join(format!("zero/modules/{name}.safetensors")), &name)
}

/// The cross-frame group length of each case (None: stock self-attention).
fn cross(case: &str) -> Option<usize> {
    match case {
        "b2" => None,
        "xf3" => Some(3),
        "xf4" => Some(2),
        c => panic!("unknown case {c}"),
    }
}

/// Block outputs: `out.0` (hidden states) and the skip tuple `out.1.i`.
fn check_down(d: &Dump, (h, skips): (t2v::Tensor, Vec<t2v::Tensor>)) {
    d.check("out.0", &h, TOL);
    assert_eq!(skips.len(), d.tensors.keys().filter(|k| k.starts_with("out.1.")).count(), "{}: skip count", d.name);
    for (i, s) in skips.iter().enumerate() {
        d.check(&format!("out.1.{i}"), s, TOL);
    }
}

#[test]
fn embeddings_convs_norm() {
    let u = unet();
    for case in ["b2", "xf3"] {
        let d = dump("time_proj", case);
        let t: Vec<f32> = d.host("arg0");
        let emb = u.time_proj.forward(&t2v::Tensor::from_f32(&gpu(), &[t.len()], &t).unwrap()).unwrap();
        d.check("out", &emb, 1e-5);
        let d = dump("time_embedding", case);
        d.check("out", &u.time_embedding.forward(&d.input("arg0")).unwrap(), TOL);
        let d = dump("conv_in", case);
        d.check("out", &u.conv_in.forward(&d.input("arg0")).unwrap(), TOL);
        let d = dump("conv_norm_out", case);
        d.check("out", &u.conv_norm_out.forward(&d.input("arg0"), false).unwrap(), TOL);
        let d = dump("conv_out", case);
        d.check("out", &u.conv_out.forward(&d.input("arg0")).unwrap(), TOL);
    }
}

#[test]
fn attention_self_cross_and_cross_frame() {
    let u = unet();
    let block = &u.down_blocks[0].attentions[0].transformer_blocks[0];
    for case in ["b2", "xf3", "xf4"] {
        let d = dump("down_blocks.0.attentions.0.transformer_blocks.0.attn1", case);
        let y = match cross(case) {
            Some(vl) => block.attn1.forward_cross_frame(d.input("arg0"), vl).unwrap(),
            None => block.attn1.forward(d.input("arg0"), None).unwrap(),
        };
        d.check("out", &y, TOL);
    }
    for case in ["b2", "xf3"] {
        let d = dump("down_blocks.0.attentions.0.transformer_blocks.0.attn2", case);
        d.check("out", &block.attn2.forward(d.input("arg0"), Some(&d.input("kw.encoder_hidden_states"))).unwrap(), TOL);
        let d = dump("down_blocks.0.attentions.0", case);
        let y = u.down_blocks[0].attentions[0].forward(&d.input("arg0"), &d.input("kw.encoder_hidden_states"), cross(case)).unwrap();
        d.check("out.0", &y, TOL);
    }
}

#[test]
fn down_mid_and_up_blocks() {
    let u = unet();
    for case in ["b2", "xf3"] {
        let cf = cross(case);
        // CrossAttnDownBlock2D (0: in = out channels; 1: 8 → 16) and DownBlock2D (3, last: no downsampler)
        for i in [0usize, 1] {
            let d = dump(&format!("down_blocks.{i}"), case);
            let out = u.down_blocks[i].forward(&d.input("kw.hidden_states"), &d.input("kw.temb"), &d.input("kw.encoder_hidden_states"), cf).unwrap();
            check_down(&d, out);
        }
        let d = dump("down_blocks.3", case);
        let empty = t2v::Tensor::empty(&gpu(), &[1, 1, 1], DType::F32).unwrap();
        check_down(&d, u.down_blocks[3].forward(&d.input("kw.hidden_states"), &d.input("kw.temb"), &empty, cf).unwrap());

        let d = dump("mid_block", case);
        d.check("out", &u.mid_block.forward(&d.input("arg0"), &d.input("arg1"), &d.input("kw.encoder_hidden_states"), cf).unwrap(), TOL);

        // UpBlock2D (0) and CrossAttnUpBlock2D (1: with an upsample_size, 3: last, none)
        for i in [0usize, 1, 3] {
            let d = dump(&format!("up_blocks.{i}"), case);
            let n = d.tensors.keys().filter(|k| k.starts_with("kw.res_hidden_states_tuple.")).count();
            let mut skips: Vec<_> = (0..n).map(|j| d.input(&format!("kw.res_hidden_states_tuple.{j}"))).collect();
            let size: Option<Vec<usize>> = serde_json::from_str(d.meta.get("kw.upsample_size").map_or("null", |s| s)).unwrap();
            let ctx = if d.tensors.contains_key("kw.encoder_hidden_states") { d.input("kw.encoder_hidden_states") } else { empty.clone() };
            let y = u.up_blocks[i]
                .forward(d.input("kw.hidden_states"), &mut skips, &d.input("kw.temb"), &ctx, cf, size.map(|s| (s[0], s[1])))
                .unwrap();
            assert!(skips.is_empty(), "{}: skips left over", d.name);
            d.check("out", &y, TOL);
        }
    }
}

#[test]
fn whole_unet() {
    for case in ["b2", "xf3", "xf4"] {
        let d = dump("full", case);
        let t = d.want("arg1")[0] as f32;
        let y = unet().forward(&d.input("arg0"), &[t], &d.input("kw.encoder_hidden_states"), cross(case)).unwrap();
        d.check("out.sample", &y, TOL);
    }
}
