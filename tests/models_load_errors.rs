//! Corrupted model folders fail with errors that name the file, the key and what was expected —
//! never a panic.

mod common;
use common::fixtures::{read_raw, scratch_copy, write_raw};
use common::gpu;
use t2v::models::unet::UNet3DConditionModel;
use t2v::models::vae::AutoencoderKL;
use t2v::weights::Placement;
use t2v::DType;

const F32: Placement = Placement { matrices: DType::F32 };
const FILE: &str = "diffusion_pytorch_model.safetensors";

fn load_err(dir: &std::path::Path) -> String {
    match UNet3DConditionModel::from_dir(&gpu(), dir, F32) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_file() {
    let dir = scratch_copy("tiny-t2v/unet", "truncated");
    let path = dir.join(FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains(FILE) && e.contains("truncated"), "{e}");
    // Shorter than the 8-byte length prefix.
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("too short"), "{e}");
}

#[test]
fn malformed_header() {
    let dir = scratch_copy("tiny-t2v/unet", "header");
    let mut bytes = 16u64.to_le_bytes().to_vec();
    bytes.extend(b"{not json at all");
    std::fs::write(dir.join(FILE), bytes).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("not valid JSON"), "{e}");
}

#[test]
fn wrong_shape_tensor() {
    let dir = scratch_copy("tiny-t2v/unet", "shape");
    let mut t = read_raw(&dir.join(FILE));
    let i = t.iter().position(|x| x.0 == "conv_in.bias").unwrap();
    t[i].2 = vec![4];
    t[i].3.truncate(16);
    write_raw(&dir.join(FILE), &t);
    let e = load_err(&dir);
    assert!(e.contains("'conv_in.bias'") && e.contains("[4]") && e.contains("expected [8]"), "{e}");
}

#[test]
fn missing_key() {
    let dir = scratch_copy("tiny-t2v/unet", "missing");
    let t: Vec<_> = read_raw(&dir.join(FILE)).into_iter().filter(|x| x.0 != "mid_block.temp_convs.1.conv4.3.weight").collect();
    write_raw(&dir.join(FILE), &t);
    let e = load_err(&dir);
    assert!(e.contains("missing weight 'mid_block.temp_convs.1.conv4.3.weight'"), "{e}");
}

#[test]
fn unexpected_key() {
    let dir = scratch_copy("tiny-t2v/unet", "unexpected");
    let mut t = read_raw(&dir.join(FILE));
    t.push(("down_blocks.9.resnets.0.conv1.weight".into(), "F32".into(), vec![2], vec![0; 8]));
    write_raw(&dir.join(FILE), &t);
    let e = load_err(&dir);
    assert!(e.contains("unexpected") && e.contains("down_blocks.9.resnets.0.conv1.weight"), "{e}");
}

#[test]
fn data_size_disagrees_with_shape() {
    let dir = scratch_copy("tiny-t2v/unet", "size");
    let mut t = read_raw(&dir.join(FILE));
    let i = t.iter().position(|x| x.0 == "conv_out.bias").unwrap();
    t[i].3.extend([0u8; 4]);
    write_raw(&dir.join(FILE), &t);
    let e = load_err(&dir);
    assert!(e.contains("'conv_out.bias'") && e.contains("needs"), "{e}");
}

#[test]
fn unsupported_dtype() {
    let dir = scratch_copy("tiny-t2v/unet", "dtype");
    let mut t = read_raw(&dir.join(FILE));
    let i = t.iter().position(|x| x.0 == "conv_out.bias").unwrap();
    t[i].1 = "I32".into();
    write_raw(&dir.join(FILE), &t);
    let e = load_err(&dir);
    assert!(e.contains("'conv_out.bias'") && e.contains("I32"), "{e}");
}

#[test]
fn bf16_weights_load() {
    // bf16 checkpoints convert on load; values round-trip through bf16.
    let dir = scratch_copy("tiny-t2v/vae", "bf16");
    let t: Vec<_> = read_raw(&dir.join(FILE))
        .into_iter()
        .map(|(n, _, s, b)| {
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(&b);
            let h: Vec<half::bf16> = v.iter().map(|&x| half::bf16::from_f32(x)).collect();
            (n, "BF16".to_string(), s, bytemuck::cast_slice(&h).to_vec())
        })
        .collect();
    write_raw(&dir.join(FILE), &t);
    let vae = AutoencoderKL::from_dir(&gpu(), &dir, Placement { matrices: DType::F16 }).unwrap();
    assert_eq!(vae.decoder.conv_in.weight.dtype(), DType::F16);
    // The values really arrived: decoding matches diffusers' f32 output up to bf16's 8-bit
    // mantissa (≈ 2e-3 relative per weight, compounded through ~20 layers; measured 5.1e-3).
    let d = common::fixtures::dump("vae.decode.small");
    d.check("out.sample", &vae.decode(&d.input("arg0")).unwrap(), 2e-2);
}

#[test]
fn bad_config() {
    let dir = scratch_copy("tiny-t2v/unet", "config");
    std::fs::write(dir.join("config.json"), "{\"block_out_channels\": [8, 16], \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock3D\"], \"up_block_types\": [\"UpBlock3D\", \"CrossAttnUpBlock3D\"]}").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("config.json") && e.contains("CrossAttnDownBlock2D"), "{e}");
    std::fs::write(dir.join("config.json"), "{ nope").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("config.json"), "{e}");
    std::fs::remove_file(dir.join(FILE)).unwrap();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("no (diffusion_pytorch_)model"), "{e}");
}
