#!/usr/bin/env python3
"""Regenerate every reference fixture under tests/fixtures/ (diffusers is the judge).

    tools/reference/.venv/bin/python tools/reference/make_fixtures.py

Builds tiny random-weight models in the exact diffusers layout, saves them, loads them back
from disk, runs diffusers / transformers on CPU and dumps module inputs and outputs. Outputs
owned by this script are removed first; two runs give byte-identical files.
See tests/fixtures/README.md for what each file is.
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True  # keep tools/reference free of __pycache__
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the hub: everything is built locally
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Pin the CPU code paths to AVX2 (before torch is imported): float results of ATen's vectorised
# kernels, MKL and oneDNN depend on the instruction set, so without this an AVX-512 machine and
# an AVX2 machine write fixtures that differ in the last bits. Every x86-64 CPU of the last
# decade has AVX2; other architectures (e.g. arm64) will not reproduce the bytes exactly.
CPU_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(CPU_ENV)

import copy
import hashlib
import json
import shutil
import tempfile
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import clip_tokenizer_files as ctf  # noqa: E402
import tiny_models as tm  # noqa: E402
from dumping import Dumper, replay  # noqa: E402

REPO = HERE.parent.parent
FIX = REPO / "tests" / "fixtures"
OWNED = ["tiny-t2v", "tiny-t2v-f16", "vae-legacy", "modules", "tokenizer_cases.json",
         "schedulers.safetensors", "schedulers.json", "randn.safetensors", "bin"]
# Companion generators beside this script, each `main(out_dir)`; bin_fixtures reads tiny-t2v/vae,
# so they run after the tiny pipeline exists (sweep_fixtures also links tiny-t2v's tokenizer,
# scheduler and text encoder into its model variants; it owns tests/fixtures/sweep/, ~3.4 MB,
# counted and digested by itself; zero_fixtures (Text2Video-Zero: tiny-sd/ and zero/) links the
# sweep's quick_gelu text encoder, so it runs last; wan_fixtures (Wan 2.1: tests/fixtures/wan/) is
# independent of the others).
COMPANIONS = ["scheduler_fixtures", "randn_fixtures", "bin_fixtures", "sweep_fixtures", "v2v_fixtures", "clip_fixtures", "zero_fixtures",
              "wan_fixtures"]

# transformers 5 save_pretrained writes tokenizer.json (3.6 MB here: vocab + merges again).
# The published repos do not have it, and it would take more than half of the fixture budget,
# so tiny-t2v/tokenizer/ keeps the published layout only (see tests/fixtures/README.md).
KEEP_TOKENIZER_JSON = False

SEED_UNET, SEED_TEXT, SEED_VAE, SEED_INPUTS = 1, 2, 3, 4
VAE_DECODER_OUT_GAIN = 0.4  # keeps the tiny VAE's frames mostly inside [-1, 1] (not saturated)

PROMPTS = ["", "A lion walking in the jungle"]  # [negative (CFG default ""), positive]
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]

log_lines: list[str] = []


def log(msg: str = "") -> None:
    print(msg, flush=True)
    log_lines.append(msg)


def setup_torch() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_grad_enabled(False)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()


def clean() -> None:
    for name in OWNED:
        p = FIX / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def randn(gen: torch.Generator, *shape) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float32)


def rel_change(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


# ---------------------------------------------------------------------------------------------
# 1 + 2: tokenizer and the tiny pipeline
# ---------------------------------------------------------------------------------------------


def build_and_save_pipeline():
    from diffusers import TextToVideoSDPipeline
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as td:
        ctf.write_published_layout(Path(td))
        tokenizer = CLIPTokenizer.from_pretrained(td)
    unet = tm.build_unet(SEED_UNET)
    text_encoder = tm.build_text_encoder(SEED_TEXT)
    vae = tm.build_vae(SEED_VAE, gains={"decoder.conv_out": VAE_DECODER_OUT_GAIN})
    scheduler = tm.build_scheduler()
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
    out = FIX / "tiny-t2v"
    pipe.save_pretrained(out, safe_serialization=True)
    built = pipe

    tdir = out / "tokenizer"
    written = sorted(p.name for p in tdir.iterdir())
    log(f"save_pretrained wrote tokenizer/: {written}")
    tok_json = (tdir / "tokenizer.json").read_bytes() if (tdir / "tokenizer.json").exists() else None
    if tok_json is not None:
        log(f"  tokenizer.json: {len(tok_json)} bytes, sha256 {hashlib.sha256(tok_json).hexdigest()[:16]}…")
        log(f"  its tokenizer_config.json: {(tdir / 'tokenizer_config.json').read_text().strip()}")
    shutil.rmtree(tdir)
    ctf.write_published_layout(tdir)
    if KEEP_TOKENIZER_JSON and tok_json is not None:
        (tdir / "tokenizer.json").write_bytes(tok_json)
    log(f"tiny-t2v/tokenizer/ now: {sorted(p.name for p in tdir.iterdir())}")
    return out, built


def load_pipeline(path: Path):
    from diffusers import TextToVideoSDPipeline

    pipe = TextToVideoSDPipeline.from_pretrained(path, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.eval()
    return pipe


def check_tokenizer(tokenizer) -> list:
    ids = tokenizer("a photo of a cat", padding="max_length", max_length=77, truncation=True).input_ids
    expect = CAT_IDS + [tokenizer.pad_token_id] * (77 - len(CAT_IDS))
    assert list(ids) == expect, ids
    assert tokenizer.pad_token == "!" and tokenizer.pad_token_id == 0, (tokenizer.pad_token, tokenizer.pad_token_id)
    assert tokenizer.bos_token_id == 49406 and tokenizer.eos_token_id == 49407
    assert tokenizer.model_max_length == 77
    log(f"tokenizer: {type(tokenizer).__name__} (tokenizers backend), pad {tokenizer.pad_token!r}={tokenizer.pad_token_id}, "
        f"'a photo of a cat' -> {list(ids[:8])}…  OK")
    norm = tokenizer.backend_tokenizer.normalizer
    log(f"tokenizer normalizer: {norm}")
    try:
        import ftfy  # noqa: F401

        log("ftfy: installed (transformers 5 CLIPTokenizer does not use it either way)")
    except ImportError:
        log("ftfy: not installed; transformers 5 CLIPTokenizer has no ftfy path (normalizer = NFC, \\s+ -> ' ', lowercase)")
    cases = ctf.tokenizer_cases(tokenizer)
    (FIX / "tokenizer_cases.json").write_text(ctf.dumps_cases(cases), encoding="utf-8")
    return cases


# ---------------------------------------------------------------------------------------------
# 3 + 4: f16 UNet, legacy-key VAE
# ---------------------------------------------------------------------------------------------


def save_f16_unet(unet):
    from diffusers import UNet3DConditionModel

    out = FIX / "tiny-t2v-f16" / "unet"
    copy.deepcopy(unet).half().save_pretrained(out, safe_serialization=True)
    # "f16 weights, f32 compute": load the f16 file and upcast every parameter to f32
    u16 = UNet3DConditionModel.from_pretrained(out, torch_dtype=torch.float16).float().eval()
    for (n, a), (_, b) in zip(unet.state_dict().items(), u16.state_dict().items()):
        assert torch.equal(a.half().float(), b), n
    return u16


def save_legacy_vae(vae):
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    out = FIX / "vae-legacy"
    out.mkdir(parents=True)
    vae.save_config(out)
    sd = tm.legacy_vae_state_dict({k: v.contiguous() for k, v in vae.state_dict().items()})
    renamed = sorted(k for k in sd if k.split(".")[-2] in ("query", "key", "value", "proj_attn"))
    assert len(renamed) == 16, renamed  # encoder + decoder mid-block: 4 linears x (weight, bias)
    save_file(sd, str(out / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    loaded = AutoencoderKL.from_pretrained(out, torch_dtype=torch.float32).eval()
    a, b = vae.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "legacy VAE did not load back identically"
    log(f"vae-legacy: {len(renamed)} keys renamed (e.g. {renamed[0]}); AutoencoderKL.from_pretrained maps them back: identical weights")
    return loaded


# ---------------------------------------------------------------------------------------------
# 5: module dumps
# ---------------------------------------------------------------------------------------------

UNET_F3_PATHS = [
    "",
    "conv_in",
    "time_proj",
    "time_embedding",
    "transformer_in",
    "down_blocks.0",
    "down_blocks.1",
    "down_blocks.2",
    "down_blocks.3",
    "mid_block",
    "up_blocks.0",
    "up_blocks.1",
    "up_blocks.2",
    "up_blocks.3",
    "down_blocks.0.resnets.0",
    "down_blocks.0.temp_convs.0",
    "down_blocks.0.attentions.0",
    "down_blocks.0.temp_attentions.0",
    "down_blocks.0.attentions.0.transformer_blocks.0",
    "down_blocks.0.temp_attentions.0.transformer_blocks.0",
    "down_blocks.0.downsamplers.0",
    "up_blocks.1.resnets.0",
    "up_blocks.0.upsamplers.0",
    "up_blocks.1.upsamplers.0",
    "conv_norm_out",
    "conv_out",
]
UNET_F1_PATHS = [
    "",
    "transformer_in",
    "down_blocks.0",
    "down_blocks.0.temp_convs.0",
    "down_blocks.0.temp_attentions.0",
    "mid_block",
    "up_blocks.3",
]


def unet_inputs():
    g = torch.Generator().manual_seed(SEED_INPUTS)
    f3 = dict(sample=randn(g, 2, 4, 3, 8, 12), timestep=torch.tensor(981), encoder_hidden_states=randn(g, 2, 77, 8))
    f1 = dict(sample=randn(g, 1, 4, 1, 8, 8), timestep=torch.tensor(1), encoder_hidden_states=randn(g, 1, 77, 8))
    return f3, f1


def run_unet(unet, inp):
    # as the pipeline calls it: positional sample and timestep (0-dim int64), keyword context
    return unet(inp["sample"], inp["timestep"], encoder_hidden_states=inp["encoder_hidden_states"])


def check_unet_paths(unet, inp, ref) -> None:
    """Zeroing a temporal path must change the output (randomisation made every path live)."""
    changes = {}
    names = [n for n, _ in unet.named_modules() if n.endswith(".conv4") or (".temp_attentions." in n and n.endswith("proj_out"))]
    names.append("transformer_in.proj_out")
    for n in names:
        u = copy.deepcopy(unet)
        w = u.get_submodule(n + ".3" if n.endswith("conv4") else n).weight
        w.zero_()
        changes[n] = rel_change(ref, run_unet(u, inp).sample)
    for n in ("down_blocks.0.temp_convs.0.conv4", "down_blocks.0.temp_attentions.0.proj_out"):
        log(f"  zero {n}.weight -> max |Δout| / max |out| = {changes[n]:.3g}")
    worst = min(changes, key=changes.get)
    log(f"  all {len(changes)} temporal convs' conv4 and temporal proj_outs: smallest relative change {changes[worst]:.3g} ({worst})")
    assert all(v > 1e-3 for v in changes.values()), changes


def dump_unet(d: Dumper, unet, u16) -> None:
    f3, f1 = unet_inputs()
    out = d.capture("unet", unet, UNET_F3_PATHS, "f3", lambda: run_unet(unet, f3)).sample
    log(f"unet f3: out {tuple(out.shape)} mean {out.mean():.4f} std {out.std():.4f} max|.| {out.abs().max():.3f} "
        f"finite {bool(torch.isfinite(out).all())}")
    assert torch.isfinite(out).all() and 0.2 < float(out.std()) < 5
    check_unet_paths(unet, f3, out)
    out1 = d.capture("unet", unet, UNET_F1_PATHS, "f1", lambda: run_unet(unet, f1)).sample
    log(f"unet f1: out {tuple(out1.shape)} std {out1.std():.4f}")
    o16 = d.capture("unet_f16", u16, [""], "f3", lambda: run_unet(u16, f3)).sample
    log(f"unet_f16 f3 (f16 weights upcast to f32): max |Δ| vs f32 weights = {(o16 - out).abs().max():.3g}")


def dump_text_encoder(d: Dumper, te, tokenizer) -> torch.Tensor:
    enc = tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    ids = enc.input_ids
    log(f"text_encoder ids: {[r[:9] for r in ids.tolist()]}…")
    res = d.capture(
        "text_encoder",
        te,
        ["", "embeddings", "encoder.layers.0", "final_layer_norm"],
        None,
        lambda: te(ids, output_hidden_states=True),
    )
    h = res.last_hidden_state
    log(f"text_encoder: last_hidden_state {tuple(h.shape)} std {h.std():.4f}; hidden_states: {len(res.hidden_states)} tensors")
    return h


def dump_vae(d: Dumper, vae, vae_legacy) -> None:
    """Main case (no suffix): z (2, 4, 8, 12) / x (2, 3, 64, 96), whole decode/encode + low-res blocks.

    Case "small": z (1, 4, 4, 6) / x (1, 3, 32, 48) for the full-resolution blocks, whose dumps
    would otherwise be 0.8-1.2 MB each at 64x96.
    """
    g = torch.Generator().manual_seed(SEED_INPUTS + 1)
    z = randn(g, 2, 4, 8, 12)
    x = torch.rand((2, 3, 64, 96), generator=g, dtype=torch.float32) * 2 - 1
    z_s = randn(g, 1, 4, 4, 6)
    x_s = torch.rand((1, 3, 32, 48), generator=g, dtype=torch.float32) * 2 - 1

    def decode(case, z, paths):
        sample = d.capture("vae", vae, paths, case, lambda: vae.decode(z)).sample
        d.write("vae", "decode", case, "AutoencoderKL.decode", OrderedDict([("arg0", z), ("out.sample", sample)]), {})
        return sample

    def encode(case, x, paths):
        dist = d.capture("vae", vae, paths, case, lambda: vae.encode(x)).latent_dist
        tensors = OrderedDict([("arg0", x), ("out.latent_dist.mean", dist.mean), ("out.latent_dist.logvar", dist.logvar)])
        d.write("vae", "encode", case, "AutoencoderKL.encode", tensors, {})
        return dist

    sample = decode(None, z, ["post_quant_conv", "decoder.conv_in", "decoder.mid_block", "decoder.up_blocks.0"])
    frac = float(((sample / 2 + 0.5) < 0).float().mean() + ((sample / 2 + 0.5) > 1).float().mean())
    log(f"vae decode: {tuple(sample.shape)} mean {sample.mean():.4f} std {sample.std():.4f}; clamped by postprocess: {100 * frac:.1f}%")
    decode("small", z_s, [f"decoder.up_blocks.{i}" for i in (1, 2, 3)] + ["decoder.conv_norm_out"])

    post = vae_legacy.decode(z).sample
    assert torch.equal(post, sample), "legacy-key VAE decodes differently"
    d.write("vae_legacy", "decode", None, "AutoencoderKL.decode", OrderedDict([("arg0", z), ("out.sample", post)]), {})
    log("vae_legacy decode: bit-identical to vae decode")

    dist = encode(None, x, ["encoder.mid_block", "quant_conv"])
    log(f"vae encode: mean {tuple(dist.mean.shape)} std {dist.mean.std():.4f}; logvar range [{dist.logvar.min():.3f}, {dist.logvar.max():.3f}]")
    dist_l = vae_legacy.encode(x).latent_dist
    assert torch.equal(dist_l.mean, dist.mean) and torch.equal(dist_l.logvar, dist.logvar)
    encode("small", x_s, ["encoder.down_blocks.0"])


def dump_pipeline(d: Dumper, pipe) -> None:
    """End to end: TextToVideoSDPipeline, 2 DDIM steps, CFG 9.0, 3 frames at 32x48 (latent 4x6), seed 0."""
    kw = dict(prompt=PROMPTS[1], num_frames=3, height=32, width=48, num_inference_steps=2, guidance_scale=9.0, output_type="np")
    steps = []
    frames = pipe(**kw, generator=torch.Generator().manual_seed(0), callback=lambda i, t, lat: steps.append((int(t), lat.clone()))).frames
    init = torch.randn((1, 4, 3, 4, 6), generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    again = pipe(**kw, latents=init.clone()).frames
    assert (again == frames).all(), "pipeline latents are not torch.randn(shape, generator=manual_seed(0))"
    pos, neg = pipe.encode_prompt(PROMPTS[1], torch.device("cpu"), 1, True, None)
    tensors = OrderedDict(
        [("init_latents", init), ("prompt_embeds", torch.cat([neg, pos])), ("frames", torch.from_numpy(frames))]
    )
    for i, (_, lat) in enumerate(steps):
        tensors[f"latents.step{i}"] = lat
    meta = {k: json.dumps(v) for k, v in kw.items()}
    meta.update(seed="0", generator=json.dumps("torch.Generator('cpu').manual_seed(0)"),
                negative_prompt=json.dumps(None), eta="0.0", timesteps=json.dumps([t for t, _ in steps]))
    d.write("pipeline", "text_to_video", None, "TextToVideoSDPipeline", tensors, meta)
    log(f"pipeline: frames {frames.shape} in [{frames.min():.3f}, {frames.max():.3f}], timesteps {[t for t, _ in steps]}")


# ---------------------------------------------------------------------------------------------


def summary() -> None:
    files = sorted(p for name in OWNED for p in ([FIX / name] if (FIX / name).is_file() else sorted((FIX / name).rglob("*"))) if p.is_file())
    total = sum(p.stat().st_size for p in files)
    log("")
    log(f"{'bytes':>10}  file")
    for p in files:
        log(f"{p.stat().st_size:>10}  {p.relative_to(REPO)}")
    log(f"{total:>10}  total ({total / 2**20:.2f} MiB in {len(files)} files)")
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    log(f"digest of all fixture files: {h.hexdigest()}")
    assert total < 10 * 2**20, "fixtures over the 10 MB hard limit"


def main() -> None:
    t0 = time.time()
    setup_torch()
    import diffusers
    import safetensors
    import transformers

    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}, "
        f"safetensors {safetensors.__version__}")
    log(f"cpu capability {torch.backends.cpu.get_cpu_capability()} (env {CPU_ENV})")
    clean()
    FIX.mkdir(parents=True, exist_ok=True)

    path, built = build_and_save_pipeline()
    pipe = load_pipeline(path)  # every dump below runs on the weights as loaded back from disk
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(built, name).state_dict(), getattr(pipe, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"{name} did not load back identically"
    check_tokenizer(pipe.tokenizer)
    log(f"params: unet {sum(p.numel() for p in pipe.unet.parameters())}, text_encoder "
        f"{sum(p.numel() for p in pipe.text_encoder.parameters())}, vae {sum(p.numel() for p in pipe.vae.parameters())}")
    # saved from the models as built (a model loaded from disk would write its absolute source
    # path into config.json as "_name_or_path"); their weights equal the loaded ones (checked above)
    u16 = save_f16_unet(built.unet)
    vae_legacy = save_legacy_vae(built.vae)

    manifest: list = []
    weights = {
        "unet": "tiny-t2v/unet",
        "unet_f16": "tiny-t2v-f16/unet (float16 file, upcast to float32 before running: f16 weights, f32 compute)",
        "text_encoder": "tiny-t2v/text_encoder",
        "vae": "tiny-t2v/vae",
        "vae_legacy": "vae-legacy",
        "pipeline": "tiny-t2v",
    }
    d = Dumper(FIX / "modules", manifest, weights)
    dump_text_encoder(d, pipe.text_encoder, pipe.tokenizer)
    dump_unet(d, pipe.unet, u16)
    dump_vae(d, pipe.vae, vae_legacy)
    dump_pipeline(d, pipe)
    manifest.sort(key=lambda e: e["file"])
    roots = {"unet": pipe.unet, "unet_f16": u16, "text_encoder": pipe.text_encoder, "vae": pipe.vae}
    n = 0
    for e in manifest:
        if e["model"] in roots and e["module"] not in ("decode", "encode"):
            root = roots[e["model"]]
            replay(FIX / "modules" / e["file"], root if e["module"] == "full" else root.get_submodule(e["module"]))
            n += 1
    log(f"replayed {n} module dumps from their files (inputs + metadata -> module): outputs bit-identical")
    (FIX / "modules" / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    import importlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for name in COMPANIONS:
        log(f"{name} ...")
        importlib.import_module(name).main(FIX)

    summary()
    log(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
