//! torch.randn on a CPU generator, bit for bit, against tests/fixtures/randn.safetensors
//! (written by tools/reference/randn_fixtures.py with torch 2.15, AVX2 capability).

use t2v::latents::randn::TorchGenerator;
use t2v::weights::{SafeTensors, StoredDType};
use std::path::Path;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    seed: u64,
    calls: Vec<usize>,
    dtype: String,
}

fn fixture() -> (SafeTensors, Vec<Case>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/randn.safetensors");
    let st = SafeTensors::open(&path).expect("open randn.safetensors");
    let cases: Vec<Case> = serde_json::from_str(&st.metadata["cases"]).expect("cases metadata");
    (st, cases)
}

fn stored(st: &SafeTensors, key: &str) -> Vec<f32> {
    let info = &st.tensors[key];
    bytemuck::pod_collect_to_vec::<u8, f32>(st.bytes(info))
}

/// The raw bits of a stored tensor, widened to u32 whatever its dtype.
fn stored_bits(st: &SafeTensors, key: &str) -> Vec<u32> {
    let bytes = st.bytes(&st.tensors[key]);
    match st.tensors[key].dtype {
        StoredDType::F32 => bytemuck::pod_collect_to_vec::<u8, u32>(bytes),
        _ => bytemuck::pod_collect_to_vec::<u8, u16>(bytes).into_iter().map(u32::from).collect(),
    }
}

/// One torch.randn call in the case's dtype, as (bits, value for messages).
fn draw(g: &mut TorchGenerator, dtype: &str, n: usize) -> Vec<(u32, f32)> {
    match dtype {
        "float32" => g.randn(n).into_iter().map(|x| (x.to_bits(), x)).collect(),
        "float16" => g.randn_f16(n).into_iter().map(|x| (x.to_bits() as u32, x.to_f32())).collect(),
        "bfloat16" => g.randn_bf16(n).into_iter().map(|x| (x.to_bits() as u32, x.to_f32())).collect(),
        other => panic!("fixture dtype {other}"),
    }
}

#[test]
fn every_case_is_bit_identical_to_torch() {
    let (st, cases) = fixture();
    assert!(cases.len() >= 70, "fixture has {} cases", cases.len());
    assert!(cases.iter().any(|c| c.dtype == "float16") && cases.iter().any(|c| c.dtype == "bfloat16"));
    let mut failures = Vec::new();
    for case in &cases {
        let mut g = TorchGenerator::new(case.seed);
        for (k, &n) in case.calls.iter().enumerate() {
            let ours = draw(&mut g, &case.dtype, n);
            let torch = stored_bits(&st, &format!("{}.{k}", case.name));
            assert_eq!(ours.len(), torch.len(), "{} call {k}", case.name);
            let bad: Vec<usize> = (0..n).filter(|&i| ours[i].0 != torch[i]).collect();
            if let Some(&i) = bad.first() {
                failures.push(format!(
                    "{} ({}, seed {}, call {k}, n {n}): {} of {n} differ, first at {i}: ours {} (bits {:#x}) torch bits {:#x}",
                    case.name,
                    case.dtype,
                    case.seed,
                    bad.len(),
                    ours[i].1,
                    ours[i].0,
                    torch[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seeds_keep_only_their_low_32_bits() {
    let a = TorchGenerator::new((1u64 << 32) + 5).randn(40);
    let b = TorchGenerator::new(5).randn(40);
    assert_eq!(a, b);
}

#[test]
fn the_pipeline_fixture_latents_are_reproduced() {
    // tests/fixtures/modules/pipeline.text_to_video.safetensors: init_latents (1, 4, 3, 4, 6)
    // = torch.randn(shape, generator=torch.Generator().manual_seed(0)).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/modules/pipeline.text_to_video.safetensors");
    let st = SafeTensors::open(&path).expect("open pipeline dump");
    let torch = stored(&st, "init_latents");
    let ours = TorchGenerator::new(0).randn(torch.len());
    assert_eq!(torch.len(), 4 * 3 * 4 * 6);
    assert!(ours.iter().zip(&torch).all(|(a, b)| a.to_bits() == b.to_bits()));
}
