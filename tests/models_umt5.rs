//! UMT5EncoderModel against transformers 5 (tests/fixtures/wan, tools/reference/wan_fixtures.py):
//! the tiny-wan text encoder (sharded, f32) on two prompts as WanPipeline tokenizes them (one
//! truncated to 512, one padded), every block's output, last_hidden_state, and the pipeline's
//! trimmed + zero-filled prompt embeds; checkpoint-layout variants and load errors.

mod common;
use common::fixtures::{dump_at, fixtures, Dump};
use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use t2v::models::umt5::{UMT5Config, UMT5EncoderModel};
use t2v::tokenizer::T5Tokenizer;
use t2v::weights::{Placement, Weights};
use t2v::DType;

const TOL: f64 = 1e-4;

fn wan() -> PathBuf {
    fixtures().join("wan")
}

fn module(name: &str) -> Dump {
    dump_at(&wan().join("modules").join(format!("{name}.safetensors")), name)
}

fn f32_placement() -> Placement {
    Placement { matrices: DType::F32 }
}

/// Token rows and mask lengths of a dump's (ids, 0/1 mask) pair.
fn ids_and_lens(d: &Dump, ids: &str, mask: &str) -> (Vec<Vec<u32>>, Vec<usize>) {
    let (shape, v) = d.get(ids);
    let l = shape[1];
    let rows: Vec<Vec<u32>> = v.chunks(l).map(|r| r.iter().map(|&x| x as u32).collect()).collect();
    let lens = d.want(mask).chunks(l).map(|r| r.iter().filter(|&&m| m > 0.0).count()).collect();
    (rows, lens)
}

#[test]
fn blocks_and_last_hidden_state_match_transformers() {
    let te = UMT5EncoderModel::from_dir(&gpu(), &wan().join("tiny-wan/text_encoder"), f32_placement()).unwrap();
    let full = module("text_encoder.full.p2");
    let (ids, lens) = ids_and_lens(&full, "arg0", "arg1");
    assert_eq!(lens[0], 512, "the long prompt fills all 512 positions");
    assert!(lens[1] < 512, "the short prompt is padded");
    let mut blocks = Vec::new();
    let out = te.forward_inspect(&ids, &lens, &mut |i, h| {
        blocks.push((i, h.to_f32()?));
        Ok(())
    })
    .unwrap();
    assert_eq!(blocks.len(), te.config.num_layers);
    for (i, got) in &blocks {
        let d = module(&format!("text_encoder.encoder.block.{i}.p2"));
        let e = rel_l2(got, d.want("out"));
        eprintln!("umt5 encoder.block.{i}: relative L2 {e:.2e}");
        assert!(e <= TOL, "encoder.block.{i}: relative L2 {e:.3e} > {TOL:.0e}");
    }
    let e = rel_l2(&out.to_f32().unwrap(), full.want("out.last_hidden_state"));
    eprintln!("umt5 last_hidden_state: relative L2 {e:.2e}");
    full.check("out.last_hidden_state", &out, TOL);
}

#[test]
fn prompt_embeds_are_trimmed_and_zero_filled_like_the_pipeline() {
    let d = module("pipeline.encode_prompt.p1");
    let prompt: String = serde_json::from_str(&d.meta["prompt"]).unwrap();
    let tok = T5Tokenizer::from_dir(&wan().join("tiny-wan/tokenizer")).unwrap();
    let enc = tok.encode_prompt(&prompt, 512).unwrap();
    let (ids, lens) = ids_and_lens(&d, "input_ids", "attention_mask");
    assert_eq!(enc.ids, ids[0], "tokenizer ids");
    assert_eq!(enc.seq_len, lens[0]);
    let te = UMT5EncoderModel::from_dir(&gpu(), &wan().join("tiny-wan/text_encoder"), f32_placement()).unwrap();
    let emb = te.encode(std::slice::from_ref(&enc)).unwrap();
    let got = emb.to_f32().unwrap();
    let dm = te.config.d_model;
    // Padded rows are exact zeros, as `u.new_zeros` makes them.
    assert!(got[enc.seq_len * dm..].iter().all(|&x| x == 0.0), "rows past seq_len are not all zero");
    let e = rel_l2(&got, d.want("out"));
    eprintln!("umt5 prompt embeds (seq_len {}): relative L2 {e:.2e}", enc.seq_len);
    d.check("out", &emb, TOL);
}

/// Copies the tiny text encoder into a temp folder as one file (keys renamed by `rename`), or
/// as its shards minus `drop_shard`.
fn variant(name: &str, rename: &dyn Fn(&str) -> String, drop_shard: Option<&str>) -> PathBuf {
    let src = wan().join("tiny-wan/text_encoder");
    let dir = std::env::temp_dir().join(format!("t2v-umt5-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    if let Some(shard) = drop_shard {
        for f in std::fs::read_dir(&src).unwrap().flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n != shard {
                std::fs::copy(f.path(), dir.join(&n)).unwrap();
            }
        }
        return dir;
    }
    let w = Weights::open_dir(&gpu(), &src, f32_placement()).unwrap();
    let mut all = BTreeMap::new();
    for (k, info) in w.entries() {
        all.insert(rename(k), (info.shape.clone(), w.host_f32(k, &info.shape).unwrap()));
    }
    t2v::weights::write_f32(&dir.join("model.safetensors"), &all).unwrap();
    dir
}

#[test]
fn embedding_under_either_tied_name() {
    let full = module("text_encoder.full.p2");
    let (ids, lens) = ids_and_lens(&full, "arg0", "arg1");
    let ids = vec![ids[1].clone()];
    let lens = vec![lens[1]];
    let want = &full.want("out.last_hidden_state")[512 * 32..];
    // Older exports: only `encoder.embed_tokens.weight`.
    let dir = variant("tied", &|k| if k == "shared.weight" { "encoder.embed_tokens.weight".into() } else { k.into() }, None);
    let te = UMT5EncoderModel::from_dir(&gpu(), &dir, f32_placement()).unwrap();
    assert_close("embed_tokens only", &te.forward(&ids, &lens).unwrap().to_f32().unwrap(), want, TOL);
    std::fs::remove_dir_all(&dir).ok();
    // Both names saved (the tied copy is accepted and unused).
    let src = wan().join("tiny-wan/text_encoder");
    let w = Weights::open_dir(&gpu(), &src, f32_placement()).unwrap();
    let shared = w.host_f32("shared.weight", &[512, 32]).unwrap();
    let dir = variant("both", &|k| k.into(), None);
    let mut all = BTreeMap::new();
    let w2 = Weights::open_dir(&gpu(), &dir, f32_placement()).unwrap();
    for (k, info) in w2.entries() {
        all.insert(k.clone(), (info.shape.clone(), w2.host_f32(k, &info.shape).unwrap()));
    }
    drop(w2);
    all.insert("encoder.embed_tokens.weight".into(), (vec![512, 32], shared));
    t2v::weights::write_f32(&dir.join("model.safetensors"), &all).unwrap();
    let te = UMT5EncoderModel::from_dir(&gpu(), &dir, f32_placement()).unwrap();
    assert_close("both names", &te.forward(&ids, &lens).unwrap().to_f32().unwrap(), want, TOL);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_shard_names_the_index_and_the_shard() {
    let dir = variant("noshard", &|k| k.into(), Some("model-00002-of-00003.safetensors"));
    let e = UMT5EncoderModel::from_dir(&gpu(), &dir, f32_placement()).err().unwrap().to_string();
    assert!(e.contains("model.safetensors.index.json") && e.contains("model-00002-of-00003.safetensors"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_configs_and_weights_are_named() {
    let dir = variant("badcfg", &|k| k.into(), None);
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, text.replace("\"gated-gelu\"", "\"relu\"")).unwrap();
    let e = UMT5EncoderModel::from_dir(&gpu(), &dir, f32_placement()).err().unwrap().to_string();
    assert!(e.contains("config.json") && e.contains("feed_forward_proj 'relu'"), "{e}");
    // d_model that does not match the weights: the key and file are named.
    std::fs::write(&cfg_path, text.replace("\"d_model\": 32", "\"d_model\": 48")).unwrap();
    let e = UMT5EncoderModel::from_dir(&gpu(), &dir, f32_placement()).err().unwrap().to_string();
    assert!(e.contains("shared.weight") && e.contains("[512, 48]"), "{e}");
    std::fs::write(&cfg_path, &text).unwrap();
    let te = UMT5EncoderModel::from_dir(&gpu(), &dir, f32_placement()).unwrap();
    let e = te.forward(&[vec![600]], &[1]).err().unwrap().to_string();
    assert!(e.contains("token id 600") && e.contains("512"), "{e}");
    let e = te.forward(&[vec![1, 0]], &[3]).err().unwrap().to_string();
    assert!(e.contains("attention mask covers 3"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    let c = UMT5Config { relative_attention_num_buckets: 2, ..UMT5Config::default() };
    assert!(c.validate().unwrap_err().contains("at least 4 buckets"));
}

#[test]
fn weights_on_the_device_one_block_at_a_time() {
    // A planning device with synthetic weights: the encoder's peak holds one block of weights
    // (plus activations), not all of them. Sized like the tiny model but with 8 blocks.
    let g = t2v::Gpu::planner(&t2v::gpu::AdapterSelector::from_env()).unwrap();
    let c = UMT5Config { vocab_size: 512, d_model: 64, d_kv: 16, d_ff: 256, num_layers: 8, num_heads: 4, ..UMT5Config::default() };
    let w = std::sync::Arc::new(Weights::synthetic(&g, "text_encoder", f32_placement()));
    let te = UMT5EncoderModel::load(c.clone(), w).unwrap();
    let before = g.memory();
    let ids = vec![vec![1u32; 64]; 2];
    te.forward(&ids, &[64, 10]).unwrap();
    let peak = g.memory().peak_live - before.live;
    let block = te.block_bytes();
    let all = block * c.num_layers as u64;
    eprintln!("umt5 plan: block {block} B, all blocks {all} B, encoder peak {peak} B");
    assert!(peak < 2 * block + te.activation_bytes(2, 64) && peak < all, "peak {peak} B vs one block {block} B");
}

#[test]
fn f16_matrices_measured() {
    // 16-bit weight placement (what a pipeline may choose to halve the per-block upload): f16
    // rounding of every matrix (relative 2⁻¹¹ per weight) bounds how close this can get; the
    // bound asserted is that rounding's size, not the f32 path's 1e-4.
    let te = UMT5EncoderModel::from_dir(&gpu(), &wan().join("tiny-wan/text_encoder"), Placement { matrices: DType::F16 }).unwrap();
    let full = module("text_encoder.full.p2");
    let (ids, lens) = ids_and_lens(&full, "arg0", "arg1");
    let e = rel_l2(&te.forward(&ids, &lens).unwrap().to_f32().unwrap(), full.want("out.last_hidden_state"));
    eprintln!("umt5 last_hidden_state with f16 matrices: relative L2 {e:.2e}");
    assert!(e < 2e-3, "{e:.3e}");
}

#[test]
fn f16_placement_refuses_weights_beyond_f16_range() {
    let dir = variant("f16range", &|k| k.into(), None);
    let w = Weights::open_dir(&gpu(), &dir, f32_placement()).unwrap();
    let mut all = BTreeMap::new();
    for (k, info) in w.entries() {
        let mut v = w.host_f32(k, &info.shape).unwrap();
        if k == "encoder.block.1.layer.1.DenseReluDense.wo.weight" {
            v[7] = 7.0e4;
        }
        all.insert(k.clone(), (info.shape.clone(), v));
    }
    drop(w);
    t2v::weights::write_f32(&dir.join("model.safetensors"), &all).unwrap();
    let te = UMT5EncoderModel::from_dir(&gpu(), &dir, Placement { matrices: DType::F16 }).unwrap();
    let full = module("text_encoder.full.p2");
    let (ids, lens) = ids_and_lens(&full, "arg0", "arg1");
    let e = te.forward(&ids, &lens).err().unwrap().to_string();
    assert!(e.contains("encoder.block.1.layer.1.DenseReluDense.wo.weight") && e.contains("f16") && e.contains("7e4"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn encode_runs_only_real_tokens_and_matches_the_padded_run() {
    // The long prompt (512 real tokens) and the padded short one: encode() runs 512 + 12
    // tokens instead of 2 × 512; its real rows are transformers' last_hidden_state rows, the
    // rest exact zeros.
    let te = UMT5EncoderModel::from_dir(&gpu(), &wan().join("tiny-wan/text_encoder"), f32_placement()).unwrap();
    let full = module("text_encoder.full.p2");
    let (ids, lens) = ids_and_lens(&full, "arg0", "arg1");
    let got = te.encode_ids(&ids, &lens).unwrap().to_f32().unwrap();
    let padded = te.forward(&ids, &lens).unwrap().to_f32().unwrap();
    let want = full.want("out.last_hidden_state");
    let (l, d) = (512, te.config.d_model);
    let (mut g, mut w, mut max_diff) = (Vec::new(), Vec::new(), 0.0f32);
    for (b, &n) in lens.iter().enumerate() {
        let real = b * l * d..(b * l + n) * d;
        g.extend_from_slice(&got[real.clone()]);
        w.extend_from_slice(&want[real.clone()]);
        max_diff = got[real.clone()].iter().zip(&padded[real]).fold(max_diff, |m, (a, b)| m.max((a - b).abs()));
        assert!(got[(b * l + n) * d..(b + 1) * l * d].iter().all(|&x| x == 0.0), "prompt {b}: padded rows not zero");
    }
    let e = rel_l2(&g, &w);
    eprintln!("umt5 encode (real tokens only): relative L2 {e:.2e}; max |trimmed − padded run| {max_diff:e}");
    assert!(e <= TOL, "{e:.3e}");
}

#[test]
fn feed_forward_wider_than_a_binding_runs_in_blocks() {
    // wi_0 / wi_1 [16400, 2048] and wo [2048, 16400] in f32 are 134 MB each, over lavapipe's
    // 128 MiB binding: the gated FF runs as d_ff blocks whose partial wo products are summed.
    // Checked against an f64 CPU reference of the same synthetic weights on 3 tokens.
    use t2v::models::umt5::UMT5DenseGatedActDense;
    let g = gpu();
    let c = UMT5Config { d_model: 2048, d_ff: 16400, ..UMT5Config::default() };
    let bytes = (c.d_model * c.d_ff * 4) as u64;
    if bytes <= g.max_binding() {
        eprintln!("skipped: this adapter binds {bytes} B whole");
        return;
    }
    let w = Weights::synthetic(&g, "ff", f32_placement());
    let ff = UMT5DenseGatedActDense::load(&w.at("ff"), &c).unwrap();
    assert!(ff.blocks.len() >= 2, "{} blocks", ff.blocks.len());
    let x = Rng::new(3).normals(3 * c.d_model, 1.0);
    let y = ff.forward(&upload(&[3, c.d_model], &x)).unwrap().to_f32().unwrap();
    let vals = w.synthesized();
    let (wi0, wi1, wo) = (&vals["ff.wi_0.weight"].1, &vals["ff.wi_1.weight"].1, &vals["ff.wo.weight"].1);
    let gelu = |v: f64| 0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh());
    let mut want = vec![0.0f64; 3 * c.d_model];
    for t in 0..3 {
        let xt = &x[t * c.d_model..][..c.d_model];
        let h: Vec<f64> = (0..c.d_ff)
            .map(|j| {
                let dot = |w: &[f32]| w[j * c.d_model..][..c.d_model].iter().zip(xt).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
                gelu(dot(wi0)) * dot(wi1)
            })
            .collect();
        for o in 0..c.d_model {
            want[t * c.d_model + o] = wo[o * c.d_ff..][..c.d_ff].iter().zip(&h).map(|(a, b)| *a as f64 * b).sum();
        }
    }
    let e = rel_l2(&y, &want);
    eprintln!("umt5 FF in {} blocks: relative L2 {e:.2e}", ff.blocks.len());
    assert!(e <= 1e-5, "{e:.3e}");
}
