//! CLIP text encoder and AutoencoderKL against diffusers/transformers dumps (f32 weights,
//! relative L2 ≤ 1e-4), the f16-weight UNet, and the legacy VAE key names.

mod common;
use common::fixtures::{dump, fixtures};
use common::{assert_close, gpu};
use t2v::models::text_encoder::ClipTextModel;
use t2v::models::unet::UNet3DConditionModel;
use t2v::models::vae::AutoencoderKL;
use t2v::weights::Placement;
use t2v::DType;

const TOL: f64 = 1e-4;
const F32: Placement = Placement { matrices: DType::F32 };

fn ids(d: &common::fixtures::Dump, k: &str) -> Vec<Vec<u32>> {
    let (shape, v) = d.get(k);
    v.chunks(shape[1]).map(|r| r.iter().map(|&x| x as u32).collect()).collect()
}

#[test]
fn clip_text_encoder() {
    let m = ClipTextModel::from_dir(&gpu(), &fixtures().join("tiny-t2v/text_encoder"), F32).unwrap();
    let d = dump("text_encoder.full");
    let tokens = ids(&d, "arg0");
    d.check("out.hidden_states.0", &m.embed(&tokens).unwrap(), TOL);
    d.check("out.last_hidden_state", &m.forward(&tokens, 0).unwrap(), TOL);
    let e = dump("text_encoder.embeddings");
    e.check("out", &m.embed(&ids(&e, "kw.input_ids")).unwrap(), TOL);
    let l = dump("text_encoder.encoder.layers.0");
    let x = l.input("arg0");
    let y = m.layer(0).unwrap().forward(&x, m.config.num_attention_heads, m.config.hidden_act == "quick_gelu").unwrap();
    l.check("out", &y, TOL);
    let f = dump("text_encoder.final_layer_norm");
    f.check("out", &m.final_layer_norm.forward(&f.input("arg0")).unwrap(), TOL);
    // clip_skip = 1: the last layer is skipped, the final LayerNorm still applies.
    let skip = m.forward(&tokens, 1).unwrap();
    let want = m.final_layer_norm.forward(&d.input("out.hidden_states.1")).unwrap();
    assert_close("clip_skip=1", &skip.to_f32().unwrap(), &want.to_f32().unwrap().iter().map(|&v| v as f64).collect::<Vec<_>>(), TOL);
    let err = m.embed(&[vec![49408]]).unwrap_err().to_string();
    assert!(err.contains("49408"), "{err}");
}

fn vae() -> AutoencoderKL {
    AutoencoderKL::from_dir(&gpu(), &fixtures().join("tiny-t2v/vae"), F32).unwrap()
}

#[test]
fn vae_decoder() {
    let v = vae();
    for name in ["vae.decode", "vae.decode.small"] {
        let d = dump(name);
        d.check("out.sample", &v.decode(&d.input("arg0")).unwrap(), TOL);
    }
    let d = dump("vae.post_quant_conv");
    d.check("out", &v.post_quant_conv.as_ref().unwrap().forward(&d.input("arg0")).unwrap(), TOL);
    let d = dump("vae.decoder.conv_in");
    d.check("out", &v.decoder.conv_in.forward(&d.input("arg0")).unwrap(), TOL);
    let d = dump("vae.decoder.mid_block");
    d.check("out", &v.decoder.mid_block.forward(&d.input("arg0")).unwrap(), TOL);
    for (i, name) in ["vae.decoder.up_blocks.0", "vae.decoder.up_blocks.1.small", "vae.decoder.up_blocks.2.small", "vae.decoder.up_blocks.3.small"].iter().enumerate() {
        let d = dump(name);
        let b = &v.decoder.up_blocks[i];
        let mut h = d.input("arg0");
        for r in &b.resnets {
            h = r.forward(&h, None).unwrap();
        }
        if let Some(u) = &b.upsampler {
            h = u.forward(&h, None).unwrap();
        }
        d.check("out", &h, TOL);
    }
    let d = dump("vae.decoder.conv_norm_out.small");
    d.check("out", &v.decoder.conv_norm_out.forward(&d.input("arg0"), false).unwrap(), TOL);
}

#[test]
fn vae_encoder() {
    let v = vae();
    for name in ["vae.encode", "vae.encode.small"] {
        let d = dump(name);
        let m = v.encode_moments(&d.input("arg0")).unwrap();
        let (n, c2, h, w) = (m.dim(0), m.dim(1), m.dim(2), m.dim(3));
        let all = m.to_f32().unwrap();
        let half = |second: bool| -> Vec<f32> {
            (0..n).flat_map(|i| all[(i * c2 + if second { c2 / 2 } else { 0 }) * h * w..][..c2 / 2 * h * w].to_vec()).collect()
        };
        assert_close(&format!("{name} mean"), &half(false), d.want("out.latent_dist.mean"), TOL);
        // diffusers clamps logvar to [-30, 20]; these random weights stay inside.
        assert_close(&format!("{name} logvar"), &half(true), d.want("out.latent_dist.logvar"), TOL);
    }
    let d = dump("vae.quant_conv");
    d.check("out", &v.quant_conv.as_ref().unwrap().forward(&d.input("arg0")).unwrap(), TOL);
    let d = dump("vae.encoder.mid_block");
    d.check("out", &v.encoder.mid_block.forward(&d.input("arg0")).unwrap(), TOL);
    let d = dump("vae.encoder.down_blocks.0.small");
    let b = &v.encoder.down_blocks[0];
    let mut h = d.input("arg0");
    for r in &b.resnets {
        h = r.forward(&h, None).unwrap();
    }
    h = b.downsampler.as_ref().unwrap().forward(&h).unwrap();
    d.check("out", &h, TOL);
}

#[test]
fn vae_with_legacy_attention_keys() {
    let v = AutoencoderKL::from_dir(&gpu(), &fixtures().join("vae-legacy"), F32).unwrap();
    let d = dump("vae_legacy.decode");
    d.check("out.sample", &v.decode(&d.input("arg0")).unwrap(), TOL);
}

#[test]
fn unet_with_f16_weights() {
    // f16 weights on the device (matmul/conv read them as f16, accumulate in f32) against
    // diffusers running the same f16 weights upcast to f32: both sides use the identical
    // rounded weights and f32 arithmetic, so the f32 bound still holds; the f16 *storage* path
    // (SHADER_F16 or unpack2x16float) is what this proves.
    let g = gpu();
    let m = UNet3DConditionModel::from_dir(&g, &fixtures().join("tiny-t2v-f16/unet"), Placement { matrices: DType::F16 }).unwrap();
    assert_eq!(m.conv_in.weight.dtype(), DType::F16);
    let d = dump("unet_f16.full.f3");
    let y = m.forward(&d.input("arg0"), &d.host("arg1"), &d.input("kw.encoder_hidden_states")).unwrap();
    d.check("out.sample", &y, TOL);
    // The same f16 file loaded to f32 on the device gives the same answer.
    let m32 = UNet3DConditionModel::from_dir(&g, &fixtures().join("tiny-t2v-f16/unet"), F32).unwrap();
    let y = m32.forward(&d.input("arg0"), &d.host("arg1"), &d.input("kw.encoder_hidden_states")).unwrap();
    d.check("out.sample", &y, TOL);
}
