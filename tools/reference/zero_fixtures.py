#!/usr/bin/env python3
"""Text2Video-Zero on a tiny Stable Diffusion 1.x: the model, module dumps, the warp, PNDM, and
diffusers' TextToVideoZeroPipeline end to end (tests/models_unet_2d.rs, tests/kernels_warp.rs,
tests/pipeline_text_to_video_zero.rs compare t2v against these).

    tools/reference/.venv/bin/python tools/reference/zero_fixtures.py   (or via make_fixtures.py)

Writes
  tests/fixtures/tiny-sd/   a tiny SD 1.x pipeline folder in the published layout: unet/
      (UNet2DConditionModel with SD 1.x's block types, every parameter randomised), scheduler/
      (SD 1.5's own scheduler_config.json: PNDM, skip_prk_steps), tokenizer/ (SD's special
      tokens, pad "<|endoftext|>"; vocab/merges linked from tiny-t2v), text_encoder/ (linked:
      the sweep's 12-wide 3-layer quick_gelu CLIP, SD's activation) and vae/ (linked: tiny-t2v's).
  tests/fixtures/zero/modules/*.safetensors  UNet2D module calls (dumping.py layout), with the
      cross-frame attention processor installed ("xf" cases) and without ("b2").
  tests/fixtures/zero/warp.safetensors       torch grid_sample(nearest, reflection) on random
      grids, and the pipeline's own motion-field warp.
  tests/fixtures/zero/pndm.json, pndm.safetensors  PNDM timesteps and a step chain.
  tests/fixtures/zero/cases.json, cases/*.safetensors  TextToVideoZeroPipeline end to end,
      with diffusers' own float32-vs-float64 error per case (the test's bound is stated in it);
      chunked.json: a long video made with the docs' chunk recipe.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures as mf  # noqa: E402  (first: pins the CPU code paths before torch loads)
import tiny_models as tm  # noqa: E402
import torch  # noqa: E402
from dumping import Dumper, write_safetensors  # noqa: E402

UNET2D_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(8, 16, 16, 16),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=4,
    norm_eps=1e-5,
    cross_attention_dim=12,  # the linked text encoder's width
    # In UNet2DConditionModel this *is* the number of heads (SD 1.x: 8 heads at every level);
    # UNet3D reads the same key as the head width. 2 heads: widths 4 and 8 here.
    attention_head_dim=2,
    flip_sin_to_cos=True,
    freq_shift=0,
    center_input_sample=False,
)

# stable-diffusion-v1-5/stable-diffusion-v1-5 scheduler/scheduler_config.json, as published.
SD_SCHEDULER = OrderedDict(
    [
        ("_class_name", "PNDMScheduler"),
        ("_diffusers_version", "0.6.0"),
        ("beta_end", 0.012),
        ("beta_schedule", "scaled_linear"),
        ("beta_start", 0.00085),
        ("num_train_timesteps", 1000),
        ("set_alpha_to_one", False),
        ("skip_prk_steps", True),
        ("steps_offset", 1),
        ("trained_betas", None),
        ("clip_sample", False),
    ]
)

SEED_UNET = 40
# name, scheduler, height, width, video_length, steps, guidance, t0, t1, λx, λy, frame_ids, seed, prompt
CASES = [
    # SD 1.5's shipped PNDM: the scheduler copy taken after the first loop carries a 1-frame
    # PLMS history into the joint F-frame loop (torch broadcasts it); CFG halves with
    # cross-frame attention to each half's frame 0; the warp moves ~0.8 latent px per frame.
    ("pndm_cfg_f3", "pndm", 40, 56, 3, 4, 7.5, 1, 2, 60.0, 30.0, None, 3, "a panda dancing in times square"),
    # DDIM (the paper's), a chunk of a longer video (frame_ids), negative and unequal motion,
    # reflection at the borders. (Guidance stays on: diffusers' pipeline raises without it.)
    ("ddim_f4_ids", "ddim", 56, 40, 4, 5, 5.0, 1, 3, -40.0, 100.0, [0, 5, 6, 7], 11, "a horse galloping on a street"),
]
# diffusers' documented recipe for long videos: chunks sharing frame 0, re-seeded per chunk
# (name, scheduler, height, width, video_length, steps, guidance, t0, t1, λx, λy, chunk_size, seed, prompt)
CHUNKED = ("chunks_f5_c3", "pndm", 40, 40, 5, 3, 7.5, 0, 1, 60.0, -20.0, 3, 5, "a cat walking on a beach")
CHUNK_FIELDS = ["name", "scheduler", "height", "width", "video_length", "num_inference_steps", "guidance_scale", "t0", "t1",
                "motion_field_strength_x", "motion_field_strength_y", "chunk_size", "seed", "prompt"]
FIELDS = ["name", "scheduler", "height", "width", "video_length", "num_inference_steps", "guidance_scale", "t0", "t1",
          "motion_field_strength_x", "motion_field_strength_y", "frame_ids", "seed", "prompt"]


def build_model(fix: Path) -> Path:
    from diffusers import UNet2DConditionModel

    out = fix / "tiny-sd"
    out.mkdir(parents=True)
    unet = UNet2DConditionModel(**UNET2D_CONFIG)
    tm.randomize(unet, SEED_UNET)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    (out / "scheduler").mkdir()
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD_SCHEDULER, indent=2) + "\n")
    tok = out / "tokenizer"
    tok.mkdir()
    for f in ["vocab.json", "merges.txt"]:
        os.symlink(Path("..") / ".." / "tiny-t2v" / "tokenizer" / f, tok / f)
    cfg = json.loads((fix / "tiny-t2v" / "tokenizer" / "tokenizer_config.json").read_text())
    (tok / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    special = json.loads((fix / "tiny-t2v" / "tokenizer" / "special_tokens_map.json").read_text())
    special["pad_token"] = "<|endoftext|>"  # SD 1.x's tokenizer pads with the end token (49407)
    (tok / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    os.symlink(Path("..") / "sweep" / "models" / "lpb3-te12-vae3" / "text_encoder", out / "text_encoder", target_is_directory=True)
    os.symlink(Path("..") / "tiny-t2v" / "vae", out / "vae", target_is_directory=True)
    index = OrderedDict(
        [
            ("_class_name", "StableDiffusionPipeline"),
            ("_diffusers_version", "0.42.1"),
            ("feature_extractor", [None, None]),
            ("requires_safety_checker", False),
            ("safety_checker", [None, None]),
            ("scheduler", ["diffusers", "PNDMScheduler"]),
            ("text_encoder", ["transformers", "CLIPTextModel"]),
            ("tokenizer", ["transformers", "CLIPTokenizer"]),
            ("unet", ["diffusers", "UNet2DConditionModel"]),
            ("vae", ["diffusers", "AutoencoderKL"]),
        ]
    )
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out


def load(path: Path, scheduler: str):
    from diffusers import DDIMScheduler, TextToVideoZeroPipeline

    warnings.filterwarnings("ignore")
    pipe = TextToVideoZeroPipeline.from_pretrained(path, torch_dtype=torch.float32, safety_checker=None,
                                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if scheduler == "ddim":
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    else:
        assert type(pipe.scheduler).__name__ == "PNDMScheduler"
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.eval()
    return pipe


def dump_modules(fix: Path, unet, out_dir: Path) -> None:
    from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import CrossFrameAttnProcessor2_0

    manifest: list = []
    d = Dumper(out_dir, manifest, {"sd_unet": "tiny-sd/unet"})
    g = torch.Generator().manual_seed(mf.SEED_INPUTS)
    h, w = 5, 7  # odd × odd latent: upsample_size is forwarded at every level
    paths = ["", "time_proj", "time_embedding", "conv_in", "down_blocks.0", "down_blocks.1", "down_blocks.3", "mid_block",
             "up_blocks.0", "up_blocks.1", "up_blocks.3", "conv_norm_out", "conv_out",
             "down_blocks.0.attentions.0", "down_blocks.0.attentions.0.transformer_blocks.0.attn1",
             "down_blocks.0.attentions.0.transformer_blocks.0.attn2"]
    original = unet.attn_processors
    with torch.no_grad():
        # b2: the stock processor, a batch of two (a guidance pair) at one timestep.
        x = torch.randn(2, 4, h, w, generator=g)
        ctx = torch.randn(2, 77, 12, generator=g)
        d.capture("sd_unet", unet, paths, "b2", lambda: unet(x, torch.tensor(801), encoder_hidden_states=ctx))
        # xf3: Text2Video-Zero's joint pass, 3 frames × guidance = 6 rows [uncond ×3, text ×3];
        # every self-attention takes K/V from frame 0 of its half.
        unet.set_attn_processor(CrossFrameAttnProcessor2_0(batch_size=2))
        x = torch.randn(6, 4, h, w, generator=g)
        ctx = torch.cat([torch.randn(1, 77, 12, generator=g).repeat(3, 1, 1), torch.randn(1, 77, 12, generator=g).repeat(3, 1, 1)])
        d.capture("sd_unet", unet, paths, "xf3", lambda: unet(x, torch.tensor(501), encoder_hidden_states=ctx))
        # xf4: 4 rows with the processor's batch_size=2: groups of rows/2 = 2, so rows 2, 3 attend
        # to row 2 (the grouping rule itself, on groups shorter than the batch).
        x = torch.randn(4, 4, h, w, generator=g)
        ctx = torch.randn(1, 77, 12, generator=g).repeat(4, 1, 1)
        d.capture("sd_unet", unet, ["", "down_blocks.0.attentions.0.transformer_blocks.0.attn1"], "xf4",
                  lambda: unet(x, torch.tensor(261), encoder_hidden_states=ctx))
        unet.set_attn_processor(original)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def dump_warp(out: Path) -> None:
    from diffusers.pipelines.deprecated.text_to_video_synthesis import pipeline_text_to_video_zero as z
    from torch.nn.functional import grid_sample

    g = torch.Generator().manual_seed(77)
    x = torch.randn(3, 4, 5, 7, generator=g)
    # a grid reaching well outside [-1, 1]: reflection folds it back, several times over
    grid = torch.rand(3, 6, 9, 2, generator=g) * 7.0 - 3.5
    y = grid_sample(x, grid, mode="nearest", padding_mode="reflection")
    lat = torch.randn(3, 4, 7, 5, generator=g)
    ids = [1, 2, 3]
    warped = z.create_motion_field_and_warp_latents(60.0, -35.0, ids, lat)
    t = OrderedDict([("x", x), ("grid", grid), ("out", y), ("motion_in", lat), ("motion_out", warped)])
    write_safetensors(out / "warp.safetensors", t, {"motion_field_strength_x": "60.0", "motion_field_strength_y": "-35.0",
                                                    "frame_ids": json.dumps(ids)})


def dump_pndm(out: Path, model: Path) -> None:
    from diffusers import PNDMScheduler

    sched = PNDMScheduler.from_pretrained(model / "scheduler")
    timesteps = {}
    for n in [1, 2, 3, 4, 5, 7, 10, 25, 50]:
        sched.set_timesteps(n)
        timesteps[str(n)] = [int(t) for t in sched.timesteps]
    g = torch.Generator().manual_seed(5)
    sched.set_timesteps(6)
    sample = torch.randn(1, 4, 2, 3, generator=g)
    t = OrderedDict([("sample", sample)])
    for i, ts in enumerate(sched.timesteps):
        eps = torch.randn(1, 4, 2, 3, generator=g)
        sample = sched.step(eps, ts, sample).prev_sample
        t[f"eps.{i}"] = eps
        t[f"prev.{i}"] = sample
    write_safetensors(out / "pndm.safetensors", t, {"steps": "6"})
    (out / "pndm.json").write_text(json.dumps({"timesteps": timesteps}, indent=1) + "\n")


def run_case(pipe, c: dict, dtype: torch.dtype):
    """One TextToVideoZeroPipeline call with a seeded CPU generator; also returns the
    intermediate latents (first backward loops, warped, forward-diffused)."""
    from diffusers.pipelines.deprecated.text_to_video_synthesis import pipeline_text_to_video_zero as z

    rec: dict = {}
    import diffusers.schedulers.scheduling_ddim as ddim_mod

    orig_randn, orig_ddim = z.randn_tensor, ddim_mod.randn_tensor
    # The float64 run draws the same float32 noise (torch's float64 stream differs): the
    # comparison is then about arithmetic only (DDIM's eta noise too).
    z.randn_tensor = lambda shape, generator=None, device=None, dtype=None, layout=None: orig_randn(
        shape, generator=generator, device=device, dtype=torch.float32).to(dtype)
    ddim_mod.randn_tensor = lambda shape, generator=None, device=None, dtype=None, layout=None: orig_ddim(
        shape, generator=generator, device=device, dtype=torch.float32).to(dtype)
    p = pipe.to(dtype)
    orig_back, orig_fwd = p.backward_loop, p.forward_loop
    loops: list = []

    def back(**kw):
        r = orig_back(**kw)
        loops.append(r.clone())
        return r

    def fwd(x_t0, t0, t1, generator):
        rec["warped"] = x_t0.clone()
        r = orig_fwd(x_t0, t0, t1, generator)
        rec["noised"] = r.clone()
        rec["forward_t0_t1"] = [int(t0), int(t1)]
        return r

    p.backward_loop, p.forward_loop = back, fwd
    try:
        out = p(prompt=c["prompt"], video_length=c["video_length"], height=c["height"], width=c["width"],
                num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"],
                generator=torch.Generator().manual_seed(c["seed"]), t0=c["t0"], t1=c["t1"],
                motion_field_strength_x=c["motion_field_strength_x"], motion_field_strength_y=c["motion_field_strength_y"],
                frame_ids=c["frame_ids"], eta=c.get("eta", 0.0))
    finally:
        z.randn_tensor, ddim_mod.randn_tensor = orig_randn, orig_ddim
        del p.backward_loop, p.forward_loop
    rec["x1_t1"], rec["x1_t0"], rec["latents"] = loops
    frames = torch.from_numpy(out.images).to(torch.float64)
    return rec, frames, [int(t) for t in p.scheduler.timesteps]


def run_chunked(pipe, c: dict, dtype: torch.dtype):
    """The docs' loop: chunk_ids = arange(0, L, chunk_size - 1); frame_ids = [0] + range(start, end)."""
    import numpy as np

    n, size = c["video_length"], c["chunk_size"]
    chunk_ids = np.arange(0, n, size - 1)
    frames = []
    for i, start in enumerate(chunk_ids):
        end = n if i == len(chunk_ids) - 1 else int(chunk_ids[i + 1])
        ids = [0] + list(range(int(start), end))
        _, fr, _ = run_case(pipe, dict(c, video_length=len(ids), frame_ids=ids), dtype)  # re-seeded per chunk
        frames.append(fr[1:])
    return torch.cat(frames)



# Scheduler settings off the defaults (issue 21): the CASES fields, then the options given as
# diffusers' `Scheduler.from_config(config, **options)` and t2v's `scheduler_config`.
OPTION_CASES = [
    # PNDM with its Runge-Kutta warm-up (the class default, which SD 1.5's file turns off): the
    # half-way scheduler copy then carries PRK state into the joint loop.
    ("pndm_prk_f3", "pndm", 40, 48, 3, 5, 7.5, 1, 2, 50.0, 20.0, None, 21, "a corgi running in a park",
     {"skip_prk_steps": False}),
    # DDIM on a zero-terminal-SNR schedule with trailing spacing and v-less epsilon clipping.
    ("ddim_trailing_zsnr_f3", "ddim", 48, 40, 3, 4, 6.0, 1, 2, -30.0, 40.0, None, 22, "a sailboat on a lake",
     {"timestep_spacing": "trailing", "rescale_betas_zero_snr": True, "clip_sample": True, "clip_sample_range": 1.5}),
    # DDIM with eta: every step of both loops draws from the pipeline's generator, around the
    # forward diffusion's noise.
    ("ddim_eta0.8_f3", "ddim", 40, 40, 3, 5, 7.5, 1, 3, 40.0, -20.0, None, 23, "a hot air balloon over hills", {},
     {"eta": 0.8}),
]


def record(fix: Path, model: Path, rows: list, sub: str) -> list:
    """Runs each case in float32 and float64 and writes zero/<sub>/*.safetensors + zero/<sub>.json."""
    out_cases = []
    zero = fix / "zero"
    (zero / sub).mkdir(parents=True)
    for row in rows:
        c = dict(zip(FIELDS, row[:len(FIELDS)]))
        pipe = load(model, c["scheduler"])
        if len(row) > len(FIELDS) and row[len(FIELDS)]:  # options: Scheduler.from_config(config, **options)
            c["scheduler_config"] = row[len(FIELDS)]
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **c["scheduler_config"])
        if len(row) > len(FIELDS) + 1:  # TextToVideoZeroPipeline.__call__ arguments off their defaults (eta)
            c.update(row[len(FIELDS) + 1])
        r32, fr32, ts = run_case(pipe, c, torch.float32)
        r64, fr64, _ = run_case(copy.deepcopy(pipe), c, torch.float64)
        lat32, lat64 = r32["latents"].double(), r64["latents"]
        ref_err = {
            "latents_rel_l2": float((lat32 - lat64).norm() / lat64.norm()),
            "frames_max_abs": float((fr32 - fr64).abs().max()),
            "frames_rel_l2": float((fr32 - fr64).norm() / fr64.norm()),
        }
        # zeroing the motion must change the video (the warp is visible in the frames)
        still, _, _ = run_case(pipe, dict(c, motion_field_strength_x=0.0, motion_field_strength_y=0.0), torch.float32)
        motion_effect = float((still["latents"] - r32["latents"]).norm() / r32["latents"].norm())
        assert motion_effect > 1e-2, (c["name"], motion_effect)
        tensors = OrderedDict((k, r32[k].float()) for k in ["x1_t1", "x1_t0", "warped", "noised", "latents"])
        tensors["frames"] = fr32.float()
        f = zero / sub / f"{c['name']}.safetensors"
        write_safetensors(f, tensors, {"case": json.dumps(c)})
        c.update(model="tiny-sd", file=str(f.relative_to(fix)), timesteps=ts, forward_t0_t1=r32["forward_t0_t1"],
                 ref_err=ref_err, motion_effect=motion_effect,
                 frames_range=[float(fr32.min()), float(fr32.max()), float(fr32.std())])
        out_cases.append(c)
        print(f"  zero {c['name']:<14} timesteps {ts}  diffusers f32 vs f64: latents {ref_err['latents_rel_l2']:.1e}, "
              f"frames max {ref_err['frames_max_abs'] * 255:.4f}/255; no-motion change {motion_effect:.2f}", flush=True)
    (zero / f"{sub}.json").write_text(json.dumps(out_cases, indent=1) + "\n")
    return out_cases


def main(fix: Path) -> Path:
    mf.setup_torch()
    for owned in ["tiny-sd", "zero"]:
        if (fix / owned).exists():
            shutil.rmtree(fix / owned)
    zero = fix / "zero"
    zero.mkdir(parents=True)
    model = build_model(fix)
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(model / "unet").eval()
    dump_modules(fix, unet, zero / "modules")
    dump_warp(zero)
    dump_pndm(zero, model)

    out_cases = record(fix, model, CASES, "cases")
    out_cases += record(fix, model, OPTION_CASES, "options")

    c = dict(zip(CHUNK_FIELDS, CHUNKED))
    pipe = load(model, c["scheduler"])
    fr32 = run_chunked(pipe, c, torch.float32)
    fr64 = run_chunked(copy.deepcopy(pipe), c, torch.float64)
    assert fr32.shape[0] == c["video_length"]
    f = zero / "cases" / f"{c['name']}.safetensors"
    write_safetensors(f, OrderedDict([("frames", fr32.float())]), {"case": json.dumps(c)})
    c.update(model="tiny-sd", file=str(f.relative_to(fix)), ref_err={"frames_max_abs": float((fr32 - fr64).abs().max())})
    (zero / "chunked.json").write_text(json.dumps([c], indent=1) + "\n")
    print(f"  zero {c['name']:<14} {c['video_length']} frames in chunks of {c['chunk_size']}: diffusers f32 vs f64 "
          f"frames max {c['ref_err']['frames_max_abs'] * 255:.4f}/255", flush=True)

    files = sorted(p for root in ["tiny-sd", "zero"] for p in (fix / root).rglob("*") if p.is_file() and not p.is_symlink()
                   and not any(q.is_symlink() for q in p.relative_to(fix).parents if (fix / q).exists() and (fix / q).is_symlink()))
    files = [p for p in files if not any((fix / q).is_symlink() for q in p.relative_to(fix).parents)]
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(fix)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    print(f"zero: {len(out_cases)} cases, {total / 2**20:.2f} MiB in {len(files)} files, digest {h.hexdigest()}")
    assert total < 4 * 2**20, "Text2Video-Zero fixtures should stay a few MB"
    return zero


def options_only(fix: Path) -> None:
    """Rewrites only zero/options* (the OPTION_CASES) on the existing tiny-sd."""
    mf.setup_torch()
    if (fix / "zero" / "options").exists():
        shutil.rmtree(fix / "zero" / "options")
    record(fix, fix / "tiny-sd", OPTION_CASES, "options")


if __name__ == "__main__":
    if "--options-only" in sys.argv[1:]:
        options_only(HERE.parent.parent / "tests" / "fixtures")
    else:
        main(HERE.parent.parent / "tests" / "fixtures")
