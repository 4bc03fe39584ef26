#!/usr/bin/env python3
"""The fidelity sweep: TextToVideoSDPipeline end to end over a grid of sizes, frame counts,
guidance, schedulers, weight placements and model variants (tests/pipeline_sweep.rs runs t2v on
every case and compares).

    tools/reference/.venv/bin/python tools/reference/sweep_fixtures.py   (or via make_fixtures.py)

Writes tests/fixtures/sweep/: model variants beside tiny-t2v (their shared components are
symlinks into tiny-t2v, as a Hugging Face cache snapshot links its blobs), cases.json, and one
safetensors per case with diffusers' final latents and frames. Every pipeline is loaded from
disk with `from_pretrained`, as users load it.

Each case is also run in float64 (same weights, same float32 initial noise) to measure how far
diffusers' own float32 result is from exact arithmetic (`ref_err` in cases.json), and in float16
to measure how far diffusers' float16 pipeline is from its float32 one (`ref_err16`). The Rust
test's bounds are stated in those terms (see tests/pipeline_sweep.rs).
"""

from __future__ import annotations

import copy
import warnings
import hashlib
import json
import math
import os
import shutil
import struct
import sys
from collections import OrderedDict
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures as mf  # noqa: E402  (first: pins the CPU code paths before torch loads)
import tiny_models as tm  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

VAE_DECODER_OUT_GAIN = 0.4  # as make_fixtures.py: frames mostly unsaturated

# Model variants beyond tiny-t2v (which is the "base" variant). Each changes graph facts the
# engine must read from the configs: UNet depth, layers per block, head width, norm groups,
# VAE depth (vae_scale_factor 2 and 4), and the text encoder's width and depth.
VARIANTS = OrderedDict(
    [
        (
            "unet3-vae2",
            dict(
                unet=dict(
                    tm.UNET_CONFIG,
                    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
                    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
                    block_out_channels=(4, 8, 8),
                    layers_per_block=1,
                    norm_num_groups=2,
                    attention_head_dim=2,
                ),
                vae=dict(
                    tm.VAE_CONFIG,
                    down_block_types=("DownEncoderBlock2D",) * 2,
                    up_block_types=("UpDecoderBlock2D",) * 2,
                    block_out_channels=(4, 8),
                    layers_per_block=1,
                    norm_num_groups=2,
                ),
                text_encoder=None,  # tiny-t2v's (width 8)
            ),
        ),
        (
            "lpb3-te12-vae3",
            dict(
                unet=dict(
                    tm.UNET_CONFIG,
                    block_out_channels=(8, 8, 8, 8),
                    layers_per_block=3,
                    norm_num_groups=8,
                    attention_head_dim=8,
                    cross_attention_dim=12,
                ),
                vae=dict(
                    tm.VAE_CONFIG,
                    down_block_types=("DownEncoderBlock2D",) * 3,
                    up_block_types=("UpDecoderBlock2D",) * 3,
                    block_out_channels=(4, 8, 8),
                    layers_per_block=1,
                    norm_num_groups=4,
                ),
                # another width and depth; stored float16 to keep the 49,408-row table at 1.2 MB
                # (loaded back as float32: both sides compute in f32 on the same values)
                text_encoder=dict(
                    tm.TEXT_ENCODER_CONFIG, hidden_size=12, intermediate_size=20, num_hidden_layers=3,
                    num_attention_heads=3, projection_dim=12, hidden_act="quick_gelu",
                ),
            ),
        ),
    ]
)

SCHEDULERS = {"ddim": "DDIMScheduler", "dpm++": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler"}

# name, variant, height, width, frames, steps, guidance, scheduler, placement, noise dtype, seed, prompt
CASES = [
    # tiny-t2v: 4 UNet levels, VAE factor 8. Latent sizes chosen so every UNet level sees every
    # odd/even combination of height and width (coverage checked below).
    ("base_40x40_f1", "base", 40, 40, 1, 1, 1.0, "ddim", "f32", "float32", 7, "a lion"),
    ("base_40x40_f1_f16w", "base", 40, 40, 1, 1, 1.0, "ddim", "f16", "float32", 7, "a lion"),
    ("base_24x24_f2_cfg", "base", 24, 24, 2, 2, 9.0, "ddim", "f32", "float32", 1, "a red fox in the snow"),
    ("base_72x40_f5_dpm", "base", 72, 40, 5, 3, 1.0, "dpm++", "f32", "float32", 3, "a city street at night, neon lights"),
    ("base_48x80_f1_euler_cfg", "base", 48, 80, 1, 2, 7.5, "euler", "f32", "float32", 11, "an astronaut riding a horse"),
    ("base_96x80_f2_cfg", "base", 96, 80, 2, 2, 9.0, "ddim", "f32", "float32", 0, "waves crashing on rocks"),
    ("base_56x32_f17", "base", 56, 32, 17, 1, 1.0, "ddim", "f32", "float32", 5, "a timelapse of clouds"),
    ("base_32x56_f2_euler_cfg", "base", 32, 56, 2, 2, 9.0, "euler", "f32", "float32", 8, "a cat playing piano"),
    ("base_8x8_f5_dpm_cfg", "base", 8, 8, 5, 2, 9.0, "dpm++", "f32", "float32", 2, "fireworks"),
    ("base_64x40_f1_f16w", "base", 64, 40, 1, 1, 1.0, "ddim", "f16", "float32", 7, "a lion"),
    ("base_40x40_f2_f16w_cfg", "base", 40, 40, 2, 2, 9.0, "ddim", "f16", "float32", 4, "a panda eating bamboo"),
    ("base_40x24_f1_noise16", "base", 40, 24, 1, 1, 1.0, "ddim", "f32", "float16", 9, "a sailing boat"),
    # 3 UNet levels, layers_per_block 1, head width 2, 2 norm groups; VAE factor 2
    ("unet3_24x40_f2_cfg", "unet3-vae2", 24, 40, 2, 2, 9.0, "ddim", "f32", "float32", 1, "a lion"),
    ("unet3_40x24_f1_dpm", "unet3-vae2", 40, 24, 1, 2, 1.0, "dpm++", "f32", "float32", 6, "a forest in autumn"),
    ("unet3_8x8_f5_euler_cfg", "unet3-vae2", 8, 8, 5, 2, 9.0, "euler", "f32", "float32", 3, "rain on a window"),
    # layers_per_block 3, head width 8, 8 norm groups, text encoder 12 wide × 3 layers; VAE factor 4
    ("lpb3_40x24_f2_cfg", "lpb3-te12-vae3", 40, 24, 2, 2, 9.0, "ddim", "f32", "float32", 1, "a dog running on the beach"),
    ("lpb3_24x56_f1_euler", "lpb3-te12-vae3", 24, 56, 1, 2, 1.0, "euler", "f32", "float32", 12, "a hot air balloon"),
    ("lpb3_72x72_f1_dpm_cfg", "lpb3-te12-vae3", 72, 72, 1, 2, 7.0, "dpm++", "f16", "float32", 13, "a spaceship over mars"),
]
FIELDS = ["name", "variant", "height", "width", "num_frames", "num_inference_steps", "guidance_scale", "scheduler",
          "placement", "noise_dtype", "seed", "prompt"]


def write_st(path: Path, tensors: "OrderedDict[str, torch.Tensor]", metadata: dict) -> None:
    """Deterministic safetensors: __metadata__, then tensors by name, each in its own dtype."""
    dts = {torch.float32: "F32", torch.float16: "F16"}
    header: "OrderedDict[str, object]" = OrderedDict()
    header["__metadata__"] = OrderedDict((k, str(metadata[k])) for k in sorted(metadata))
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.numpy().tobytes()
        header[name] = OrderedDict([("dtype", dts[t.dtype]), ("shape", list(t.shape)), ("data_offsets", [off, off + len(raw)])])
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def build_variant(fix: Path, name: str, spec: dict, seed: int) -> Path:
    from diffusers import AutoencoderKL, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    out = fix / "sweep" / "models" / name
    out.mkdir(parents=True)
    unet = UNet3DConditionModel(**spec["unet"])
    tm.randomize(unet, seed)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    vae = AutoencoderKL(**spec["vae"])
    tm.randomize(vae, seed + 1, gains={"decoder.conv_out": VAE_DECODER_OUT_GAIN})
    vae.save_pretrained(out / "vae", safe_serialization=True)
    base = Path("..") / ".." / ".." / "tiny-t2v"
    links = ["tokenizer", "scheduler"]
    if spec["text_encoder"] is None:
        links.append("text_encoder")
    else:
        te = CLIPTextModel(CLIPTextConfig(**spec["text_encoder"]))
        tm.randomize(te, seed + 2)
        te.half().save_pretrained(out / "text_encoder", safe_serialization=True)
    for sub in links:
        os.symlink(base / sub, out / sub, target_is_directory=True)
    shutil.copy(fix / "tiny-t2v" / "model_index.json", out / "model_index.json")
    return out


def load(path: Path, scheduler: str, placement: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, TextToVideoSDPipeline

    pipe = TextToVideoSDPipeline.from_pretrained(path, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    cls = {"DDIMScheduler": DDIMScheduler, "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler,
           "EulerDiscreteScheduler": EulerDiscreteScheduler}[SCHEDULERS[scheduler]]
    if not isinstance(pipe.scheduler, cls) or type(pipe.scheduler) is not cls:
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.eval()
        if placement == "f16":
            # t2v's default placement: conv / linear weights stored f16 on the device, f32 math.
            with torch.no_grad():
                for mod in m.modules():
                    if isinstance(mod, (nn.Linear, nn.Conv2d, nn.Conv3d)):
                        mod.weight.copy_(mod.weight.half().float())
    return pipe


def run(pipe, c: dict, dtype: torch.dtype):
    s = pipe.vae_scale_factor
    shape = (1, pipe.unet.config.in_channels, c["num_frames"], c["height"] // s, c["width"] // s)
    noise_dt = {"float32": torch.float32, "float16": torch.float16}[c["noise_dtype"]]
    warnings.filterwarnings("ignore")
    init = torch.randn(shape, generator=torch.Generator().manual_seed(c["seed"]), dtype=noise_dt).float()
    if c["noise_dtype"] == "float32":
        # what a user's call draws: the pipeline's own prepare_latents with a seeded generator
        args = (1, shape[1], c["num_frames"], c["height"], c["width"], torch.float32, torch.device("cpu"))
        direct = pipe.prepare_latents(*args, torch.Generator().manual_seed(c["seed"]), None)
        assert torch.equal(direct, pipe.prepare_latents(*args, None, init.clone()))
    steps = []
    p = pipe.to(dtype)
    frames = p(prompt=c["prompt"], num_frames=c["num_frames"], height=c["height"], width=c["width"],
               num_inference_steps=c["num_inference_steps"], guidance_scale=c["guidance_scale"],
               latents=init.to(dtype), output_type="np",
               callback=lambda i, t, lat: steps.append(lat.clone())).frames
    return steps[-1], torch.from_numpy(frames).to(torch.float64), [int(t) for t in p.scheduler.timesteps]


def level_sizes(h: int, w: int, levels: int):
    out = [(h, w)]
    for _ in range(levels - 1):
        h, w = (h + 1) // 2, (w + 1) // 2  # conv 3×3, stride 2, padding 1
        out.append((h, w))
    return out


def main(fix: Path) -> Path:
    mf.setup_torch()
    sweep = fix / "sweep"
    if sweep.exists():
        shutil.rmtree(sweep)
    (sweep / "cases").mkdir(parents=True)
    paths = {"base": fix / "tiny-t2v"}
    for i, (name, spec) in enumerate(VARIANTS.items()):
        paths[name] = build_variant(fix, name, spec, 100 + 10 * i)

    coverage: dict = {}
    out_cases = []
    for row in CASES:
        c = dict(zip(FIELDS, row))
        pipe = load(paths[c["variant"]], c["scheduler"], c["placement"])
        s = pipe.vae_scale_factor
        levels = level_sizes(c["height"] // s, c["width"] // s, len(pipe.unet.config.block_out_channels))
        for lvl, (h, w) in enumerate(levels):
            coverage.setdefault((c["variant"], lvl), set()).add((h % 2, w % 2))
        lat32, fr32, ts = run(pipe, c, torch.float32)
        lat64, fr64, _ = run(copy.deepcopy(pipe), c, torch.float64)
        lat32d = lat32.double()
        ref_err = {
            "latents_rel_l2": float((lat32d - lat64).norm() / lat64.norm()),
            "frames_max_abs": float((fr32 - fr64).abs().max()),
            "frames_rel_l2": float((fr32 - fr64).norm() / fr64.norm()),
        }
        # diffusers' own float16 pipeline (torch_dtype=float16, same noise) against its float32
        # one: the scale of error a float16 run has, which bounds t2v's matrix-unit path (f16
        # tiles, f32 accumulation).
        lat16, fr16, _ = run(copy.deepcopy(pipe), c, torch.float16)
        ref_err16 = {
            "latents_rel_l2": float((lat16.double() - lat32d).norm() / lat32d.norm()),
            "frames_max_abs": float((fr16 - fr32).abs().max()),
        }
        f = sweep / "cases" / f"{c['name']}.safetensors"
        tensors = OrderedDict([("latents", lat32.float()), ("frames", fr32.to(torch.float16))])
        meta = {"case": json.dumps(c), "timesteps": json.dumps(ts)}
        write_st(f, tensors, meta)
        c.update(model=str(paths[c["variant"]].relative_to(fix)), file=str(f.relative_to(fix)), timesteps=ts,
                 latent_levels=levels, ref_err=ref_err, ref_err16=ref_err16)
        out_cases.append(c)
        print(f"  sweep {c['name']:<26} levels {levels}  diffusers f32 vs f64: latents {ref_err['latents_rel_l2']:.1e}, "
              f"frames max {ref_err['frames_max_abs'] * 255:.3f}/255; f16 vs f32: latents {ref_err16['latents_rel_l2']:.1e}, "
              f"frames max {ref_err16['frames_max_abs'] * 255:.2f}/255", flush=True)

    # every odd/even combination at every level below the lowest, for each variant's UNet depth
    for (variant, lvl), seen in sorted(coverage.items()):
        depth = max(l for (v, l) in coverage if v == variant)
        if variant == "base" and lvl < depth:
            assert seen == {(0, 0), (0, 1), (1, 0), (1, 1)}, (variant, lvl, seen)
    assert any(lv[-1] == (1, 1) for c in out_cases for lv in [c["latent_levels"]]), "no 1×1 bottom level"
    (sweep / "cases.json").write_text(json.dumps(out_cases, indent=1) + "\n")
    # the variants' own files; their symlinked components are tiny-t2v's, counted there
    files = sorted(p for p in sweep.rglob("*") if p.is_file() and not any((sweep / q).is_symlink() for q in p.relative_to(sweep).parents))
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(fix)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    print(f"sweep: {len(out_cases)} cases, {total / 2**20:.2f} MiB in {len(files)} files, digest {h.hexdigest()}")
    assert total < 4 * 2**20, "the sweep should stay a few MB"
    return sweep


if __name__ == "__main__":
    repo = HERE.parent.parent
    main(repo / "tests" / "fixtures")
