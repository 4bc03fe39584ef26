#!/usr/bin/env python3
"""Wan 2.1 text-to-video reference fixtures (diffusers 0.42.1 / transformers 5.24 are the judge).

    tools/reference/.venv/bin/python tools/reference/wan_fixtures.py   (or via make_fixtures.py)

Writes tests/fixtures/wan/ (layout: tests/fixtures/wan/README.md):
  tiny-wan/            WanPipeline.save_pretrained, float32: T5 Unigram tokenizer from a local
                       vocab, UMT5EncoderModel (2 shards + index), WanTransformer3DModel
                       (2 shards + index), AutoencoderKLWan (2.1 layout), UniPC as Wan ships it
  tiny-wan-b/          another transformer shape stored in bfloat16; other components are
                       symlinks into tiny-wan/
  tokenizer_cases.json awkward prompts → prompt_clean → input_ids / attention_mask (512)
  modules/             module dumps (dumping.py format) + manifest.json
  cases.json, cases/   WanPipeline end to end, with diffusers' own f32-vs-f64 error
  tiny-wan22-a/        Wan 2.2 A14B's layout: two experts (transformer = tiny-wan's, linked;
                       transformer_2 new random weights, bfloat16), boundary_ratio 0.875 as the
                       A14B repo; the rest linked to tiny-wan/
  experts.json, experts/  the two-expert WanPipeline end to end (--experts-only rewrites them)
  tiny-wan22-ti2v/     Wan 2.2 TI2V's layout: the Wan 2.2 VAE (z 48, patchify 2, residual up
                       blocks with DupUp3D shortcuts, decoder wider than the encoder), a
                       48-channel transformer, expand_timesteps true, UniPC with flow_shift 5;
                       tokenizer and text encoder linked to tiny-wan/
  modules/vae22.*      its VAE's decode and decoder chunk dumps
  ti2v.json, ti2v/     WanPipeline (expand_timesteps) end to end (--ti2v-only rewrites these)
  modules/*.tiled_decode.*  both tiny VAEs' decode with enable_tiling (small tiles, several overlapping
                       both ways, 1 and 2 latent frames): diffusers' tiled_decode, its blending
                       re-done bit for bit in float32 numpy (--tiling-only rewrites these)
  manifest.json        every file written, its size and sha256

Every run starts from fixed seeds, one thread, AVX2-pinned kernels; two runs are byte-identical.
Everything is run from the pipeline as reloaded from disk (`WanPipeline.from_pretrained`).
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections import OrderedDict
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures as mf  # noqa: E402  (first: pins the CPU code paths before torch loads)
import torch  # noqa: E402
from torch import nn  # noqa: E402

from dumping import Dumper, replay, write_safetensors  # noqa: E402

SEED_TEXT, SEED_TRANSFORMER, SEED_VAE, SEED_TRANSFORMER_B, SEED_STATS, SEED_INPUTS = 21, 22, 23, 24, 25, 26
SEED_TRANSFORMER_2, SEED_VAE22, SEED_TRANSFORMER_48 = 27, 28, 29
BOUNDARY_RATIO = 0.875  # Wan2.2-T2V-A14B's (WAN.md 1.11)
MAX_LEN = 512  # WanPipeline.__call__'s max_sequence_length default

# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------

UMT5_CONFIG = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
                   relative_attention_max_distance=16, feed_forward_proj="gated-gelu", dropout_rate=0.0,
                   layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                   tie_word_embeddings=False, scalable_attention=True, tokenizer_class="T5Tokenizer")
TRANSFORMER_CONFIG = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
                          out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                          qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=32)
# freq_dim 64: the engine must read the sinusoid width from config.json (the real models all use 256)
TRANSFORMER_B_CONFIG = dict(TRANSFORMER_CONFIG, num_attention_heads=3, attention_head_dim=16, ffn_dim=40, num_layers=3, freq_dim=64)
# dim_mult [1,2,4,4] as the real Wan2.1 VAE (so the decoder has the real block structure: a 1x1x1
# shortcut in up_blocks.1 only, upsample3d at up_blocks.0/1, upsample2d at up_blocks.2), with
# base_dim 2 instead of 96: decoder dims 2*[4,4,4,2,1] = [8,8,8,4,2].
VAE_CONFIG = dict(base_dim=2, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                  temperal_downsample=[False, True, True], dropout=0.0)
# The Wan 2.2 VAE's structure (WAN.md §4.1: is_residual, patch 2, z 48, spatial factor 16, a
# decoder wider than the encoder) with small widths: decoder dims 6·[4,4,4,2,1] = [24,24,24,12,6]
# (DupUp3D repeats 8, 8, then 2 channels, as the real [1024,1024,1024,512,256]).
VAE22_CONFIG = dict(base_dim=4, decoder_base_dim=6, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                    temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12,
                    out_channels=12, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4)
TRANSFORMER_48_CONFIG = dict(TRANSFORMER_CONFIG, in_channels=48, out_channels=48)
# The Wan repos' scheduler_config.json (WAN.md §2.1)
SCHEDULER_CONFIG = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02,
                        solver_order=2, prediction_type="flow_prediction", predict_x0=True, solver_type="bh2",
                        lower_order_final=True, disable_corrector=[], solver_p=None, use_flow_sigmas=True,
                        flow_shift=3.0, final_sigmas_type="zero", timestep_spacing="linspace", steps_offset=0,
                        thresholding=False, use_karras_sigmas=False, use_exponential_sigmas=False,
                        use_beta_sigmas=False, rescale_betas_zero_snr=False)
TEXT_SHARD = "60KB"  # text encoder: 148 KB of f32 weights -> 3 shards + model.safetensors.index.json
TRANSFORMER_SHARD = "100KB"  # like the real 1.3B folder: sharded transformer + index

# gains (N(0,1)·gain/√fan_in for linear / conv weights): keep activations O(1) and frames unsaturated
VAE_GAINS = {"decoder.conv_out": 0.7}

# ---------------------------------------------------------------------------------------------
# tokenizer vocabulary (Unigram pieces + log-probability scores)
# ---------------------------------------------------------------------------------------------

WORDS = """a an the of in on at to and with under over by for from is are its his her
cat cats dog dogs monkey dance dancing dances walk walking run running jump jumping sit sitting
lion fox panda horse bird fish astronaut robot city street night day light lights neon rain snow
sun sunset sky cloud clouds sea ocean wave waves beach forest tree trees mountain river lake
red blue green yellow black white gray grey golden bright dark colorful static slow fast
video picture image painting photo style quality low high worst best detailed details blurred
overexposed subtitles works images overall jpeg compression residue ugly incomplete extra
fingers poorly drawn hands faces deformed disfigured misshapen limbs fused still messy
background three legs many people walking backwards tones cinematic shot camera close up wide
angle slow motion 4k hd realistic cartoon anime kitchen cake baking flour dog cooking window
small big little old young happy sad beautiful playing piano guitar eating bamboo riding
sailing boat balloon hot air spaceship mars moon stars space earth fire water ice wind
tom jerry bold""".split()
SUBWORDS = ["ing", "ed", "s", "es", "er", "ers", "ly", "tion", "ment", "un", "re", "est", "y", "ness", "ful"]
ACCENTED_WORDS = ["▁café", "▁crème", "▁brûlée", "▁naïve", "▁über", "▁señor", "▁à", "▁Paris", "▁São", "▁Paulo",
                  "▁garçon", "▁Zürich", "▁Ελλάδα", "▁кот", "▁собака"]
ACCENTED_CHARS = list("éèêëàâäçñüöóòôúùûíìîïåøæœßãõ") + list("ÉÀÇÑÜÖ") + list("αβγδλμπσωΩ") + list("котсаб")
CJK_WORDS = ["▁一只", "猫咪", "日本", "中国", "跳舞", "▁猫", "下雨", "城市"]
CJK_CHARS = list("猫狗在跳舞的一只山水中国日本人雨城市夜晚の") + list("ねこがいるアニメ") + list("고양이")
PUNCT = list(".,!?;:'\"()-&<>/#@%*+=[]{}_~|\\`$^")


def build_vocab() -> list:
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.5)]
    seen = {p for p, _ in vocab}

    def add(piece, score):
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    for i, w in enumerate(WORDS):
        add("▁" + w, round(-4.0 - 0.01 * i, 4))
    for i, w in enumerate(WORDS[:40]):  # capitalised forms of the commonest words
        add("▁" + w.capitalize(), round(-6.0 - 0.01 * i, 4))
    for i, s in enumerate(SUBWORDS):
        add(s, round(-6.5 - 0.01 * i, 4))
    for i, w in enumerate(ACCENTED_WORDS + CJK_WORDS):
        add(w, round(-7.0 - 0.01 * i, 4))
    for c in "abcdefghijklmnopqrstuvwxyz":
        add(c, -9.0)
        add("▁" + c, -8.5)
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        add(c, -10.0)
    for c in "0123456789":
        add(c, -9.5)
        add("▁" + c, -9.2)
    for c in PUNCT:
        add(c, -9.8)
    for c in ACCENTED_CHARS + CJK_CHARS:
        add(c, -10.5)
    return vocab


EXTRA_IDS = 4  # <extra_id_0..3> as added special tokens (umt5 has sentinels too)

NEGATIVE_PROMPT = ("Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
                   "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
                   "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
                   "fused fingers, still picture, messy background, three legs, many people in the background, "
                   "walking backwards")
LONG_PROMPT = " ".join(["a red fox walking in the snow, cinematic shot, 4k;"] * 60)  # > 512 tokens

TOKENIZER_PROMPTS = [
    ("basic", "A cat dancing in the rain"),
    ("whitespace", "  Leading and trailing   spaces\t\ttabs\n\nnewlines \r\n crlf\x0bvt\x0cff  "),
    ("unicode_spaces", "nbsp\u00a0em\u2003ideographic\u3000narrow\u202fline\u2028para\u2029end"),
    ("html_double_escaped", "Tom &amp;amp; Jerry &amp;lt;3 &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;x&#39; &eacute;t&eacute;"),
    ("html_triple_escaped", "&amp;amp;lt;tag&amp;amp;gt; stays once-escaped"),
    ("accents_precomposed", "Un café crème brûlée à Paris, naïve señor über Zürich, São Paulo garçon"),
    ("accents_combining", "cafe\u0301 cre\u0300me nai\u0308ve"),
    ("cjk", "一只猫在跳舞 日本の猫 中国城市下雨 고양이"),
    ("greek_cyrillic", "Ελλάδα кот и собака αβγ"),
    ("emoji_unk", "A cat 🐱🐶 emoji 👍🏽 and ZWJ 👨‍👩‍👧 flags 🇫🇷 end"),
    ("zero_width", "zero\u200bwidth\u200djoiner\ufeffbom"),
    ("fullwidth_ligature", "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ ﬁ ligature ½ ²"),
    ("case_digits_punct", "UPPER case MiXeD 123 4.5% #tag @user (parens) [brackets] {braces} a/b c\\d ~tilde~"),
    ("special_tokens_literal", "<extra_id_0> sentinel and </s> literal eos <pad> pad <unk> unk <extra_id_3>"),
    ("only_whitespace", " \t\n "),
    ("empty_negative", ""),
    ("recommended_negative", NEGATIVE_PROMPT),
    ("long_over_512", LONG_PROMPT),
    ("exactly_511_text_tokens", " ".join(["cat"] * 511)),  # + </s> = 512: no padding, no truncation
    ("exactly_512_text_tokens", " ".join(["cat"] * 512)),  # one token too many: the last "cat" is cut
]


# ---------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------

def randomize(model: nn.Module, seed: int, gain: float = 1.0, gains: dict | None = None) -> list:
    """Overwrite every parameter with random values; returns the names (all parameters, checked)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm
    from transformers.models.umt5.modeling_umt5 import UMT5LayerNorm

    gains = gains or {}
    g = torch.Generator().manual_seed(seed)
    owner = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = (mname, m, pname)
    done = []
    for name, p in model.named_parameters():
        mname, m, pname = owner[name]
        noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
        if isinstance(m, (nn.LayerNorm, nn.RMSNorm, UMT5LayerNorm, WanRMS_norm)) or type(m).__name__ == "FP32LayerNorm":
            val = 1.0 + 0.2 * noise if pname in ("weight", "gamma") else 0.1 * noise
        elif isinstance(m, nn.Embedding):
            val = 0.5 * noise  # token table and UMT5's per-layer relative_attention_bias
        elif pname == "scale_shift_table":
            val = 0.2 * noise  # real init: randn / sqrt(dim); modulation is (1 + scale), + shift
        elif pname == "bias":
            val = 0.1 * noise
        elif pname == "weight" and p.dim() >= 2 and isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            fan_in = p[0].numel()
            val = noise * gains.get(mname, gain) / math.sqrt(fan_in)
        else:
            raise RuntimeError(f"randomize: no rule for parameter {name} of {type(m).__name__}")
        p.copy_(val.to(p.dtype))
        done.append(name)
    return done


def build_tokenizer():
    from transformers import T5Tokenizer

    tok = T5Tokenizer(vocab=build_vocab(), extra_ids=EXTRA_IDS)
    return tok


def build_text_encoder(vocab_size: int):
    from transformers import UMT5Config, UMT5EncoderModel

    te = UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, **UMT5_CONFIG))
    randomize(te, SEED_TEXT)
    return te.eval()


def build_transformer(cfg: dict, seed: int):
    from diffusers import WanTransformer3DModel

    tr = WanTransformer3DModel(**cfg)
    randomize(tr, seed)
    return tr.eval()


def build_vae():
    from diffusers import AutoencoderKLWan

    g = torch.Generator().manual_seed(SEED_STATS)
    mean = [round(float(x), 4) for x in 0.5 * torch.randn(16, generator=g)]
    std = [round(float(x), 4) for x in 1.5 * torch.exp(0.3 * torch.randn(16, generator=g))]
    vae = AutoencoderKLWan(**VAE_CONFIG, latents_mean=mean, latents_std=std)
    randomize(vae, SEED_VAE, gains=VAE_GAINS)
    return vae.eval()


def build_scheduler():
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(**SCHEDULER_CONFIG)


def save_component(model, out: Path, shard: str | None) -> None:
    if out.exists():
        shutil.rmtree(out)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out, safe_serialization=True, **kw)


def build_and_save(wan: Path) -> dict:
    from diffusers import WanPipeline

    tok = build_tokenizer()
    vocab_size = (len(tok) + 63) // 64 * 64  # like umt5: the embedding has spare rows past the tokenizer
    te = build_text_encoder(vocab_size)
    tr = build_transformer(TRANSFORMER_CONFIG, SEED_TRANSFORMER)
    vae = build_vae()
    pipe = WanPipeline(tokenizer=tok, text_encoder=te, vae=vae, scheduler=build_scheduler(), transformer=tr)
    out = wan / "tiny-wan"
    # the tokenizer has not been called yet: tokenizer.json gets no padding/truncation block
    pipe.save_pretrained(out, safe_serialization=True)
    save_component(te, out / "text_encoder", TEXT_SHARD)
    save_component(tr, out / "transformer", TRANSFORMER_SHARD)
    tj = json.loads((out / "tokenizer" / "tokenizer.json").read_text())
    assert tj.get("padding") is None and tj.get("truncation") is None, "tokenizer.json persisted padding/truncation"
    te_files = sorted(p.name for p in (out / "text_encoder").iterdir())
    assert "model.safetensors.index.json" in te_files and sum(f.endswith(".safetensors") for f in te_files) >= 2, te_files
    tr_files = sorted(p.name for p in (out / "transformer").iterdir())
    assert "diffusion_pytorch_model.safetensors.index.json" in tr_files, tr_files

    # tiny-wan-b: another transformer shape, stored bfloat16; the rest links to tiny-wan
    trb = build_transformer(TRANSFORMER_B_CONFIG, SEED_TRANSFORMER_B)
    outb = wan / "tiny-wan-b"
    outb.mkdir(parents=True)
    save_component(copy.deepcopy(trb).to(torch.bfloat16), outb / "transformer", None)
    for sub in ("tokenizer", "text_encoder", "vae", "scheduler"):
        os.symlink(Path("..") / "tiny-wan" / sub, outb / sub, target_is_directory=True)
    shutil.copy(out / "model_index.json", outb / "model_index.json")
    return {"tokenizer": tok, "text_encoder": te, "transformer": tr, "vae": vae, "transformer_b": trb}


def load_pipeline(path: Path, dtype=torch.float32, vae_f32: bool = False):
    from diffusers import AutoencoderKLWan, WanPipeline

    kw = {}
    if vae_f32:
        kw["vae"] = AutoencoderKLWan.from_pretrained(path / "vae", torch_dtype=torch.float32)
    pipe = WanPipeline.from_pretrained(path, torch_dtype=dtype, **kw)
    pipe.set_progress_bar_config(disable=True)
    for m in (pipe.transformer, pipe.transformer_2, pipe.vae, pipe.text_encoder):
        if m is not None:
            m.eval()
    return pipe


def same_weights(a: nn.Module, b: nn.Module, name: str, cast=None) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), name
    for k in sa:
        x = sa[k] if cast is None else sa[k].to(cast)
        assert torch.equal(x, sb[k].to(x.dtype)), f"{name}: {k} did not load back identically"


# ---------------------------------------------------------------------------------------------
# tokenizer cases
# ---------------------------------------------------------------------------------------------

def dumps_compact(cases: list) -> str:
    """JSON with one line per field (lists of ids on one line): readable and small."""
    lines = []
    for c in cases:
        fields = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':') if isinstance(v, list) else (', ', ': '))}" for k, v in c.items()]
        lines.append(" {\n" + ",\n".join(fields) + "\n }")
    return "[\n" + ",\n".join(lines) + "\n]\n"


def tokenizer_cases(pipe, wan: Path) -> list:
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean
    from diffusers.utils import is_ftfy_available

    assert not is_ftfy_available(), "ftfy is installed: prompt_clean would run ftfy.fix_text (uninstall it)"
    tok = pipe.tokenizer
    cases = []
    for name, prompt in TOKENIZER_PROMPTS:
        clean = prompt_clean(prompt)
        enc = tok([clean], padding="max_length", max_length=MAX_LEN, truncation=True, add_special_tokens=True,
                  return_attention_mask=True, return_tensors="pt")
        full = tok(clean, add_special_tokens=True).input_ids
        # what the pipeline itself passes to the text encoder (hooked), must be the same
        seen = []
        h = pipe.text_encoder.register_forward_pre_hook(lambda m, a: seen.append((a[0].clone(), a[1].clone())))
        try:
            pipe._get_t5_prompt_embeds(prompt, max_sequence_length=MAX_LEN)
        finally:
            h.remove()
        assert torch.equal(seen[0][0], enc.input_ids) and torch.equal(seen[0][1], enc.attention_mask), name
        ids = enc.input_ids[0].tolist()
        mask = enc.attention_mask[0].tolist()
        seq_len = int(sum(mask))
        cases.append(OrderedDict([
            ("name", name),
            ("prompt", prompt),
            ("cleaned", clean),
            ("html_unescaped_twice", html.unescape(html.unescape(prompt)) != prompt),
            ("num_tokens_untruncated", len(full)),
            ("seq_len", seq_len),
            ("tokens", tok.convert_ids_to_tokens(ids[:seq_len])),
            ("input_ids", ids),
        ]))
        # the mask is not stored: it is 1 for the first seq_len ids, 0 for the rest
        assert mask == [1] * seq_len + [0] * (MAX_LEN - seq_len) and all(i == 0 for i in ids[seq_len:]), name
    (wan / "tokenizer_cases.json").write_text(dumps_compact(cases), encoding="utf-8")
    by = {c["name"]: c for c in cases}
    assert by["empty_negative"]["input_ids"][:2] == [1, 0] and by["empty_negative"]["seq_len"] == 1
    assert by["long_over_512"]["num_tokens_untruncated"] > MAX_LEN and by["long_over_512"]["seq_len"] == MAX_LEN
    assert by["long_over_512"]["input_ids"][-1] == 1
    assert any(2 in c["input_ids"] for c in cases), "no <unk> case"
    assert by["exactly_511_text_tokens"]["num_tokens_untruncated"] == MAX_LEN == by["exactly_511_text_tokens"]["seq_len"]
    assert by["exactly_512_text_tokens"]["num_tokens_untruncated"] == MAX_LEN + 1
    return cases


# ---------------------------------------------------------------------------------------------
# module dumps
# ---------------------------------------------------------------------------------------------

def capture_outputs(root: nn.Module, paths, run):
    """Forward hooks that keep the output of every call of the given submodules."""
    rec: dict = {p: [] for p in paths}
    hs = [root.get_submodule(p).register_forward_hook(lambda m, a, o, p=p: rec[p].append({"out": o.detach().clone()}))
          for p in paths]
    try:
        res = run()
    finally:
        for h in hs:
            h.remove()
    return res, rec


def dump_text_encoder(d: Dumper, pipe) -> None:
    """2 prompts: LONG_PROMPT (truncated to 512, no padding) and a short padded one, as the pipeline tokenizes."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    te, tok = pipe.text_encoder, pipe.tokenizer
    prompts = [LONG_PROMPT, "A cat dancing in the rain, café 猫 🐱"]
    enc = tok([prompt_clean(p) for p in prompts], padding="max_length", max_length=MAX_LEN, truncation=True,
              add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    ids, mask = enc.input_ids, enc.attention_mask
    paths = [f"encoder.block.{i}" for i in range(te.config.num_layers)]
    res = d.capture("text_encoder", te, [""], "p2",
                    lambda: capture_outputs(te, paths + ["encoder.final_layer_norm"], lambda: te(ids, mask)))
    out, rec = res
    # blocks: output hidden states only (block.0's input is shared.weight[input_ids], block.N's input
    # is block.N-1's output; the key mask is text_encoder.full.p2's arg1).
    for i, p in enumerate(paths):
        (call,) = rec[p]
        tensors = OrderedDict([("out", call["out"])])
        if "arg0" in call:
            tensors["arg0"] = call["arg0"]
        d.write("text_encoder", p, "p2", "UMT5Block", tensors, {"kw.attention_mask": json.dumps("text_encoder.full.p2 arg1 (0/1 key mask)")})
    h = out.last_hidden_state
    assert torch.equal(rec["encoder.final_layer_norm"][0]["out"], h)
    seq = mask.sum(1).tolist()
    print(f"  umt5: last_hidden_state {tuple(h.shape)} std {h.std():.3f}, seq_lens {seq}", flush=True)
    # the pipeline's trimmed + zero-filled prompt embeds of the same two prompts
    emb = pipe._get_t5_prompt_embeds(prompts, max_sequence_length=MAX_LEN)
    for r, n in enumerate(seq):
        assert torch.equal(emb[r, :n], h[r, :n]) and not emb[r, n:].any()
    # stored for the padded prompt only (the long one is last_hidden_state itself, no padding)
    d.write("pipeline", "encode_prompt", "p1", "WanPipeline._get_t5_prompt_embeds",
            OrderedDict([("input_ids", ids[1:]), ("attention_mask", mask[1:]), ("out", emb[1:])]),
            {"prompt": json.dumps(prompts[1], ensure_ascii=False), "max_sequence_length": str(MAX_LEN)})
    # zeroing any layer's relative_attention_bias must change the output (every bias is live)
    for i in range(te.config.num_layers):
        t2 = copy.deepcopy(te)
        t2.encoder.block[i].layer[0].SelfAttention.relative_attention_bias.weight.zero_()
        ch = float((t2(ids, mask).last_hidden_state - h).abs().max() / h.abs().max())
        assert ch > 1e-3, (i, ch)
        print(f"  umt5: zero block {i} relative_attention_bias -> rel change {ch:.3g}", flush=True)


def context_embeds(g: torch.Generator, batch: int, seq_lens, dim: int) -> torch.Tensor:
    """Prompt embeds as the pipeline makes them: seq_len rows of N(0,1)-ish values, then exact zeros."""
    e = torch.zeros(batch, MAX_LEN, dim)
    for b, n in enumerate(seq_lens):
        e[b, :n] = torch.randn(n, dim, generator=g)
    return e


TRANSFORMER_PATHS = ["", "rope", "patch_embedding", "condition_embedder", "blocks.0", "blocks.1", "blocks.0.attn1",
                     "blocks.0.attn2", "norm_out", "proj_out"]


def dump_transformer(d: Dumper, tr, trb) -> None:
    g = torch.Generator().manual_seed(SEED_INPUTS)
    # grid A: latent F×H×W 3×6×10 -> post-patch 3×3×5 (odd), batch 1, timestep 999
    xa = torch.randn(1, 16, 3, 6, 10, generator=g)
    ca = context_embeds(g, 1, [7], 32)
    ta = torch.tensor([999])
    # grid B: 2×10×6 -> 2×5×3, batch 2 (per-sample timesteps 500 and 3, different prompt lengths)
    xb = torch.randn(2, 16, 2, 10, 6, generator=g)
    cb = context_embeds(g, 2, [12, 1], 32)
    tb = torch.tensor([500, 3])

    def run(m, x, t, c):
        return m(hidden_states=x, timestep=t, encoder_hidden_states=c, return_dict=False)[0]

    outa = d.capture("transformer", tr, TRANSFORMER_PATHS, "f3h6w10", lambda: run(tr, xa, ta, ca))
    outb = d.capture("transformer", tr, ["", "rope", "patch_embedding", "proj_out"],
                     "f2h10w6b2", lambda: run(tr, xb, tb, cb))
    print(f"  transformer: A out {tuple(outa.shape)} std {outa.std():.3f}; B out {tuple(outb.shape)} std {outb.std():.3f}", flush=True)
    assert 0.2 < float(outa.std()) < 5 and torch.isfinite(outa).all()
    # every path live: zeroing each block's attn1/attn2 out-projection, FFN output, modulation table
    worst = (1.0, "")
    for n in [f"blocks.{i}.{s}" for i in range(len(tr.blocks)) for s in ("attn1.to_out.0", "attn2.to_out.0", "ffn.net.2", "scale_shift_table", "norm2", "attn1.norm_k")] + ["scale_shift_table"]:
        t2 = copy.deepcopy(tr)
        obj = t2.get_submodule(n) if not n.endswith("scale_shift_table") else None
        if obj is None:
            parent = t2.get_submodule(n.rsplit(".", 1)[0]) if "." in n else t2
            parent.scale_shift_table.zero_()
        else:
            obj.weight.zero_()
        ch = float((run(t2, xa, ta, ca) - outa).abs().max() / outa.abs().max())
        worst = min(worst, (ch, n))
    assert worst[0] > 1e-3, worst
    print(f"  transformer: zeroing any attn out / ffn out / modulation table / norm2 / norm_k: smallest rel change {worst[0]:.3g} ({worst[1]})", flush=True)
    outbb = d.capture("transformer_b", trb, ["", "rope"], "f3h6w10", lambda: run(trb, xa, ta, ca))
    print(f"  transformer_b (bf16 file, f32 compute): out std {outbb.std():.3f}", flush=True)


def dump_vae(d: Dumper, vae) -> None:
    """decode at latent 4×6 with 1 frame and 2×3 with 4 frames; decoder chunk by chunk at latent 2×3 × 3 frames."""
    g = torch.Generator().manual_seed(SEED_INPUTS + 1)
    z1 = torch.randn(1, 16, 1, 4, 6, generator=g)
    z4 = torch.randn(1, 16, 4, 2, 3, generator=g)
    z3 = torch.randn(1, 16, 3, 2, 3, generator=g)
    cfg = vae.config
    mean = torch.tensor(cfg.latents_mean).view(1, cfg.z_dim, 1, 1, 1)
    inv = 1.0 / torch.tensor(cfg.latents_std).view(1, cfg.z_dim, 1, 1, 1)

    def decode(case, z):
        den = z / inv + mean  # exactly the pipeline's de-normalisation (WAN.md §1.8)
        sample = d.capture("vae", vae, ["post_quant_conv"], case, lambda: vae.decode(den, return_dict=False)[0])
        d.write("vae", "decode", case, "AutoencoderKLWan.decode",
                OrderedDict([("latents", z), ("arg0", den), ("out.sample", sample)]),
                {"denormalize": json.dumps("arg0 = latents / (1 / latents_std) + latents_mean (per channel, float32)")})
        return sample

    s1 = decode("t1h4w6", z1)
    s4 = decode("t4h2w3", z4)
    sat = float((s4.abs() >= 1).float().mean())
    print(f"  vae decode: {tuple(s1.shape)}, {tuple(s4.shape)} std {s4.std():.3f}, clamped {100 * sat:.1f}%", flush=True)
    assert sat < 0.1 and float(s4.std()) > 0.1
    # first latent frame decodes the same alone as with more frames after it (causality)
    f0 = vae.decode(z4[:, :, :1] / inv + mean, return_dict=False)[0]
    assert float((s4[:, :, :1] - f0).abs().max()) < 1e-5, "first latent frame is not decoded causally"  # 1.5e-6: conv rounding

    # per-chunk decoder calls, with the feature caches each call starts from
    inner = ["conv_in", "mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3"]
    den3 = z3 / inv + mean
    calls = []

    def pre(m, args, kwargs):
        cache = kwargs["feat_cache"]
        t = OrderedDict([("arg0", args[0].detach().clone())])
        meta = {"kw.first_chunk": json.dumps(bool(kwargs.get("first_chunk", False))),
                "kw.feat_idx": json.dumps(list(kwargs["feat_idx"]))}
        for i, c in enumerate(cache):
            if torch.is_tensor(c):
                t[f"kw.feat_cache.{i}"] = c.detach().clone()
            else:
                meta[f"kw.feat_cache.{i}"] = json.dumps(c)
        calls.append([t, meta])

    def post(m, args, kwargs, out):
        calls[-1][0]["out"] = out.detach().clone()
        cache = kwargs["feat_cache"]
        calls[-1][1]["feat_cache_used"] = json.dumps(int(kwargs["feat_idx"][0]))
        for i, c in enumerate(cache):
            if torch.is_tensor(c):
                calls[-1][0][f"cache_after.{i}"] = c.detach().clone()
            else:
                calls[-1][1][f"cache_after.{i}"] = json.dumps(c)

    h1 = vae.decoder.register_forward_pre_hook(pre, with_kwargs=True)
    h2 = vae.decoder.register_forward_hook(post, with_kwargs=True)
    try:
        full, rec = capture_outputs(vae.decoder, inner, lambda: vae.decode(den3, return_dict=False)[0])
    finally:
        h1.remove()
        h2.remove()
    assert len(calls) == 3
    outs = []
    for ci, (t, meta) in enumerate(calls):
        for p in inner:
            t[f"inner.{p}"] = rec[p][ci]["out"]
        if True:  # a call's cache_after is the next call's cache_in (kw.feat_cache.*): stored once
            for k in [k for k in t if k.startswith("cache_after.")]:
                del t[k]
            for k in [k for k in meta if k.startswith("cache_after.")]:
                del meta[k]
        outs.append(t["out"])
        d.write("vae", "decoder", f"chunk{ci}", "WanDecoder3d", t, meta)
    d.write("vae", "decode", "t3h2w3", "AutoencoderKLWan.decode",
            OrderedDict([("latents", z3), ("arg0", den3), ("out.sample", full)]), {})
    assert torch.equal(torch.cat(outs, 2).clamp(-1, 1), full)
    print(f"  vae decoder chunks: outs {[tuple(o.shape) for o in outs]}; cache slots used {calls[-1][1]['feat_cache_used']}", flush=True)
    # the upsample3d time_conv paths are live (zeroing them changes the 4-frame decode)
    for p in ("decoder.up_blocks.0.upsamplers.0.time_conv", "decoder.up_blocks.1.upsamplers.0.time_conv", "decoder.mid_block.attentions.0.proj"):
        v2 = copy.deepcopy(vae)
        v2.get_submodule(p).weight.zero_()
        ch = float((v2.decode(z4 / inv + mean, return_dict=False)[0] - s4).abs().max())
        assert ch > 1e-3, (p, ch)
        print(f"  vae: zero {p} -> max |Δframes| {ch:.3g}", flush=True)


# ---------------------------------------------------------------------------------------------
# end to end
# ---------------------------------------------------------------------------------------------

# name, model, height, width, num_frames, steps, guidance, scheduler, seed, prompt, negative_prompt
CASES = [
    ("wan_16x32_f1_cfg", "tiny-wan", 16, 32, 1, 2, 5.0, "unipc", 0, "A cat dancing in the rain", None),
    ("wan_48x16_f5_nocfg", "tiny-wan", 48, 16, 5, 3, 1.0, "unipc", 1, "a red fox in the snow, cinematic shot", None),
    ("wan_16x48_f9_cfg_neg", "tiny-wan", 16, 48, 9, 4, 5.0, "unipc", 2, "Un café crème à Paris 🐱  &amp;amp; 猫", NEGATIVE_PROMPT),
    ("wan_16x16_f13_euler_cfg", "tiny-wan", 16, 16, 13, 2, 5.0, "euler", 3, "waves crashing on rocks at sunset", None),
    ("wan_32x16_f6to5_cfg", "tiny-wan", 32, 16, 6, 3, 5.0, "unipc", 4, "an astronaut riding a horse on mars", None),
    ("wan_80x48_f1_cfg_s4", "tiny-wan", 80, 48, 1, 4, 5.0, "unipc", 5, LONG_PROMPT, "ugly, blurred"),
    ("wan_16x32_f1_euler_shift1", "tiny-wan", 16, 32, 1, 3, 1.0, "euler-default", 6, "a panda eating bamboo", None),
    ("wanb_48x16_f5_cfg", "tiny-wan-b", 48, 16, 5, 3, 5.0, "unipc", 7, "a dog running on the beach", None),
    ("wanb_16x48_f5_euler_nocfg", "tiny-wan-b", 16, 48, 5, 2, 1.0, "euler", 8, "neon city street at night", None),
]
FIELDS = ["name", "model", "height", "width", "num_frames", "num_inference_steps", "guidance_scale", "scheduler", "seed",
          "prompt", "negative_prompt"]
BF16_CASE = "wan_48x16_f5_nocfg"


def set_scheduler(pipe, kind: str) -> None:
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

    if kind == "dpm++":  # the UniPC config's use_flow_sigmas / flow_prediction / flow_shift carry over
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    elif kind == "euler":  # the UniPC config's flow_shift carried over as FlowMatchEuler's `shift`
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=pipe.scheduler.config.flow_shift)
    elif kind == "euler-default":  # what from_config alone gives: FlowMatchEuler has no flow_shift -> shift 1.0
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    else:
        assert kind == "unipc" and type(pipe.scheduler).__name__ == "UniPCMultistepScheduler"


def run_case(pipe, c: dict, latents=None):
    """One WanPipeline call; returns everything recorded."""
    te_calls = []
    h = pipe.text_encoder.register_forward_pre_hook(lambda m, a: te_calls.append((a[0].clone(), a[1].clone())))
    steps, embeds = [], {}

    def cb(p, i, t, kw):
        steps.append(kw["latents"].detach().clone())
        if i == 0:
            embeds["prompt_embeds"] = kw["prompt_embeds"].detach().clone()
            if kw["negative_prompt_embeds"] is not None:
                embeds["negative_prompt_embeds"] = kw["negative_prompt_embeds"].detach().clone()
        return {}

    kw = dict(prompt=c["prompt"], negative_prompt=c["negative_prompt"], height=c["height"], width=c["width"],
              num_frames=c["num_frames"], num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"],
              output_type="np", max_sequence_length=c.get("max_sequence_length", MAX_LEN), callback_on_step_end=cb,
              guidance_scale_2=c.get("guidance_scale_2"),
              callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "negative_prompt_embeds"])
    if latents is None:
        kw["generator"] = torch.Generator().manual_seed(c["seed"])
    else:
        kw["latents"] = latents
    # which expert ran at each step (and how many passes: 2 with guidance), as diffusers chose
    calls, experts = [], []
    hooks = [h]
    for name in ("transformer", "transformer_2"):
        m = getattr(pipe, name, None)
        if m is not None:
            hooks.append(m.register_forward_pre_hook(lambda mod, a, name=name: calls.append(name)))
    inner = kw["callback_on_step_end"]

    def cb_experts(p, i, t, k):
        experts.append(list(calls))
        calls.clear()
        return inner(p, i, t, k)

    kw["callback_on_step_end"] = cb_experts
    try:
        frames = pipe(**kw).frames
    finally:
        for hk in hooks:
            hk.remove()
    return dict(frames=torch.from_numpy(frames), steps=steps, te_calls=te_calls, experts=experts, **embeds)


def err(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.double(), b.double()
    return {"rel_l2": float((a - b).norm() / b.norm()), "max_abs": float((a - b).abs().max())}


def end_to_end(wan: Path, rows: list = CASES, sub: str = "cases") -> list:
    warnings.filterwarnings("ignore")
    (wan / sub).mkdir(parents=True)
    out_cases = []
    for row in rows:
        c = OrderedDict(zip(FIELDS, row[:len(FIELDS)]))
        pipe = load_pipeline(wan / c["model"])
        set_scheduler(pipe, c["scheduler"])
        if len(row) > len(FIELDS) and row[len(FIELDS)]:  # options over the scheduler's config: from_config(config, **options)
            c["scheduler_config"] = row[len(FIELDS)]
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **c["scheduler_config"])
        if len(row) > len(FIELDS) + 1:  # WanPipeline.__call__ arguments off their defaults
            c.update(row[len(FIELDS) + 1])
        nf = c["num_frames"] if c["num_frames"] % 4 == 1 else c["num_frames"] // 4 * 4 + 1
        ch, sf = pipe.transformer.config.in_channels, pipe.vae_scale_factor_spatial
        shape = (1, ch, (nf - 1) // 4 + 1, c["height"] // sf, c["width"] // sf)
        init = torch.randn(shape, generator=torch.Generator().manual_seed(c["seed"]), dtype=torch.float32)
        assert torch.equal(pipe.prepare_latents(1, ch, c["height"], c["width"], nf, torch.float32, torch.device("cpu"),
                                                torch.Generator().manual_seed(c["seed"]), None), init)
        r32 = run_case(pipe, c)
        sch = pipe.scheduler
        timesteps, sigmas = sch.timesteps.clone(), sch.sigmas.clone()
        # same case with the pipeline in float64 (same float32 noise, cast); scheduler as is
        p64 = copy.deepcopy(pipe).to(torch.float64)
        r64 = run_case(p64, c, latents=init.to(torch.float64))
        assert all(torch.equal(a[0], b[0]) for a, b in zip(r32["te_calls"], r64["te_calls"]))
        lat32, lat64 = r32["steps"][-1], r64["steps"][-1]
        ref_err = {"latents": err(lat32, lat64), "frames": err(r32["frames"], r64["frames"])}
        # rerunning from the recorded init latents reproduces the seeded run exactly
        again = run_case(pipe, c, latents=init.clone())
        assert torch.equal(again["frames"], r32["frames"]), c["name"]

        cfg = c["guidance_scale"] > 1.0
        ids = r32["te_calls"]
        t = OrderedDict()
        t["input_ids"], t["attention_mask"] = ids[0]
        seq = int(t["attention_mask"].sum())
        pe = r32["prompt_embeds"]
        assert not pe[:, seq:].any()
        t["prompt_embeds"] = pe[:, :seq]
        if cfg:
            t["negative_input_ids"], t["negative_attention_mask"] = ids[1]
            nseq = int(t["negative_attention_mask"].sum())
            ne = r32["negative_prompt_embeds"]
            assert not ne[:, nseq:].any()
            t["negative_prompt_embeds"] = ne[:, :nseq]
        else:
            assert len(ids) == 1
            nseq = None
        t["init_latents"] = init
        t["timesteps"] = timesteps
        t["sigmas"] = sigmas
        for i, s in enumerate(r32["steps"]):
            t[f"latents.step{i}"] = s
        t["latents"] = lat32
        cfgv = pipe.vae.config
        t["latents_denormalized"] = lat32 / (1.0 / torch.tensor(cfgv.latents_std).view(1, ch, 1, 1, 1)) + torch.tensor(cfgv.latents_mean).view(1, ch, 1, 1, 1)
        t["frames"] = r32["frames"]
        f = wan / sub / f"{c['name']}.safetensors"
        meta = {"case": json.dumps(c, ensure_ascii=False)}
        write_safetensors(f, t, meta)
        sched = OrderedDict([("class", type(sch).__name__)])
        if type(sch).__name__ == "FlowMatchEulerDiscreteScheduler":
            sched["shift"] = sch.config.shift
        else:
            sched["flow_shift"] = sch.config.flow_shift
        c.update(
            file=str(f.relative_to(wan)),
            num_frames_used=nf,
            latent_shape=list(shape),
            patch_grid=[shape[2], shape[3] // 2, shape[4] // 2],
            frames_shape=list(r32["frames"].shape),
            scheduler_used=sched,
            timesteps=[float(x) if x.is_floating_point() else int(x) for x in timesteps],
            sigmas=[float(x) for x in sigmas],
            prompt_seq_len=seq,
            negative_prompt_seq_len=nseq,
            experts=r32["experts"] if pipe.transformer_2 is not None else None,
            ref_err=ref_err,
        )
        out_cases.append(c)
        print(f"  case {c['name']:<27} grid {c['patch_grid']} t {c['timesteps']}  f32 vs f64: latents rel {ref_err['latents']['rel_l2']:.1e}, "
              f"frames max {ref_err['frames']['max_abs']:.1e}; frames std {r32['frames'].std():.3f}", flush=True)
        if c["name"] == BF16_CASE:
            pb = load_pipeline(wan / c["model"], dtype=torch.bfloat16, vae_f32=True)
            set_scheduler(pb, c["scheduler"])
            assert pb.vae.dtype == torch.float32 and pb.transformer.dtype == torch.bfloat16
            rb = run_case(pb, c, latents=init.clone())
            c["bf16_vs_f32"] = {"what": "transformer + text encoder bfloat16 (from_pretrained torch_dtype=bf16), VAE float32",
                                "latents": err(rb["steps"][-1], lat32), "frames": err(rb["frames"], r32["frames"])}
            print(f"    bf16 vs f32: latents rel {c['bf16_vs_f32']['latents']['rel_l2']:.2e}, frames max {c['bf16_vs_f32']['frames']['max_abs']:.2e}", flush=True)
    (wan / f"{sub}.json").write_text(json.dumps(out_cases, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_cases


# Settings off the defaults (issue 21), each as diffusers' `Scheduler.from_config(config, **options)`
# and t2v's `scheduler_config` / `--scheduler-config`: the CASES fields, then the options.
OPTION_CASES = [
    ("wanopt_16x32_f5_euler_karras", "tiny-wan", 16, 32, 5, 3, 5.0, "euler", 9, "a koi pond in autumn", None,
     {"use_karras_sigmas": True}),
    ("wanopt_32x16_f1_euler_exp_terminal", "tiny-wan", 32, 16, 1, 3, 1.0, "euler", 10, "a lighthouse at dawn", None,
     {"use_exponential_sigmas": True, "shift_terminal": 0.1}),
    ("wanopt_16x16_f5_unipc_bh1_sigma_min", "tiny-wan", 16, 16, 5, 4, 5.0, "unipc", 11, "a glass of water on a table", None,
     {"solver_type": "bh1", "final_sigmas_type": "sigma_min", "disable_corrector": [1], "flow_shift": 5.0}),
    # max_sequence_length below the default: prompts padded/cut to 16 tokens, 16 rows of context.
    ("wanopt_16x32_f5_maxlen16_cfg", "tiny-wan", 16, 32, 5, 2, 5.0, "unipc", 12,
     "a very long prompt about a small red boat drifting slowly across a calm blue lake at sunrise", "blurry", {},
     {"max_sequence_length": 16}),
    # DPM-Solver++ on flow sigmas (`--scheduler dpm++` on a Wan folder): the file's keys as they
    # are, and heun + sigma_min final (the beta schedule's σ_min: what diffusers takes) + shift 5
    ("wanopt_32x16_f5_dpm_cfg", "tiny-wan", 32, 16, 5, 4, 5.0, "dpm++", 13, "a sailboat on a stormy sea", None, {}),
    ("wanopt_16x32_f9_dpm_heun_sigma_min", "tiny-wan-b", 16, 32, 9, 3, 5.0, "dpm++", 14, "autumn leaves falling in a park", None,
     {"solver_type": "heun", "final_sigmas_type": "sigma_min", "flow_shift": 5.0}),
]


def build_experts(wan: Path) -> None:
    """tiny-wan22-a/: WanPipeline(transformer, transformer_2, boundary_ratio) as the A14B repo."""
    out = wan / "tiny-wan22-a"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tr2 = build_transformer(TRANSFORMER_CONFIG, SEED_TRANSFORMER_2)
    save_component(copy.deepcopy(tr2).to(torch.bfloat16), out / "transformer_2", None)
    for sub in ("tokenizer", "text_encoder", "transformer", "vae", "scheduler"):
        os.symlink(Path("..") / "tiny-wan" / sub, out / sub, target_is_directory=True)
    mi = json.loads((wan / "tiny-wan" / "model_index.json").read_text(), object_pairs_hook=OrderedDict)
    mi["transformer_2"] = ["diffusers", "WanTransformer3DModel"]
    mi["boundary_ratio"] = BOUNDARY_RATIO
    mi["expand_timesteps"] = False
    (out / "model_index.json").write_text(json.dumps(mi, indent=2) + "\n")
    pipe = load_pipeline(out)
    assert pipe.config.boundary_ratio == BOUNDARY_RATIO and pipe.transformer_2 is not None
    same_weights(tr2, pipe.transformer_2, "transformer_2", cast=torch.bfloat16)


# Two experts: `transformer` for t >= 875 (boundary_ratio·1000), `transformer_2` below, each with
# its own guidance. UniPC shift 3 at 4 steps gives t = 999, 900, 750, 501 (the boundary between
# steps 1 and 2); at 10 steps t = 999, 970, 937, 875, … (step 3 *on* the boundary: expert 1).
EXPERT_CASES = [
    ("a14b_16x32_f5_between_cfg", "tiny-wan22-a", 16, 32, 5, 4, 4.0, "unipc", 15, "a red kite over a beach", None, {},
     {"guidance_scale_2": 3.0}),
    ("a14b_16x16_f1_on_step_cfg", "tiny-wan22-a", 16, 16, 1, 10, 4.0, "unipc", 16, "a paper boat in a puddle", "blurry", {},
     {"guidance_scale_2": 2.0}),
    # guidance_scale_2 unset: the high-noise scale for both (diffusers' default)
    ("a14b_32x16_f5_euler_same_guidance", "tiny-wan22-a", 32, 16, 5, 3, 5.0, "euler", 17, "a windmill in a storm", None, {}, {}),
    # guidance off (guidance_scale 1): no guidance at all, whatever guidance_scale_2 says
    ("a14b_16x32_f9_nocfg", "tiny-wan22-a", 16, 32, 9, 4, 1.0, "unipc", 18, "a snail on a leaf", None, {},
     {"guidance_scale_2": 4.0}),
    # guided with a low-noise scale below 1 (diffusers still guides with it)
    ("a14b_16x16_f5_low_scale_below_one", "tiny-wan22-a", 16, 16, 5, 4, 3.0, "unipc", 19, "a lantern at night", None, {},
     {"guidance_scale_2": 0.5}),
]


def experts_only(fix: Path) -> None:
    """Rewrites only tiny-wan22-a/ and experts* (and the manifest)."""
    setup_torch()
    wan = fix / "wan"
    build_experts(wan)
    if (wan / "experts").exists():
        shutil.rmtree(wan / "experts")
    end_to_end(wan, EXPERT_CASES, "experts")
    write_manifest(wan)


def build_ti2v(wan: Path) -> dict:
    """tiny-wan22-ti2v/: WanPipeline(expand_timesteps=True) with the Wan 2.2 VAE, as TI2V-5B."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline

    out = wan / "tiny-wan22-ti2v"
    if out.exists():
        shutil.rmtree(out)
    g = torch.Generator().manual_seed(SEED_VAE22)
    mean = [round(float(x), 4) for x in 0.3 * torch.randn(48, generator=g)]
    std = [round(float(x), 4) for x in 0.8 * torch.exp(0.3 * torch.randn(48, generator=g))]
    vae = AutoencoderKLWan(**VAE22_CONFIG, latents_mean=mean, latents_std=std)
    randomize(vae, SEED_VAE22, gains=VAE_GAINS)
    vae.eval()
    tr = build_transformer(TRANSFORMER_48_CONFIG, SEED_TRANSFORMER_48)
    base = load_pipeline(wan / "tiny-wan")
    sched = UniPCMultistepScheduler(**dict(SCHEDULER_CONFIG, flow_shift=5.0))
    pipe = WanPipeline(tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=vae, scheduler=sched, transformer=tr,
                       expand_timesteps=True)
    out.mkdir(parents=True)
    for sub in ("tokenizer", "text_encoder"):
        os.symlink(Path("..") / "tiny-wan" / sub, out / sub, target_is_directory=True)
    save_component(tr, out / "transformer", None)
    # bfloat16 on disk (half the bytes; its encoder is never used here); loaded as float32
    save_component(copy.deepcopy(vae).to(torch.bfloat16), out / "vae", None)
    sched.save_pretrained(out / "scheduler")
    mi = json.loads((wan / "tiny-wan" / "model_index.json").read_text(), object_pairs_hook=OrderedDict)
    mi["boundary_ratio"] = None
    mi["expand_timesteps"] = True
    mi["transformer_2"] = [None, None]
    (out / "model_index.json").write_text(json.dumps(mi, indent=2) + "\n")
    again = load_pipeline(out)
    assert again.config.expand_timesteps and again.transformer_2 is None
    same_weights(vae, again.vae, "vae22", cast=torch.bfloat16)
    same_weights(tr, again.transformer, "transformer_48")
    return {"vae": again.vae, "transformer": again.transformer}


def dump_vae22(d: Dumper, vae) -> None:
    """Wan 2.2 VAE: decode at latent 1×2×3 and 4×2×2; the decoder chunk by chunk at 3×2×2."""
    g = torch.Generator().manual_seed(SEED_INPUTS + 2)
    z1 = torch.randn(1, 48, 1, 2, 3, generator=g)
    z4 = torch.randn(1, 48, 4, 2, 2, generator=g)
    z3 = torch.randn(1, 48, 3, 2, 2, generator=g)
    cfg = vae.config
    mean = torch.tensor(cfg.latents_mean).view(1, 48, 1, 1, 1)
    inv = 1.0 / torch.tensor(cfg.latents_std).view(1, 48, 1, 1, 1)
    outs = {}
    for case, z in (("t1h2w3", z1), ("t4h2w2", z4), ("t3h2w2", z3)):
        den = z / inv + mean
        sample = d.capture("vae22", vae, ["post_quant_conv"] if case == "t1h2w3" else [], case,
                           lambda: vae.decode(den, return_dict=False)[0])
        d.write("vae22", "decode", case, "AutoencoderKLWan.decode",
                OrderedDict([("latents", z), ("arg0", den), ("out.sample", sample)]),
                {"denormalize": json.dumps("arg0 = latents / (1 / latents_std) + latents_mean (per channel, float32)")})
        outs[case] = sample
    s4 = outs["t4h2w2"]
    sat = float((s4.abs() >= 1).float().mean())
    print(f"  vae22 decode: {tuple(outs['t1h2w3'].shape)}, {tuple(s4.shape)} std {s4.std():.3f}, clamped {100 * sat:.1f}%", flush=True)
    assert sat < 0.1 and float(s4.std()) > 0.1
    # per-chunk decoder calls (before unpatchify), with every up block's output
    inner = ["conv_in", "mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3"]
    calls = []

    def pre(m, args, kwargs):
        calls.append([OrderedDict([("arg0", args[0].detach().clone())]),
                      {"kw.first_chunk": json.dumps(bool(kwargs.get("first_chunk", False)))}])

    def post(m, args, kwargs, out):
        calls[-1][0]["out"] = out.detach().clone()

    h1 = vae.decoder.register_forward_pre_hook(pre, with_kwargs=True)
    h2 = vae.decoder.register_forward_hook(post, with_kwargs=True)
    try:
        full, rec = capture_outputs(vae.decoder, inner, lambda: vae.decode(z3 / inv + mean, return_dict=False)[0])
    finally:
        h1.remove()
        h2.remove()
    assert len(calls) == 3 and torch.equal(full, outs["t3h2w2"])
    for ci, (t, meta) in enumerate(calls):
        for p in inner:
            t[f"inner.{p}"] = rec[p][ci]["out"]
        d.write("vae22", "decoder", f"chunk{ci}", "WanDecoder3d", t, meta)
    print(f"  vae22 decoder chunks: outs {[tuple(c[0]['out'].shape) for c in calls]}", flush=True)
    # the residual shortcuts and the time convs are live
    for p in ("decoder.up_blocks.0.upsampler.time_conv", "decoder.up_blocks.1.upsampler.time_conv", "decoder.up_blocks.2.upsampler.resample.1"):
        v2 = copy.deepcopy(vae)
        v2.get_submodule(p).weight.zero_()
        ch = float((v2.decode(z4 / inv + mean, return_dict=False)[0] - s4).abs().max())
        assert ch > 1e-3, (p, ch)
    for i in range(3):
        v2 = copy.deepcopy(vae)
        v2.decoder.up_blocks[i].avg_shortcut = None
        ch = float((v2.decode(z4 / inv + mean, return_dict=False)[0] - s4).abs().max())
        assert ch > 1e-3, (i, ch)


def dump_transformer48(d: Dumper, tr) -> None:
    """The 48-channel transformer with a per-token timestep [1, F'·H'·W'] as WanPipeline passes it
    with expand_timesteps (every token at the step's t in text-to-video)."""
    g = torch.Generator().manual_seed(SEED_INPUTS + 3)
    x = torch.randn(1, 48, 2, 4, 6, generator=g)  # post-patch 2×2×3 = 12 tokens
    c = context_embeds(g, 1, [5], 32)
    mask = torch.ones(x.shape)
    ts = (mask[0][0][:, ::2, ::2] * torch.tensor(937)).flatten().unsqueeze(0)  # the pipeline's own expression
    out = d.capture("transformer48", tr, [""], "f2h4w6_tokens",
                    lambda: tr(hidden_states=x, timestep=ts, encoder_hidden_states=c, return_dict=False)[0])
    scalar = tr(hidden_states=x, timestep=torch.tensor([937]), encoder_hidden_states=c, return_dict=False)[0]
    print(f"  transformer48: per-token vs scalar timestep max |diff| {float((out - scalar).abs().max()):.2e}", flush=True)


# TI2V-5B's text-to-video mode: WanPipeline(expand_timesteps=True), sizes multiples of 32
TI2V_CASES = [
    ("ti2v_32x32_f1_cfg", "tiny-wan22-ti2v", 32, 32, 1, 2, 5.0, "unipc", 20, "a cat dancing in the rain", None),
    ("ti2v_64x32_f5_cfg", "tiny-wan22-ti2v", 64, 32, 5, 3, 5.0, "unipc", 21, "a red fox in the snow", "blurry"),
    ("ti2v_32x96_f5_euler_nocfg", "tiny-wan22-ti2v", 32, 96, 5, 3, 1.0, "euler", 22, "waves on a beach at sunset", None),
    ("ti2v_96x32_f9_cfg", "tiny-wan22-ti2v", 96, 32, 9, 2, 4.0, "unipc", 23, "an astronaut riding a horse", None),
]


def ti2v_only(fix: Path) -> None:
    """Rewrites only tiny-wan22-ti2v/, modules/vae22.* (and their manifest rows), ti2v*."""
    setup_torch()
    wan = fix / "wan"
    built = build_ti2v(wan)
    for f in (wan / "modules").glob("vae22.*"):
        f.unlink()
    mpath = wan / "modules" / "manifest.json"
    manifest = [e for e in json.loads(mpath.read_text()) if e["model"] not in ("vae22", "transformer48")]
    for f in (wan / "modules").glob("transformer48.*"):
        f.unlink()
    d = Dumper(wan / "modules", manifest, {"vae22": "wan/tiny-wan22-ti2v/vae", "transformer48": "wan/tiny-wan22-ti2v/transformer"})
    dump_vae22(d, built["vae"])
    dump_transformer48(d, built["transformer"])
    manifest.sort(key=lambda e: e["file"])
    mpath.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if (wan / "ti2v").exists():
        shutil.rmtree(wan / "ti2v")
    end_to_end(wan, TI2V_CASES, "ti2v")
    write_manifest(wan)
    tiling_only(fix)  # its glob above removed modules/vae22.tiled_decode.*


# ---------------------------------------------------------------------------------------------
# tiled decode: what vae.enable_tiling() gives (--tiling-only)
# ---------------------------------------------------------------------------------------------

SEED_TILED = 30
# (model, case, enable_tiling(tile_sample_min_height, tile_sample_min_width, tile_sample_stride_height,
#  tile_sample_stride_width) in pixels, latent (T, h, w), the output frames kept (None: all)).
# Tiny tiles (2-4 latents) so several overlap both ways at odd latent sizes; the last tile of a
# row/column is cut by the latent's edge, so blends are limited by the smaller tile (min(...)).
# Wan 2.2's multi-frame case keeps one output frame (of 5) to stay inside the 6 MiB budget.
TILED_CASES = [
    ("vae", "t1h3w5", (32, 24, 16, 16), (1, 3, 5), None),     # 2×3 tiles; rows blend 16 px, cols 8 px
    ("vae", "t2h4w1", (24, 16, 16, 8), (2, 4, 1), None),      # 2×1 tiles, 5 frames (caches per tile)
    ("vae22", "t1h2w3", (32, 32, 16, 16), (1, 2, 3), None),   # 2×3 tiles, blended in patch space
    ("vae22", "t2h1w3", (32, 32, 16, 16), (2, 1, 3), [4]),    # 1×3 tiles, frame 4 of 5 kept
]
TILED_WEIGHTS = {"vae": "wan/tiny-wan/vae", "vae22": "wan/tiny-wan22-ti2v/vae"}


def emulate_tiled_decode(vae, tiles: list, z_shape, settings) -> "np.ndarray":
    """diffusers' tiled_decode after the decoder, re-done in float32 numpy from the per-tile decoder
    outputs (row-major, each (1, C, F, h, w)): each tile blended with the strip of the tile above
    and of the tile to its left (both already blended), `a * f32(1 - y/e) + b * f32(y/e)` (Python
    floats rounded to f32, then f32 products and sum: torch's scalar ops), cropped to the stride,
    placed, cut to the sample size, unpatchified, clamped. The Rust host code does the same."""
    import numpy as np

    _, _, _, h, w = z_shape
    k, p = vae.spatial_compression_ratio, vae.config.patch_size or 1
    tmh, tmw, tsh, tsw = settings

    def axis(n, tile_px, stride_px):
        tl, sl = tile_px // k, stride_px // k
        starts = list(range(0, n, sl))
        sizes = [min(tl, n - s) * k // p for s in starts]  # decoder output pixels (patch space)
        kept = [min(stride_px // p, sz) for sz in sizes]
        offs = [sum(kept[:i]) for i in range(len(kept))]
        return sizes, kept, offs, max(0, tile_px // p - stride_px // p), min(sum(kept), n * k // p)

    rs, rk, ro, rb, H = axis(h, tmh, tsh)
    cs, ck, co, cb, W = axis(w, tmw, tsw)
    C, F = tiles[0].shape[1], tiles[0].shape[2]
    out = np.zeros((C, F, H, W), np.float32)
    above = [None] * len(cs)
    for i in range(len(rs)):
        left = None
        for j in range(len(cs)):
            b = tiles[i * len(cs) + j][0].numpy().copy()
            assert b.shape[2:] == (rs[i], cs[j])
            if above[j] is not None:
                a = above[j]
                e = min(a.shape[2], b.shape[2], rb)
                for y in range(e):
                    b[:, :, y] = a[:, :, a.shape[2] - e + y] * np.float32(1 - y / e) + b[:, :, y] * np.float32(y / e)
            if left is not None:
                a = left
                e = min(a.shape[3], b.shape[3], cb)
                for x in range(e):
                    b[:, :, :, x] = a[:, :, :, a.shape[3] - e + x] * np.float32(1 - x / e) + b[:, :, :, x] * np.float32(x / e)
            piece = b[:, :, :rk[i], :ck[j]]
            hh, ww = max(0, min(piece.shape[2], H - ro[i])), max(0, min(piece.shape[3], W - co[j]))
            out[:, :, ro[i]:ro[i] + hh, co[j]:co[j] + ww] = piece[:, :, :hh, :ww]
            above[j] = b[:, :, b.shape[2] - min(b.shape[2], rb):]
            left = b[:, :, :, b.shape[3] - min(b.shape[3], cb):]
    if p > 1:  # diffusers' unpatchify: channel c·p² + pw·p + ph → pixel (y·p + ph, x·p + pw)
        out = out.reshape(C // (p * p), p, p, F, H, W).transpose(0, 3, 4, 2, 5, 1).reshape(C // (p * p), F, H * p, W * p)
    return np.clip(out, -1.0, 1.0)[None]


def dump_tiled(d: Dumper, vaes: dict) -> None:
    """TILED_CASES through diffusers' decode with enable_tiling (its tiled_decode), checked against
    a float32 re-computation of the blending, plus a latent no bigger than a tile (not tiled)."""
    import numpy as np

    g = torch.Generator().manual_seed(SEED_TILED)
    for model, case, settings, (t, h, w), keep in TILED_CASES:
        vae = vaes[model]
        cfg = vae.config
        mean = torch.tensor(cfg.latents_mean).view(1, cfg.z_dim, 1, 1, 1)
        inv = 1.0 / torch.tensor(cfg.latents_std).view(1, cfg.z_dim, 1, 1, 1)
        den = torch.randn(1, cfg.z_dim, t, h, w, generator=g) / inv + mean  # the pipeline's de-normalisation
        vae.disable_tiling()
        plain = vae.decode(den, return_dict=False)[0]
        vae.enable_tiling(*settings)
        tiles, calls = [], []
        hook = vae.decoder.register_forward_hook(lambda m, a, o: calls.append(o.detach().clone()))
        try:
            sample = vae.decode(den, return_dict=False)[0]
        finally:
            hook.remove()
            vae.disable_tiling()
        assert len(calls) % t == 0
        tiles = [torch.cat(calls[i:i + t], dim=2) for i in range(0, len(calls), t)]
        again = emulate_tiled_decode(vae, tiles, den.shape, settings)
        assert np.array_equal(again, sample.numpy()), f"{model} {case}: blending not reproduced bit for bit"
        assert sample.shape == plain.shape
        diff = float((sample - plain).norm() / plain.norm())
        sat = float((sample.abs() >= 1).float().mean())
        assert diff > 0.05 and sat < 0.1 and float(sample.std()) > 0.1, (diff, sat)
        kept = sample if keep is None else sample[:, :, keep]
        meta = {"tile_sample_min_height": settings[0], "tile_sample_min_width": settings[1],
                "tile_sample_stride_height": settings[2], "tile_sample_stride_width": settings[3],
                "tiles": len(tiles), "frames": list(range(sample.shape[2])) if keep is None else keep}
        d.write(model, "tiled_decode", case, "AutoencoderKLWan.tiled_decode",
                OrderedDict([("arg0", den), ("out.sample", kept)]), {k: json.dumps(v) for k, v in meta.items()})
        print(f"  {model} tiled_decode {case}: tiling {settings}, {len(tiles)} tiles → {tuple(sample.shape)}"
              f"{'' if keep is None else f' (frames {keep} kept)'}, vs untiled {diff:.2f} relative, "
              f"clamped {100 * sat:.1f}%; blend re-done in numpy: bit-identical", flush=True)
        # no bigger than a tile in both directions: diffusers' _decode does not tile
        z = den[:, :, :, :settings[0] // vae.spatial_compression_ratio, :settings[1] // vae.spatial_compression_ratio]
        vae.enable_tiling(*settings)
        same = vae.decode(z, return_dict=False)[0]
        vae.disable_tiling()
        assert torch.equal(same, vae.decode(z, return_dict=False)[0]), "a latent within one tile was tiled"


def tiling_only(fix: Path) -> None:
    """Rewrites only modules/*.tiled_decode.* (and their manifest rows): TILED_CASES with the tiny
    VAEs as saved (AutoencoderKLWan.from_pretrained, float32)."""
    from diffusers import AutoencoderKLWan

    setup_torch()
    wan = fix / "wan"
    vaes = {m: AutoencoderKLWan.from_pretrained(fix / TILED_WEIGHTS[m], torch_dtype=torch.float32).eval() for m in TILED_WEIGHTS}
    for f in (wan / "modules").glob("*.tiled_decode.*"):
        f.unlink()
    mpath = wan / "modules" / "manifest.json"
    manifest = [e for e in json.loads(mpath.read_text()) if e["module"] != "tiled_decode"]
    dump_tiled(Dumper(wan / "modules", manifest, TILED_WEIGHTS), vaes)
    manifest.sort(key=lambda e: e["file"])
    mpath.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    write_manifest(wan)


def write_manifest(wan: Path) -> int:
    rows, total, digest = file_manifest(wan)
    (wan / "manifest.json").write_text(json.dumps(OrderedDict([("total_bytes", total), ("digest", digest), ("files", rows)]), indent=1) + "\n")
    for r in rows:
        print(f"{r['bytes']:>9}  {r['file']}")
    print(f"wan: {total / 2**20:.2f} MiB in {len(rows)} files, digest {digest}", flush=True)
    assert total < 6 * 2**20, "Wan fixtures should stay a few MB"
    return total


def options_only(fix: Path) -> None:
    """Rewrites only wan/options* (and the manifest): the OPTION_CASES."""
    setup_torch()
    wan = fix / "wan"
    if (wan / "options").exists():
        shutil.rmtree(wan / "options")
    end_to_end(wan, OPTION_CASES, "options")
    write_manifest(wan)


# ---------------------------------------------------------------------------------------------


def file_manifest(wan: Path) -> tuple:
    """Every file we wrote (not the ones reached through tiny-wan-b's symlinked folders), size, sha256."""
    files = sorted(p for p in wan.rglob("*")  # rglob does not descend into symlinked folders
                   if p.is_file() and not p.is_symlink() and not (p.parent == wan and p.name in ("manifest.json", "README.md")))
    rows = [OrderedDict([("file", str(p.relative_to(wan))), ("bytes", p.stat().st_size),
                         ("sha256", hashlib.sha256(p.read_bytes()).hexdigest())]) for p in files]
    total = sum(r["bytes"] for r in rows)
    h = hashlib.sha256()
    for r in rows:
        h.update(r["file"].encode() + b"\0" + bytes.fromhex(r["sha256"]))
    return rows, total, h.hexdigest()


def setup_torch() -> None:
    try:
        mf.setup_torch()
    except RuntimeError:
        # run as make_fixtures.py's companion: its setup_torch already ran in this process and
        # torch refuses a second set_num_interop_threads; the rest of the setup is in place
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()


def main(fix: Path) -> Path:
    t0 = time.time()
    setup_torch()
    wan = fix / "wan"
    wan.mkdir(parents=True, exist_ok=True)
    for p in wan.iterdir():  # everything here is ours except the hand-written README.md
        if p.name == "README.md":
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    built = build_and_save(wan)
    pipe = load_pipeline(wan / "tiny-wan")
    same_weights(built["text_encoder"], pipe.text_encoder, "text_encoder")
    same_weights(built["transformer"], pipe.transformer, "transformer")
    same_weights(built["vae"], pipe.vae, "vae")
    from diffusers import WanTransformer3DModel

    trb = WanTransformer3DModel.from_pretrained(wan / "tiny-wan-b" / "transformer", torch_dtype=torch.float32).eval()
    same_weights(built["transformer_b"], trb, "transformer_b", cast=torch.bfloat16)
    print(f"wan: params text_encoder {sum(p.numel() for p in pipe.text_encoder.parameters())}, transformer "
          f"{sum(p.numel() for p in pipe.transformer.parameters())}, transformer_b {sum(p.numel() for p in trb.parameters())}, "
          f"vae {sum(p.numel() for p in pipe.vae.parameters())}; tokenizer {len(pipe.tokenizer)} tokens", flush=True)

    cases = tokenizer_cases(pipe, wan)
    print(f"  tokenizer: {len(cases)} cases; <unk> in {[c['name'] for c in cases if 2 in c['input_ids']]}", flush=True)

    manifest: list = []
    weights = {"text_encoder": "wan/tiny-wan/text_encoder", "transformer": "wan/tiny-wan/transformer",
               "transformer_b": "wan/tiny-wan-b/transformer (bfloat16 file, loaded as float32)",
               "vae": "wan/tiny-wan/vae", "pipeline": "wan/tiny-wan"}
    d = Dumper(wan / "modules", manifest, weights)
    dump_text_encoder(d, pipe)
    dump_transformer(d, pipe.transformer, trb)
    dump_vae(d, pipe.vae)
    manifest.sort(key=lambda e: e["file"])
    roots = {"transformer": pipe.transformer, "transformer_b": trb}
    n = 0
    for e in manifest:
        if e["model"] in roots:
            root = roots[e["model"]]
            replay(wan / "modules" / e["file"], root if e["module"] == "full" else root.get_submodule(e["module"]))
            n += 1
    print(f"  replayed {n} transformer dumps from their files: bit-identical", flush=True)
    (wan / "modules" / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    end_to_end(wan)
    end_to_end(wan, OPTION_CASES, "options")
    build_experts(wan)
    end_to_end(wan, EXPERT_CASES, "experts")
    write_manifest(wan)
    ti2v_only(fix)
    print(f"wan: {time.time() - t0:.0f} s", flush=True)
    return wan


if __name__ == "__main__":
    if "--options-only" in sys.argv[1:]:
        options_only(HERE.parent.parent / "tests" / "fixtures")
    elif "--experts-only" in sys.argv[1:]:
        experts_only(HERE.parent.parent / "tests" / "fixtures")
    elif "--ti2v-only" in sys.argv[1:]:
        ti2v_only(HERE.parent.parent / "tests" / "fixtures")
    elif "--tiling-only" in sys.argv[1:]:
        tiling_only(HERE.parent.parent / "tests" / "fixtures")
    else:
        main(HERE.parent.parent / "tests" / "fixtures")
