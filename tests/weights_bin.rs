//! PyTorch .bin checkpoints (torch.save zip + restricted unpickler) against the fixtures of
//! tools/reference/bin_fixtures.py.

mod common;
use half::f16;
use std::path::{Path, PathBuf};
use t2v::weights::{SafeTensors, StoredDType, TorchBin};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bin")
}

fn open_err(path: &Path) -> String {
    match TorchBin::open(path) {
        Ok(_) => panic!("{} should have been refused", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fp16_vae_bin_holds_the_safetensors_weights_rounded_to_f16() {
    let bin = TorchBin::open(&bin_dir().join("vae/diffusion_pytorch_model.bin")).expect("open .bin");
    let st_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-t2v/vae/diffusion_pytorch_model.safetensors");
    let st = SafeTensors::open(&st_path).expect("open safetensors");
    assert_eq!(bin.tensors.keys().collect::<Vec<_>>(), st.tensors.keys().collect::<Vec<_>>());
    let mut values = 0;
    for (key, info) in &bin.tensors {
        let want = &st.tensors[key];
        assert_eq!(info.dtype, StoredDType::F16, "{key}");
        assert_eq!(info.shape, want.shape, "{key}");
        let ours: Vec<f16> = bytemuck::pod_collect_to_vec(bin.bytes(info));
        let f32s: Vec<f32> = bytemuck::pod_collect_to_vec(st.bytes(want));
        assert_eq!(ours.len(), f32s.len(), "{key}");
        for (i, (a, b)) in ours.iter().zip(&f32s).enumerate() {
            assert_eq!(a.to_bits(), f16::from_f32(*b).to_bits(), "{key}[{i}]: {a} vs {b}");
        }
        values += ours.len();
    }
    assert_eq!(values, 111_839, "the tiny VAE's parameter count");
}

#[test]
fn shared_storages_offsets_and_strided_views_read_as_contiguous_tensors() {
    let bin = TorchBin::open(&bin_dir().join("views.bin")).expect("open views.bin");
    let st = SafeTensors::open(&bin_dir().join("views.safetensors")).expect("open views.safetensors");
    assert_eq!(bin.tensors.keys().collect::<Vec<_>>(), st.tensors.keys().collect::<Vec<_>>());
    for (key, want) in &st.tensors {
        let info = &bin.tensors[key];
        assert_eq!(info.dtype, want.dtype, "{key}");
        assert_eq!(info.shape, want.shape, "{key}");
        assert_eq!(bin.bytes(info), st.bytes(want), "{key}: values differ");
    }
    // The views of one storage really are served from it (no copy) when contiguous.
    let base = &bin.tensors["base"];
    let rows = &bin.tensors["rows_1_2"];
    assert_eq!(rows.start, base.start + 6 * 2);
    assert_eq!(bin.tensors["int64"].dtype, StoredDType::Other("I64".into()));
}

#[test]
fn a_pickle_that_calls_os_system_is_refused_by_name() {
    let err = open_err(&bin_dir().join("hostile_global.bin"));
    assert!(err.contains("forbidden global 'os.system'"), "{err}");
    assert!(err.contains("hostile_global.bin"), "{err}");
}

#[test]
fn a_pickle_using_other_opcodes_is_refused_by_name() {
    let err = open_err(&bin_dir().join("hostile_opcode.bin"));
    assert!(err.contains("INST"), "{err}");
}

#[test]
fn truncated_and_foreign_files_give_clear_errors() {
    let full = std::fs::read(bin_dir().join("vae/diffusion_pytorch_model.bin")).expect("read");
    let dir = std::env::temp_dir().join(format!("t2v-weights-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for cut in [full.len() - 1, full.len() - 30, full.len() / 2, 100, 0] {
        let p = dir.join(format!("cut{cut}.bin"));
        std::fs::write(&p, &full[..cut]).expect("write");
        let err = open_err(&p);
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
        assert!(err.contains(&format!("cut{cut}.bin")), "cut at {cut}: {err}");
    }
    let p = dir.join("not-a-zip.bin");
    std::fs::write(&p, b"this is not a checkpoint at all, just some text that is long enough").expect("write");
    let err = open_err(&p);
    assert!(err.contains("not a torch.save checkpoint"), "{err}");

    let err = open_err(&dir.join("missing.bin"));
    assert!(err.contains("missing.bin"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bin_checkpoint_loads_as_a_model() {
    // Zeroscope's repos ship only .bin files: the same loader reads them. The .bin VAE holds the
    // fp16-rounded weights of the tiny VAE, so it must decode exactly like the safetensors VAE
    // loaded with f16 matrices (vectors: rounded to f16 in the .bin, kept f32 from safetensors,
    // hence the small bound).
    use t2v::models::vae::AutoencoderKL;
    use t2v::weights::Placement;
    let g = common::gpu();
    let fx = common::fixtures::fixtures();
    let bin = AutoencoderKL::from_dir(&g, &fx.join("bin/vae"), Placement { matrices: t2v::DType::F16 }).unwrap();
    let st = AutoencoderKL::from_dir(&g, &fx.join("tiny-t2v/vae"), Placement { matrices: t2v::DType::F16 }).unwrap();
    let d = common::fixtures::dump("vae.decode.small");
    let a = bin.decode(&d.input("arg0")).unwrap().to_f32().unwrap();
    let b: Vec<f64> = st.decode(&d.input("arg0")).unwrap().to_f32().unwrap().iter().map(|&v| v as f64).collect();
    common::assert_close("bin vs safetensors VAE", &a, &b, 5e-3);
}
