//! UNet3DConditionModel against diffusers, module by module (tests/fixtures/modules, made by
//! tools/reference/make_fixtures.py). f32 weights: relative L2 ≤ 1e-4 everywhere — f32
//! rounding differences between torch's and our summation orders, compounded through the
//! model, stay orders of magnitude below that.

mod common;
use common::fixtures::{dump, fixtures, Dump};
use common::gpu;
use std::sync::OnceLock;
use t2v::models::unet::UNet3DConditionModel;
use t2v::weights::Placement;
use t2v::DType;

const TOL: f64 = 1e-4;

fn unet() -> &'static UNet3DConditionModel {
    static M: OnceLock<UNet3DConditionModel> = OnceLock::new();
    M.get_or_init(|| {
        UNet3DConditionModel::from_dir(&gpu(), &fixtures().join("tiny-t2v/unet"), Placement { matrices: DType::F32 }).expect("load tiny unet")
    })
}

fn frames(d: &Dump) -> usize {
    d.meta_usize("kw.num_frames")
}

#[test]
fn time_proj_and_time_embedding() {
    let d = dump("unet.time_proj.f3");
    let t: Vec<f32> = d.host("arg0");
    let emb = unet().time_proj.forward(&t2v::Tensor::from_f32(&gpu(), &[t.len()], &t).unwrap()).unwrap();
    d.check("out", &emb, 1e-5);
    let d = dump("unet.time_embedding.f3");
    d.check("out", &unet().time_embedding.forward(&d.input("arg0")).unwrap(), TOL);
}

#[test]
fn convs_and_norm() {
    let u = unet();
    let d = dump("unet.conv_in.f3");
    d.check("out", &u.conv_in.forward(&d.input("arg0")).unwrap(), TOL);
    let d = dump("unet.conv_out.f3");
    d.check("out", &u.conv_out.forward(&d.input("arg0")).unwrap(), TOL);
    let d = dump("unet.conv_norm_out.f3");
    d.check("out", &u.conv_norm_out.forward(&d.input("arg0"), false).unwrap(), TOL);
    let d = dump("unet.down_blocks.0.downsamplers.0.f3");
    d.check("out", &u.down_blocks[0].get().unwrap().downsampler.as_ref().unwrap().forward(&d.input("arg0")).unwrap(), TOL);
    for name in ["unet.up_blocks.0.upsamplers.0.f3", "unet.up_blocks.1.upsamplers.0.f3"] {
        let d = dump(name);
        let i: usize = if name.contains("up_blocks.0") { 0 } else { 1 };
        let size: Vec<usize> = serde_json::from_str(&d.meta["arg1"]).unwrap();
        let y = u.up_blocks[i].get().unwrap().upsampler.as_ref().unwrap().forward(&d.input("arg0"), Some((size[0], size[1]))).unwrap();
        d.check("out", &y, TOL);
    }
}

#[test]
fn resnets() {
    let u = unet();
    let d = dump("unet.down_blocks.0.resnets.0.f3");
    d.check("out", &u.down_blocks[0].get().unwrap().layers[0].resnet.forward(&d.input("arg0"), Some(&d.input("arg1"))).unwrap(), TOL);
    // in ≠ out channels: exercises conv_shortcut.
    let d = dump("unet.up_blocks.1.resnets.0.f3");
    d.check("out", &u.up_blocks[1].get().unwrap().layers[0].resnet.forward(&d.input("arg0"), Some(&d.input("arg1"))).unwrap(), TOL);
}

#[test]
fn temporal_conv_layers() {
    for name in ["unet.down_blocks.0.temp_convs.0.f3", "unet.down_blocks.0.temp_convs.0.f1"] {
        let d = dump(name);
        d.check("out", &unet().down_blocks[0].get().unwrap().layers[0].temp_conv.forward(&d.input("arg0"), frames(&d)).unwrap(), TOL);
    }
}

#[test]
fn spatial_transformer() {
    let u = unet();
    let (spatial, _) = u.down_blocks[0].get().unwrap().layers[0].attn.as_ref().unwrap();
    let d = dump("unet.down_blocks.0.attentions.0.f3");
    d.check("out.0", &spatial.forward(&d.input("arg0"), &d.input("kw.encoder_hidden_states")).unwrap(), TOL);
    let d = dump("unet.down_blocks.0.attentions.0.transformer_blocks.0.f3");
    d.check("out", &spatial.block.forward(d.input("arg0"), Some(&d.input("kw.encoder_hidden_states"))).unwrap(), TOL);
}

#[test]
fn temporal_transformers() {
    let u = unet();
    let (_, temporal) = u.down_blocks[0].get().unwrap().layers[0].attn.as_ref().unwrap();
    for name in ["unet.down_blocks.0.temp_attentions.0.f3", "unet.down_blocks.0.temp_attentions.0.f1"] {
        let d = dump(name);
        d.check("out.0", &temporal.forward(&d.input("arg0"), frames(&d)).unwrap(), TOL);
    }
    let d = dump("unet.down_blocks.0.temp_attentions.0.transformer_blocks.0.f3");
    d.check("out", &temporal.block.forward(d.input("arg0"), None).unwrap(), TOL);
    // transformer_in: 8 heads × head_dim, an inner width different from its channels.
    for name in ["unet.transformer_in.f3", "unet.transformer_in.f1"] {
        let d = dump(name);
        d.check("out.0", &u.transformer_in.forward(&d.input("arg0"), frames(&d)).unwrap(), TOL);
    }
}

#[test]
fn down_blocks() {
    for name in ["unet.down_blocks.0.f3", "unet.down_blocks.0.f1", "unet.down_blocks.1.f3", "unet.down_blocks.2.f3", "unet.down_blocks.3.f3"] {
        let d = dump(name);
        let i: usize = name.split('.').nth(2).unwrap().parse().unwrap();
        let u = unet();
        let ctx = if d.tensors.contains_key("kw.encoder_hidden_states") { d.input("kw.encoder_hidden_states") } else { d.input("kw.temb") };
        let (y, skips) = u.down_blocks[i].get().unwrap().forward(&d.input("kw.hidden_states"), &d.input("kw.temb"), &ctx, frames(&d)).unwrap();
        d.check("out.0", &y, TOL);
        for (j, s) in skips.iter().enumerate() {
            d.check(&format!("out.1.{j}"), s, TOL);
        }
    }
}

#[test]
fn mid_block() {
    for name in ["unet.mid_block.f3", "unet.mid_block.f1"] {
        let d = dump(name);
        let y = unet().mid_block.get().unwrap().forward(&d.input("arg0"), &d.input("arg1"), &d.input("kw.encoder_hidden_states"), frames(&d)).unwrap();
        d.check("out", &y, TOL);
    }
}

#[test]
fn up_blocks() {
    for name in ["unet.up_blocks.0.f3", "unet.up_blocks.1.f3", "unet.up_blocks.2.f3", "unet.up_blocks.3.f3", "unet.up_blocks.3.f1"] {
        let d = dump(name);
        let i: usize = name.split('.').nth(2).unwrap().parse().unwrap();
        let mut skips: Vec<_> = (0..3).map(|j| d.input(&format!("kw.res_hidden_states_tuple.{j}"))).collect();
        let ctx = if d.tensors.contains_key("kw.encoder_hidden_states") { d.input("kw.encoder_hidden_states") } else { d.input("kw.temb") };
        let size = d.meta.get("kw.upsample_size").and_then(|s| serde_json::from_str::<Vec<usize>>(s).ok()).map(|v| (v[0], v[1]));
        let y = unet().up_blocks[i].get().unwrap().forward(d.input("kw.hidden_states"), &mut skips, &d.input("kw.temb"), &ctx, frames(&d), size).unwrap();
        d.check("out", &y, TOL);
    }
}

#[test]
fn full_unet() {
    for name in ["unet.full.f3", "unet.full.f1"] {
        let d = dump(name);
        let t = d.host("arg1");
        let y = unet().forward(&d.input("arg0"), &t, &d.input("kw.encoder_hidden_states")).unwrap();
        d.check("out.sample", &y, TOL);
    }
}
