#!/usr/bin/env python3
"""Video-to-video: diffusers' VideoToVideoSDPipeline on the tiny pipeline, the input files it
reads (PNG folder, GIF, MP4s as ffmpeg/libx264 write them) and PIL's bicubic resize.

    tools/reference/.venv/bin/python tools/reference/v2v_fixtures.py   (or via make_fixtures.py)

Writes tests/fixtures/v2v/ (owned: deleted first):
- `input/frame_000.png` …: the source clip, 3 frames of 24×36 RGB (a synthetic scene), the
  e2e input. The pipeline gets them as the Zeroscope card's recipe does:
  `Image.open(p).convert("RGB").resize((W, H))` (PIL's default resample for RGB: BICUBIC).
- `input.gif` (ffmpeg's GIF of the same frames), `high.mp4` (ffmpeg libx264 defaults: High
  profile, CABAC, B-frames, 6 frames), `baseline.mp4` (`-profile:v baseline`), `main.mp4`
  (Main profile, CABAC, what phones record): the Rust tests decode them and compare with
  ffmpeg's own decode at test time.
- `resize.safetensors`: PIL bicubic resizes of random u8 images, up, down and mixed.
- `cases.json` + `cases/*.safetensors`: end-to-end runs with two schedulers × two strengths.
  Per case: `pixels` (the video processor's output, (F,3,H,W) in [-1,1]), `init_latents`
  (VAE posterior sample × scaling_factor, (F,4,h,w): the first randn draw of the generator),
  `start_latents` (after add_noise at the first kept timestep: the second draw, (1,4,F,h,w)),
  `latents` (final), `frames` (output_type="np", f16), the kept timesteps, and diffusers' own
  float32-vs-float64 error of the final latents and frames (the float64 run gets the same
  float32 noise).
- `chain.safetensors`: the `--upscale` chain (see `chain()`): the first stage's u8 frames and
  the final frames.
- `stochastic.json` + `stochastic/*.safetensors` (`stochastic()`; `--stochastic-only` writes just
  these): the same end-to-end layout with the schedulers whose steps draw noise (Euler ancestral,
  DPM-Solver++ SDE), which diffusers draws from the pipeline's one generator after the posterior
  sample and add_noise's noise. Each case names its t2v `--scheduler` (`t2v_scheduler`).
- `eta.json` + `eta/*.safetensors` (`eta()`; `--eta-only`): DDIM with the pipelines' `eta` > 0.
- `odd.json` + `odd/<name>/` (input PNGs) + `odd/<name>.safetensors` (`odd()`; `--odd-only`
  writes just these): frames whose size is not a multiple of 8, given to the pipeline as they are.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures as mf  # noqa: E402  (first: pins the CPU code paths before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sweep_fixtures import write_st  # noqa: E402

SRC_F, SRC_H, SRC_W = 3, 24, 36
H, W = 32, 48  # the model size: latent 4×6
SEED = 5
# name, scheduler, steps, strength, guidance — strengths cut different numbers of steps
CASES = [
    ("ddim_s0.5_cfg", "DDIMScheduler", 4, 0.5, 9.0),
    ("dpm_s0.8_cfg", "DPMSolverMultistepScheduler", 3, 0.8, 9.0),
    ("euler_s0.7", "EulerDiscreteScheduler", 3, 0.7, 1.0),
]
PROMPT = "A lion walking in the jungle"


def scene(f: int, h: int, w: int) -> np.ndarray:
    """A smooth moving scene with some texture: gradients, a moving disc, a checker patch."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / w * 3.1 + f * 0.4)
    g = 40 + 180 * (y / h)
    b = 128 + 90 * np.cos((x + y) / (w + h) * 6.0 - f * 0.7)
    cx, cy = w * (0.3 + 0.15 * f), h * 0.5
    disc = ((x - cx) ** 2 + (y - cy) ** 2) < (h / 4) ** 2
    r[disc], g[disc], b[disc] = 240, 200, 30
    chk = ((x.astype(int) // 3 + y.astype(int) // 3) % 2 == 0) & (x > w * 0.7) & (y < h * 0.4)
    r[chk] = 20
    return np.clip(np.stack([r, g, b], -1), 0, 255).round().astype(np.uint8)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def write_inputs(out: Path) -> list[Path]:
    (out / "input").mkdir(parents=True)
    pngs = []
    for f in range(SRC_F):
        p = out / "input" / f"frame_{f:03d}.png"
        Image.fromarray(scene(f, SRC_H, SRC_W)).save(p, optimize=False, compress_level=9)
        pngs.append(p)
    pattern = str(out / "input" / "frame_%03d.png")
    ffmpeg("-i", pattern, "-f", "gif", str(out / "input.gif"))
    # 6 frames so libx264 puts B-frames in: the clip played forward then backward.
    tmp = out / "tmp6"
    tmp.mkdir()
    for i, f in enumerate([0, 1, 2, 2, 1, 0]):
        Image.fromarray(scene(f, SRC_H, SRC_W)).save(tmp / f"{i:03d}.png")
    common = ["-framerate", "8", "-i", str(tmp / "%03d.png"), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-threads", "1",
              "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact"]
    ffmpeg(*common, "-crf", "18", str(out / "high.mp4"))
    ffmpeg(*common, "-profile:v", "baseline", "-crf", "18", str(out / "baseline.mp4"))
    ffmpeg(*common, "-profile:v", "main", "-crf", "23", "-bf", "2", str(out / "main.mp4"))
    shutil.rmtree(tmp)
    return pngs


def resize_cases(out: Path) -> None:
    rng = np.random.default_rng(11)
    tensors, sizes = OrderedDict(), []
    # (src h, w) → (dst h, w): up, down, mixed, one axis only, the 576w → XL ratio in small
    for i, (sh, sw, dh, dw) in enumerate([(24, 36, 32, 48), (50, 70, 32, 48), (20, 40, 33, 17), (16, 16, 16, 40),
                                          (18, 32, 32, 56), (7, 5, 3, 2)]):
        img = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        # smooth half the cases: random noise alone saturates bicubic overshoot everywhere
        if i % 2:
            img = np.asarray(Image.fromarray(img).resize((max(sw // 4, 1), max(sh // 4, 1)), Image.BOX).resize((sw, sh), Image.BILINEAR))
        res = np.asarray(Image.fromarray(img).resize((dw, dh)))
        tensors[f"{i}.src"] = torch.from_numpy(img.astype(np.float32))
        tensors[f"{i}.dst"] = torch.from_numpy(res.astype(np.float32))
        sizes.append([sh, sw, dh, dw])
    write_st(out / "resize.safetensors", tensors, {"cases": json.dumps(sizes), "resample": "PIL.Image.resize default (BICUBIC)"})


def load(path: Path, scheduler: str):
    import diffusers
    from diffusers import VideoToVideoSDPipeline

    pipe = VideoToVideoSDPipeline.from_pretrained(path, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    cls = getattr(diffusers, scheduler)
    if type(pipe.scheduler) is not cls:
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.eval()
    return pipe


def patch_randn() -> None:
    """Both randn draws (posterior sample, add_noise's noise) in float32 whatever the pipeline's
    dtype, so the float64 run starts from the same noise (for float32 this changes nothing)."""
    import diffusers.models.autoencoders.vae as vae_mod
    from diffusers.pipelines.deprecated.text_to_video_synthesis import pipeline_text_to_video_synth_img2img as v2v_mod

    orig = vae_mod.randn_tensor

    def randn32(shape, generator=None, device=None, dtype=None, layout=None):
        return orig(shape, generator=generator, device=device, dtype=torch.float32, layout=layout).to(dtype)

    vae_mod.randn_tensor = randn32
    v2v_mod.randn_tensor = randn32


def run(pipe, frames, steps: int, strength: float, guidance: float, dtype: torch.dtype):
    p = pipe.to(dtype)
    seen = {}
    add_noise = p.scheduler.add_noise

    def spy(original, noise, t):
        seen["init_latents"], seen["t"] = original.clone(), t.clone()
        out = add_noise(original, noise, t)
        seen["start_latents"] = out.clone()
        return out

    p.scheduler.add_noise = spy
    steps_seen = []
    warnings.filterwarnings("ignore")
    out = p(prompt=PROMPT, video=frames, strength=strength, num_inference_steps=steps, guidance_scale=guidance,
            generator=torch.Generator().manual_seed(SEED), output_type="np",
            callback=lambda i, t, lat: steps_seen.append(lat.clone())).frames
    del p.scheduler.add_noise
    kept = [float(t) for t in p.scheduler.timesteps[len(p.scheduler.timesteps) - len(steps_seen):]]
    return seen, steps_seen[-1], torch.from_numpy(out).to(torch.float64), kept


def chain(fix: Path, out: Path) -> None:
    """`t2v generate --upscale`'s reference: text-to-video (output_type="pil": frames rounded to
    u8 by numpy_to_pil), every frame PIL-resized to twice the size, video-to-video on them — the
    Zeroscope card's 576w → XL recipe, with the tiny pipeline in both roles."""
    from diffusers import DPMSolverMultistepScheduler, TextToVideoSDPipeline

    seed, steps, strength, g, f = 3, 3, 0.7, 1.0, 2
    t2v = TextToVideoSDPipeline.from_pretrained(fix / "tiny-t2v", torch_dtype=torch.float32)
    t2v.set_progress_bar_config(disable=True)
    t2v.scheduler = DPMSolverMultistepScheduler.from_config(t2v.scheduler.config)
    first = t2v(prompt=PROMPT, num_frames=f, height=H, width=W, num_inference_steps=steps, guidance_scale=g,
                generator=torch.Generator().manual_seed(seed), output_type="pil").frames[0]
    up = [im.resize((2 * W, 2 * H)) for im in first]
    v2v = load(fix / "tiny-t2v", "DPMSolverMultistepScheduler")
    frames = v2v(prompt=PROMPT, video=up, strength=strength, num_inference_steps=steps, guidance_scale=g,
                 generator=torch.Generator().manual_seed(seed), output_type="np").frames
    tensors = OrderedDict([
        ("first", torch.from_numpy(np.stack([np.asarray(im) for im in first]).astype(np.float32))),
        ("frames", torch.from_numpy(frames).to(torch.float16)),
    ])
    meta = dict(seed=seed, steps=steps, strength=strength, guidance=g, frames=f, size=[H, W], upscaled=[2 * H, 2 * W],
                scheduler="DPMSolverMultistepScheduler", prompt=PROMPT)
    write_st(out / "chain.safetensors", tensors, {"chain": json.dumps(meta)})
    print(f"  v2v chain: {f} frames {W}x{H} → {2 * W}x{2 * H}, frames shape {tuple(frames.shape)}", flush=True)


def main(fix: Path) -> Path:
    mf.setup_torch()
    out = fix / "v2v"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pngs = write_inputs(out)
    resize_cases(out)
    patch_randn()
    (out / "cases").mkdir()
    frames = [Image.open(p).convert("RGB").resize((W, H)) for p in pngs]
    cases = []
    for name, sched, steps, strength, guidance in CASES:
        pipe = load(fix / "tiny-t2v", sched)
        pixels = pipe.video_processor.preprocess_video(frames)  # (1, 3, F, H, W)
        seen, lat32, fr32, kept = run(pipe, frames, steps, strength, guidance, torch.float32)
        _, lat64, fr64, _ = run(copy.deepcopy(pipe), frames, steps, strength, guidance, torch.float64)
        ref_err = {
            "latents_rel_l2": float((lat32.double() - lat64).norm() / lat64.norm()),
            "frames_max_abs": float((fr32 - fr64).abs().max()),
        }
        tensors = OrderedDict([
            ("pixels", pixels[0].permute(1, 0, 2, 3).contiguous().float()),
            ("init_latents", seen["init_latents"].float()),
            ("start_latents", seen["start_latents"].float()),
            ("latents", lat32.float()),
            ("frames", fr32.to(torch.float16)),
        ])
        c = dict(name=name, scheduler=sched, num_inference_steps=steps, strength=strength, guidance_scale=guidance,
                 seed=SEED, prompt=PROMPT, height=H, width=W, num_frames=SRC_F, timesteps=kept,
                 file=f"v2v/cases/{name}.safetensors", ref_err=ref_err)
        write_st(out / "cases" / f"{name}.safetensors", tensors, {"case": json.dumps(c)})
        cases.append(c)
        print(f"  v2v {name:<16} timesteps {kept}  diffusers f32 vs f64: latents {ref_err['latents_rel_l2']:.1e}, "
              f"frames max {ref_err['frames_max_abs'] * 255:.3f}/255", flush=True)
    (out / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    chain(fix, out)
    stochastic(fix)
    odd(fix)
    eta(fix)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(fix)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    print(f"v2v: {len(cases)} cases, {total / 2**10:.0f} KiB in {len(files)} files, digest {h.hexdigest()}")
    assert total < 1 * 2**20, "the v2v fixtures should stay small"
    return out


# name, t2v --scheduler, diffusers class, from_config overrides, steps, strength, guidance
STOCHASTIC = [
    ("euler_a_s0.7", "euler-a", "EulerAncestralDiscreteScheduler", {}, 3, 0.7, 1.0),
    ("dpm_sde_s0.8_cfg", "dpm++-sde", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, 3, 0.8, 9.0),
]


def stochastic(fix: Path) -> None:
    """End-to-end runs with stochastic schedulers (see the module docstring). The float64
    reference run draws the steps' noise in float32 too (Euler ancestral draws in the model
    output's dtype), so the two runs see the same noise."""
    import diffusers
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as ea_mod

    out = fix / "v2v"
    if (out / "stochastic").exists():
        shutil.rmtree(out / "stochastic")
    (out / "stochastic").mkdir(parents=True)
    patch_randn()
    orig = ea_mod.randn_tensor
    ea_mod.randn_tensor = lambda shape, generator=None, device=None, dtype=None, layout=None: orig(
        shape, generator=generator, device=device, dtype=torch.float32, layout=layout).to(dtype)
    pngs = sorted((out / "input").glob("*.png"))
    frames = [Image.open(p).convert("RGB").resize((W, H)) for p in pngs]
    cases = []
    for name, t2v_name, sched, over, steps, strength, guidance in STOCHASTIC:
        pipe = load(fix / "tiny-t2v", "DDIMScheduler")
        pipe.scheduler = getattr(diffusers, sched).from_config(pipe.scheduler.config, **over)
        seen, lat32, fr32, kept = run(pipe, frames, steps, strength, guidance, torch.float32)
        _, lat64, fr64, _ = run(copy.deepcopy(pipe), frames, steps, strength, guidance, torch.float64)
        ref_err = {
            "latents_rel_l2": float((lat32.double() - lat64).norm() / lat64.norm()),
            "frames_max_abs": float((fr32 - fr64).abs().max()),
        }
        tensors = OrderedDict([("start_latents", seen["start_latents"].float()), ("latents", lat32.float()),
                               ("frames", fr32.to(torch.float16))])
        c = dict(name=name, scheduler=sched, t2v_scheduler=t2v_name, overrides=over, num_inference_steps=steps,
                 strength=strength, guidance_scale=guidance, seed=SEED, prompt=PROMPT, height=H, width=W,
                 num_frames=SRC_F, timesteps=kept, file=f"v2v/stochastic/{name}.safetensors", ref_err=ref_err)
        write_st(out / "stochastic" / f"{name}.safetensors", tensors, {"case": json.dumps(c)})
        cases.append(c)
        print(f"  v2v {name:<16} timesteps {kept}  diffusers f32 vs f64: latents {ref_err['latents_rel_l2']:.1e}, "
              f"frames max {ref_err['frames_max_abs'] * 255:.3f}/255", flush=True)
    ea_mod.randn_tensor = orig
    # The same schedulers through TextToVideoSDPipeline (initial latents, then the steps' noise,
    # drawn frames first as it steps on (F, C, h, w)): frames only, float32.
    from diffusers import TextToVideoSDPipeline

    t2v = TextToVideoSDPipeline.from_pretrained(fix / "tiny-t2v", torch_dtype=torch.float32)
    t2v.set_progress_bar_config(disable=True)
    base = t2v.scheduler.config
    for name, t2v_name, sched, over, steps, _, guidance in STOCHASTIC:
        t2v.scheduler = getattr(diffusers, sched).from_config(base, **over)
        fr = t2v(prompt=PROMPT, num_frames=SRC_F, height=H, width=W, num_inference_steps=steps + 1, guidance_scale=guidance,
                 generator=torch.Generator().manual_seed(SEED + 6), output_type="np").frames
        c = dict(name=f"t2v_{name}", pipeline="text-to-video", scheduler=sched, t2v_scheduler=t2v_name, overrides=over,
                 num_inference_steps=steps + 1, guidance_scale=guidance, seed=SEED + 6, prompt=PROMPT, height=H, width=W,
                 num_frames=SRC_F, file=f"v2v/stochastic/t2v_{name}.safetensors")
        write_st(out / "stochastic" / f"t2v_{name}.safetensors",
                 OrderedDict([("frames", torch.from_numpy(np.asarray(fr[0])).to(torch.float16))]), {"case": json.dumps(c)})
        cases.append(c)
        print(f"  t2v {name:<16} {steps + 1} steps", flush=True)
    (out / "stochastic.json").write_text(json.dumps(cases, indent=1) + "\n")


def eta(fix: Path) -> None:
    """DDIM with the pipelines' `eta` > 0 (`eta.json` + `eta/*.safetensors`; `--eta-only`): each
    step adds σ_t·z with z from the pipeline's generator (after the posterior sample and
    add_noise's noise in video-to-video, after the initial latents in text-to-video), drawn in
    the (F, C, h, w) layout the pipelines step in. Video-to-video with diffusers' f32-vs-f64
    error; text-to-video frames only."""
    import diffusers.schedulers.scheduling_ddim as ddim_mod
    from diffusers import DDIMScheduler, TextToVideoSDPipeline

    out = fix / "v2v"
    if (out / "eta").exists():
        shutil.rmtree(out / "eta")
    (out / "eta").mkdir(parents=True)
    patch_randn()
    orig = ddim_mod.randn_tensor
    ddim_mod.randn_tensor = lambda shape, generator=None, device=None, dtype=None, layout=None: orig(
        shape, generator=generator, device=device, dtype=torch.float32, layout=layout).to(dtype)
    pngs = sorted((out / "input").glob("*.png"))
    frames = [Image.open(p).convert("RGB").resize((W, H)) for p in pngs]
    cases = []
    name, steps, strength, guidance, e = "ddim_eta1_s0.8_cfg", 4, 0.8, 9.0, 1.0
    pipe = load(fix / "tiny-t2v", "DDIMScheduler")

    def run_eta(p, dtype):
        q = p.to(dtype)
        seen = []
        r = q(prompt=PROMPT, video=frames, strength=strength, num_inference_steps=steps, guidance_scale=guidance, eta=e,
              generator=torch.Generator().manual_seed(SEED), output_type="np", callback=lambda i, t, lat: seen.append(lat.clone())).frames
        return seen[-1], torch.from_numpy(r).to(torch.float64)

    lat32, fr32 = run_eta(pipe, torch.float32)
    lat64, fr64 = run_eta(copy.deepcopy(pipe), torch.float64)
    ref_err = {"latents_rel_l2": float((lat32.double() - lat64).norm() / lat64.norm()),
               "frames_max_abs": float((fr32 - fr64).abs().max())}
    c = dict(name=name, scheduler="DDIMScheduler", t2v_scheduler="ddim", eta=e, num_inference_steps=steps, strength=strength,
             guidance_scale=guidance, seed=SEED, prompt=PROMPT, height=H, width=W, num_frames=SRC_F,
             file=f"v2v/eta/{name}.safetensors", ref_err=ref_err)
    write_st(out / "eta" / f"{name}.safetensors", OrderedDict([("latents", lat32.float()), ("frames", fr32.to(torch.float16))]),
             {"case": json.dumps(c)})
    cases.append(c)
    print(f"  v2v {name:<20} diffusers f32 vs f64: latents {ref_err['latents_rel_l2']:.1e}, frames max {ref_err['frames_max_abs'] * 255:.3f}/255", flush=True)
    ddim_mod.randn_tensor = orig
    t2v = TextToVideoSDPipeline.from_pretrained(fix / "tiny-t2v", torch_dtype=torch.float32)
    t2v.set_progress_bar_config(disable=True)
    t2v.scheduler = DDIMScheduler.from_config(t2v.scheduler.config)
    for m in (t2v.unet, t2v.vae, t2v.text_encoder):
        m.eval()
    name, steps, e = "t2v_ddim_eta0.6_cfg", 4, 0.6
    fr = t2v(prompt=PROMPT, num_frames=SRC_F, height=H, width=W, num_inference_steps=steps, guidance_scale=9.0, eta=e,
             generator=torch.Generator().manual_seed(SEED + 7), output_type="np").frames
    det = t2v(prompt=PROMPT, num_frames=SRC_F, height=H, width=W, num_inference_steps=steps, guidance_scale=9.0, eta=0.0,
              generator=torch.Generator().manual_seed(SEED + 7), output_type="np").frames
    effect = float(np.abs(np.asarray(fr[0]) - np.asarray(det[0])).max())
    assert effect > 0.01, effect  # eta must change the video
    c = dict(name=name, pipeline="text-to-video", scheduler="DDIMScheduler", t2v_scheduler="ddim", eta=e, num_inference_steps=steps,
             guidance_scale=9.0, seed=SEED + 7, prompt=PROMPT, height=H, width=W, num_frames=SRC_F,
             file=f"v2v/eta/{name}.safetensors", eta_effect_max_abs=effect)
    write_st(out / "eta" / f"{name}.safetensors", OrderedDict([("frames", torch.from_numpy(np.asarray(fr[0])).to(torch.float16))]),
             {"case": json.dumps(c)})
    cases.append(c)
    print(f"  t2v {name:<20} {steps} steps; eta 0 vs {e}: frames differ by up to {effect * 255:.1f}/255", flush=True)
    (out / "eta.json").write_text(json.dumps(cases, indent=1) + "\n")


# name, diffusers class, steps, strength, guidance, source frames, height, width: sizes that are not
# multiples of the VAE's factor 8, which VideoToVideoSDPipeline takes as they are (its
# VideoProcessor has do_resize=False): the encoder's stride-2 convolutions floor each level, so
# the latents are ⌊H/8⌋ × ⌊W/8⌋ and the frames come out cropped to 8·⌊H/8⌋ × 8·⌊W/8⌋.
ODD = [
    ("odd_38x53_ddim", "DDIMScheduler", 3, 0.6, 9.0, 3, 38, 53),
    ("odd_45x30_dpm", "DPMSolverMultistepScheduler", 3, 0.8, 1.0, 2, 45, 30),
]


def odd(fix: Path) -> None:
    """End-to-end runs on frames whose size is not a multiple of 8 (see ODD): the input frames as
    PNG folders (`odd/<name>/`), the latents and frames as in `cases/`."""
    out = fix / "v2v"
    if (out / "odd").exists():
        shutil.rmtree(out / "odd")
    (out / "odd").mkdir(parents=True)
    patch_randn()
    cases = []
    for name, sched, steps, strength, guidance, nf, h, w in ODD:
        (out / "odd" / name).mkdir()
        for f in range(nf):
            Image.fromarray(scene(f, h, w)).save(out / "odd" / name / f"frame_{f:03d}.png", optimize=False, compress_level=9)
        frames = [Image.open(p).convert("RGB") for p in sorted((out / "odd" / name).glob("*.png"))]
        pipe = load(fix / "tiny-t2v", sched)
        seen, lat32, fr32, kept = run(pipe, frames, steps, strength, guidance, torch.float32)
        _, lat64, fr64, _ = run(copy.deepcopy(pipe), frames, steps, strength, guidance, torch.float64)
        ref_err = {
            "latents_rel_l2": float((lat32.double() - lat64).norm() / lat64.norm()),
            "frames_max_abs": float((fr32 - fr64).abs().max()),
        }
        assert tuple(fr32.shape[-3:-1]) == (h - h % 8, w - w % 8), fr32.shape
        tensors = OrderedDict([("init_latents", seen["init_latents"].float()), ("latents", lat32.float()),
                               ("frames", fr32.to(torch.float16))])
        c = dict(name=name, scheduler=sched, num_inference_steps=steps, strength=strength, guidance_scale=guidance,
                 seed=SEED, prompt=PROMPT, video_height=h, video_width=w, height=h - h % 8, width=w - w % 8,
                 num_frames=nf, timesteps=kept, input=f"v2v/odd/{name}", file=f"v2v/odd/{name}.safetensors",
                 ref_err=ref_err)
        write_st(out / "odd" / f"{name}.safetensors", tensors, {"case": json.dumps(c)})
        cases.append(c)
        print(f"  v2v {name:<16} {w}x{h} → {c['width']}x{c['height']}  diffusers f32 vs f64: latents "
              f"{ref_err['latents_rel_l2']:.1e}, frames max {ref_err['frames_max_abs'] * 255:.3f}/255", flush=True)
    (out / "odd.json").write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    repo = HERE.parent.parent
    if "--stochastic-only" in sys.argv[1:]:
        mf.setup_torch()
        stochastic(repo / "tests" / "fixtures")
    elif "--eta-only" in sys.argv[1:]:
        mf.setup_torch()
        eta(repo / "tests" / "fixtures")
    elif "--odd-only" in sys.argv[1:]:
        mf.setup_torch()
        odd(repo / "tests" / "fixtures")
    else:
        main(repo / "tests" / "fixtures")
