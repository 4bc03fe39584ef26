#!/usr/bin/env python3
"""Scheduler reference chains: tests/fixtures/schedulers.safetensors + schedulers.json, and
schedulers.wan.safetensors + schedulers.wan.json (UniPC, FlowMatchEuler; same layout).

    tools/reference/.venv/bin/python tools/reference/scheduler_fixtures.py [--wan-only | --options-only]

(or main(FIX) from make_fixtures.py; about 5 s). For every case a scheduler_config.json is
written to disk and loaded the way diffusers loads a pipeline's scheduler
(`<_class_name>.from_pretrained(dir)`); "load_as" cases then convert it the way users swap
schedulers (`DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`), so the Rust side
must reproduce from_config's key filtering too. Recorded per case:

  <case>.timesteps            scheduler.timesteps after set_timesteps(n) (int64, or float32 for Euler
                              and FlowMatchEuler)
  <case>.sigmas               scheduler.sigmas (DPM-Solver, Euler, UniPC, FlowMatchEuler; float32)
  <case>.sample               the chain's first sample: randn(SHAPE) * init_noise_sigma
  <case>.model_output         [n, *shape]: row i is a random "UNet output" for step i
  <case>.scaled               [n, *shape]: scale_model_input(sample_i, t_i) (Euler only; the
                              others return their input, which the script checks)
  <case>.prev                 [n, *shape]: step(model_output_i, t_i, sample_i).prev_sample,
                              which is sample_{i+1}
  <case>.add_noise.{original,noise,out}
                              add_noise(original, noise, timesteps[k:k+1]) on a fresh
                              set_timesteps(n) scheduler, with set_begin_index(k) where the class
                              has it (as VideoToVideoSDPipeline does); k in the JSON.
                              FlowMatchEuler: scale_noise(original, timesteps[k:k+1], noise)
  alphas_cumprod.<schedule>   the training schedule (float32), one per beta schedule

  spacing.<class>.<spacing>.<n>
                              timesteps only, for many step counts n

  unipc_solve2                [m, 5] float32 rows (r, b1, b2, rho0, rho1): torch.linalg.solve(
                              [[1, 1], [r, 1]], [b1, b2]) as UniPC's order-2 corrector calls it
                              (r near -1 as in real schedules, near +1, and spread out)
  flow.<group>.<n>.{timesteps,sigmas}
                              flow-matching schedules (UniPC with use_flow_sigmas, FlowMatchEuler)
                              for many step counts n

schedulers.json lists the cases (name, the config as written to scheduler_config.json, load_as,
num_inference_steps, init_noise_sigma, add_noise_step, shape), the spacing groups (prefix,
config, steps) and the flow groups (prefix, config, load_as, steps). DDIM runs with eta = 0.

Flow models (Wan): cases named wan_* write Wan's UniPC scheduler_config.json (WAN.md §2.1).
load_as FlowMatchEuler on a flow config is `FlowMatchEulerDiscreteScheduler.from_config(config,
shift=flow_shift)` (what `--scheduler euler` means on a flow model), load_as UniPC on a
FlowMatchEuler config passes use_flow_sigmas/flow_prediction/flow_shift=shift (`--scheduler
unipc` there); the Rust side resolves the same in schedulers::from_config. FlowMatchEuler has no
init_noise_sigma or scale_model_input (1.0 and the identity are recorded).
Options (issue 21): schedulers.options.{safetensors,json}, same layout, written by
main_options (`--options-only` writes only these). Its cases add "scheduler" (the t2v
--scheduler name, or null), "overrides" (the keyword arguments of from_config that name means,
e.g. use_karras_sigmas=True for dpm++-karras) and "noise_seed": for the stochastic schedulers
(sde-dpmsolver++, Euler ancestral) a second generator seeded with it draws the initial sample
(randn(shape) * init_noise_sigma) and then every step's noise (step(..., generator=it)), the
order a diffusers pipeline draws from its one generator; model outputs come from the case's
own generator. Cases may carry their own "shape" (thresholding uses a batch of two).
Deterministic: fixed generator seeds, one thread, float32 throughout (as the pipelines run).
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True
os.environ.setdefault("HF_HUB_OFFLINE", "1")
for k, v in {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "1"}.items():
    os.environ.setdefault(k, v)

import json
import pathlib
import tempfile
from collections import OrderedDict

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dumping import write_safetensors  # noqa: E402

SHAPE = (1, 4, 2, 2, 3)  # (B, C, F, h, w): small, but a real 5-D latent

# scheduler/scheduler_config.json of ali-vilab/text-to-video-ms-1.7b and cerspense/zeroscope_v2_576w
# (MODELS.md §2b), key for key: timestep_spacing is absent ("leading" for DDIM, "linspace" once
# converted to DPM-Solver or Euler), and skip_prk_steps is not a DDIM argument (ignored).
MS_CONFIG = OrderedDict(
    [
        ("_class_name", "DDIMScheduler"),
        ("_diffusers_version", "0.15.0.dev0"),
        ("beta_end", 0.012),
        ("beta_schedule", "scaled_linear"),
        ("beta_start", 0.00085),
        ("clip_sample", False),
        ("num_train_timesteps", 1000),
        ("prediction_type", "epsilon"),
        ("set_alpha_to_one", False),
        ("skip_prk_steps", True),
        ("steps_offset", 1),
        ("thresholding", False),
    ]
)

DDIM, DPM, EULER = "DDIMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler"
EULER_A, PNDM = "EulerAncestralDiscreteScheduler", "PNDMScheduler"
UNIPC, FME = "UniPCMultistepScheduler", "FlowMatchEulerDiscreteScheduler"

# scheduler/scheduler_config.json of the Wan 2.1 diffusers repos (WAN.md §2.1), key for key.
WAN_CONFIG = OrderedDict(
    [
        ("_class_name", UNIPC),
        ("_diffusers_version", "0.34.0.dev0"),
        ("beta_end", 0.02),
        ("beta_schedule", "linear"),
        ("beta_start", 0.0001),
        ("disable_corrector", []),
        ("dynamic_thresholding_ratio", 0.995),
        ("final_sigmas_type", "zero"),
        ("flow_shift", 3.0),
        ("lower_order_final", True),
        ("num_train_timesteps", 1000),
        ("predict_x0", True),
        ("prediction_type", "flow_prediction"),
        ("rescale_betas_zero_snr", False),
        ("sample_max_value", 1.0),
        ("solver_order", 2),
        ("solver_p", None),
        ("solver_type", "bh2"),
        ("steps_offset", 0),
        ("thresholding", False),
        ("timestep_spacing", "linspace"),
        ("trained_betas", None),
        ("use_beta_sigmas", False),
        ("use_exponential_sigmas", False),
        ("use_flow_sigmas", True),
        ("use_karras_sigmas", False),
    ]
)


def wan(**over) -> OrderedDict:
    c = OrderedDict(WAN_CONFIG)
    c.update(over)
    return c


def fme(**over) -> OrderedDict:
    """A FlowMatchEulerDiscreteScheduler config file (as the old Wan model_index pointed to)."""
    c = OrderedDict([("_class_name", FME), ("num_train_timesteps", 1000), ("shift", 3.0)])
    c.update(over)
    return c


def ms(**over) -> OrderedDict:
    c = OrderedDict(MS_CONFIG)
    c.update(over)
    return c


def own(cls: str, **over) -> OrderedDict:
    """A config file of class `cls` itself with the ms-1.7b betas (as a user's own file would be)."""
    c = OrderedDict([("_class_name", cls), ("beta_end", 0.012), ("beta_schedule", "scaled_linear"), ("beta_start", 0.00085),
                     ("num_train_timesteps", 1000)])
    c.update(over)
    return c


# (name, config file, load_as, num_inference_steps, add_noise step)
CASES = [
    # the shipped scheduler, as the pipeline runs it
    ("ddim_ms_50", ms(), None, 50, 10),
    ("ddim_ms_5", ms(), None, 5, 2),
    ("ddim_ms_2", ms(), None, 2, 1),
    ("ddim_linspace_5", ms(timestep_spacing="linspace"), None, 5, 1),
    ("ddim_trailing_5", ms(timestep_spacing="trailing"), None, 5, 1),
    ("ddim_trailing_vpred_7", ms(timestep_spacing="trailing", prediction_type="v_prediction"), None, 7, 3),
    ("ddim_sample_pred_4", ms(prediction_type="sample"), None, 4, 1),
    ("ddim_alpha_one_linear_3", ms(set_alpha_to_one=True, beta_schedule="linear", beta_start=0.0001, beta_end=0.02), None, 3, 0),
    # `scheduler: dpm++` on the shipped DDIM config (from_config keeps only DPM's own keys)
    ("dpm_ms_50", ms(), DPM, 50, 10),
    ("dpm_ms_25", ms(), DPM, 25, 5),
    ("dpm_ms_14", ms(), DPM, 14, 3),
    ("dpm_ms_5", ms(), DPM, 5, 2),
    ("dpm_ms_2", ms(), DPM, 2, 1),
    ("dpm_ms_1", ms(), DPM, 1, 0),
    ("dpm_leading_6", ms(timestep_spacing="leading"), DPM, 6, 2),
    ("dpm_trailing_6", ms(timestep_spacing="trailing"), DPM, 6, 2),
    ("dpm_vpred_6", ms(prediction_type="v_prediction"), DPM, 6, 2),
    # DPM-Solver's own config file, with non-default solver settings
    ("dpm_heun_sigma_min_20", own(DPM, solver_type="heun", final_sigmas_type="sigma_min"), None, 20, 4),
    ("dpm_order1_euler_final_4", own(DPM, solver_order=1, euler_at_final=True), None, 4, 1),
    ("dpm_no_lower_final_sample_5", own(DPM, lower_order_final=False, final_sigmas_type="sigma_min", prediction_type="sample"), None, 5, 1),
    ("dpm_linear_8", own(DPM, beta_schedule="linear", beta_start=0.0001, beta_end=0.02), None, 8, 2),
    ("dpm_lambda_clipped_6", own(DPM, lambda_min_clipped=-2.6), None, 6, 2),  # drops the noisiest timesteps
    # `scheduler: euler`
    ("euler_ms_25", ms(), EULER, 25, 5),
    ("euler_ms_5", ms(), EULER, 5, 2),
    ("euler_ms_2", ms(), EULER, 2, 1),
    ("euler_leading_6", ms(timestep_spacing="leading"), EULER, 6, 2),
    ("euler_trailing_6", ms(timestep_spacing="trailing"), EULER, 6, 2),
    ("euler_vpred_6", ms(prediction_type="v_prediction"), EULER, 6, 2),
    ("euler_sigma_min_sample_4", own(EULER, final_sigmas_type="sigma_min", prediction_type="sample"), None, 4, 1),
]

# schedulers.wan.*: the schedulers Wan brought (UniPC, FlowMatchEuler); same layout as above
WAN_CASES = [
    # Wan's UniPC (flow sigmas), as WanPipeline runs it: 480p (shift 3) and 720p (shift 5)
    ("wan_unipc_s3_1", wan(), None, 1, 0),
    ("wan_unipc_s3_2", wan(), None, 2, 1),
    ("wan_unipc_s3_3", wan(), None, 3, 1),
    ("wan_unipc_s3_6", wan(), None, 6, 2),
    ("wan_unipc_s3_50", wan(), None, 50, 10),
    ("wan_unipc_s5_1", wan(flow_shift=5.0), None, 1, 0),
    ("wan_unipc_s5_2", wan(flow_shift=5.0), None, 2, 1),
    ("wan_unipc_s5_3", wan(flow_shift=5.0), None, 3, 1),
    ("wan_unipc_s5_6", wan(flow_shift=5.0), None, 6, 2),
    ("wan_unipc_s5_50", wan(flow_shift=5.0), None, 50, 10),
    # UniPC variants on flow sigmas
    ("wan_unipc_bh1_sigma_min_6", wan(solver_type="bh1", final_sigmas_type="sigma_min"), None, 6, 2),
    ("wan_unipc_order1_5", wan(solver_order=1), None, 5, 1),
    ("wan_unipc_sigma_min_6", wan(final_sigmas_type="sigma_min"), None, 6, 2),
    ("wan_unipc_no_corrector_7", wan(disable_corrector=[1, 3]), None, 7, 2),
    ("wan_unipc_terminal_6", wan(shift_terminal=0.1, flow_shift=16.0), None, 6, 2),
    ("wan_unipc_no_lower_final_sigma_min_5", wan(lower_order_final=False, final_sigmas_type="sigma_min"), None, 5, 1),
    # (bh1, predict_x0 off, lower_order_final off with final sigma zero: NaN in diffusers, refused)
    # `scheduler: unipc` on a noise-prediction model (from_config keeps only UniPC's keys)
    ("unipc_ms_25", ms(), UNIPC, 25, 5),
    ("unipc_ms_6", ms(), UNIPC, 6, 2),
    ("unipc_ms_1", ms(), UNIPC, 1, 0),
    ("unipc_vpred_6", ms(prediction_type="v_prediction"), UNIPC, 6, 2),
    ("unipc_leading_bh1_7", own(UNIPC, timestep_spacing="leading", steps_offset=1, solver_type="bh1", final_sigmas_type="sigma_min"), None, 7, 2),
    ("unipc_trailing_sigma_min_6", own(UNIPC, timestep_spacing="trailing", final_sigmas_type="sigma_min"), None, 6, 2),
    ("unipc_sample_order1_4", own(UNIPC, prediction_type="sample", solver_order=1), None, 4, 1),
    ("unipc_noise_state_sigma_min_6", own(UNIPC, predict_x0=False, final_sigmas_type="sigma_min"), None, 6, 2),
    ("unipc_noise_state_vpred_5", own(UNIPC, predict_x0=False, prediction_type="v_prediction", final_sigmas_type="sigma_min"), None, 5, 1),
    # FlowMatchEuler: its own file, and `scheduler: euler` on Wan's UniPC file (shift = flow_shift)
    ("fme_s3_1", fme(), None, 1, 0),
    ("fme_s3_2", fme(), None, 2, 1),
    ("fme_s3_6", fme(), None, 6, 2),
    ("fme_s3_50", fme(), None, 50, 10),
    ("fme_s7_6", fme(shift=7.0), None, 6, 2),  # diffusers' tiny Wan pipeline test
    ("fme_terminal_6", fme(shift_terminal=0.1), None, 6, 2),
    ("fme_invert_4", fme(invert_sigmas=True), None, 4, 1),
    ("wan_euler_s3_6", wan(), FME, 6, 2),
    ("wan_euler_s5_50", wan(flow_shift=5.0), FME, 50, 10),
    # `scheduler: unipc` on a FlowMatchEuler file: UniPC on flow sigmas with its shift
    ("fme_as_unipc_6", fme(shift=5.0), UNIPC, 6, 2),
]

FLOW_STEPS = [1, 2, 3, 6, 7, 13, 20, 33, 50, 61, 100]
# (prefix, config, load_as): schedules only, for many step counts. With shift_terminal, one step
# is left out: its only sigma is 1, and the stretch divides 0 by 0 (NaN; refused in Rust).
FLOW_GROUPS = [
    ("unipc.s1", wan(flow_shift=1.0), None),
    ("unipc.s3", wan(), None),
    ("unipc.s5", wan(flow_shift=5.0), None),
    ("unipc.s12", wan(flow_shift=12.0), None),
    ("unipc.s16", wan(flow_shift=16.0), None),
    ("unipc.s3_sigma_min", wan(final_sigmas_type="sigma_min"), None),
    ("unipc.s16_terminal", wan(flow_shift=16.0, shift_terminal=0.05), None),
    ("fme.s1", fme(shift=1.0), None),
    ("fme.s3", fme(), None),
    ("fme.s5", fme(shift=5.0), None),
    ("fme.s7", fme(shift=7.0), None),
    ("fme.s3_3", fme(shift=3.3), None),  # a shift that float32 does not hold exactly
    ("fme.s3_terminal", fme(shift_terminal=0.1), None),
    ("fme.s3_invert", fme(invert_sigmas=True), None),
    ("fme.wan_s5", wan(flow_shift=5.0), FME),
]

# timestep lists only (cheap): every class × spacing × awkward step counts
SPACING_STEPS = [1, 2, 3, 7, 10, 13, 20, 30, 33, 49, 50, 61, 99, 100, 333]  # 61: trailing gives 62 steps


def load(config: dict, load_as: str | None, overrides: dict | None = None):
    import diffusers

    with tempfile.TemporaryDirectory() as td:
        (pathlib.Path(td) / "scheduler_config.json").write_text(json.dumps(config, indent=2))
        base = getattr(diffusers, config["_class_name"]).from_pretrained(td)
    if overrides:
        return getattr(diffusers, load_as or config["_class_name"]).from_config(base.config, **overrides)
    if not load_as:
        return base
    cls = getattr(diffusers, load_as)
    flow = base.config.get("use_flow_sigmas") or base.config.get("prediction_type") == "flow_prediction"
    if load_as == FME and flow:
        return cls.from_config(base.config, shift=base.config.flow_shift)
    if load_as in (UNIPC, DPM) and config["_class_name"] == FME:
        return cls.from_config(base.config, use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=base.config.shift)
    return cls.from_config(base.config)


def run_case(name, config, load_as, n, k, tensors, seed, overrides=None, noise_seed=None, shape=SHAPE) -> dict:
    s = load(config, load_as, overrides)
    s.set_timesteps(n)
    cls = type(s).__name__
    gen = torch.Generator().manual_seed(seed)
    tensors[f"{name}.timesteps"] = s.timesteps.clone()
    if hasattr(s, "sigmas"):
        tensors[f"{name}.sigmas"] = s.sigmas.clone()
    sigma0 = float(getattr(s, "init_noise_sigma", 1.0))  # FlowMatchEuler has none (pipelines use 1)
    # A stochastic chain draws its start and then each step's noise from one generator, as a
    # pipeline does (prepare_latents, then scheduler.step(..., generator=generator)).
    noise_gen = torch.Generator().manual_seed(noise_seed) if noise_seed is not None else None
    x = torch.randn(shape, generator=noise_gen or gen) * getattr(s, "init_noise_sigma", 1.0)
    tensors[f"{name}.sample"] = x
    outs, scaled, prev = [], [], []
    if cls in (UNIPC, FME):
        s.set_begin_index(0)  # as WanPipeline does; the same step indices as without
    for t in s.timesteps:
        mo = torch.randn(shape, generator=gen)
        scaled.append(s.scale_model_input(x, t) if hasattr(s, "scale_model_input") else x)
        if cls not in (EULER, EULER_A):
            assert torch.equal(scaled[-1], x)
        kw = {"eta": 0.0} if cls == DDIM else {}
        if noise_gen is not None:
            kw["generator"] = noise_gen
        x = s.step(mo, t, x, **kw).prev_sample
        assert x.dtype == torch.float32 and torch.isfinite(x).all(), (name, len(prev))
        outs.append(mo)
        prev.append(x)
    tensors[f"{name}.model_output"] = torch.stack(outs)
    tensors[f"{name}.prev"] = torch.stack(prev)
    if cls in (EULER, EULER_A):
        tensors[f"{name}.scaled"] = torch.stack(scaled)
    # add_noise on a fresh schedule, as an img2img pipeline calls it before its first step
    s = load(config, load_as, overrides)
    s.set_timesteps(n)
    orig, noise = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    add = s.add_noise if cls != FME else (lambda o, n, t: s.scale_noise(o, t, n))
    plain = add(orig, noise, s.timesteps[k : k + 1])
    if hasattr(s, "set_begin_index"):
        s.set_begin_index(k)
    out = add(orig, noise, s.timesteps[k : k + 1])
    assert torch.equal(out, plain), f"{name}: add_noise depends on begin_index"
    tensors[f"{name}.add_noise.original"] = orig
    tensors[f"{name}.add_noise.noise"] = noise
    tensors[f"{name}.add_noise.out"] = out
    return OrderedDict(
        [("name", name), ("class", cls), ("config", config), ("load_as", load_as), ("num_inference_steps", n),
         ("init_noise_sigma", sigma0), ("add_noise_step", k), ("shape", list(shape))]
    )


def main(out_dir: pathlib.Path) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_grad_enabled(False)
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    tensors: OrderedDict = OrderedDict()
    cases = [run_case(*c, tensors, seed=100 + i) for i, c in enumerate(CASES)]

    spacing = []
    for cls in (DDIM, DPM, EULER):
        for sp in ("leading", "linspace", "trailing"):
            cfg = ms(timestep_spacing=sp) if cls == DDIM else own(cls, timestep_spacing=sp, steps_offset=1)
            s = load(cfg, None)
            prefix = f"spacing.{cls}.{sp}"
            for n in SPACING_STEPS:
                s.set_timesteps(n)
                tensors[f"{prefix}.{n}"] = s.timesteps.clone()
            spacing.append(OrderedDict([("prefix", prefix), ("config", cfg), ("steps", SPACING_STEPS)]))

    for sched in ("scaled_linear", "linear"):
        cfg = ms() if sched == "scaled_linear" else ms(beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
        tensors[f"alphas_cumprod.{sched}"] = load(cfg, None).alphas_cumprod.clone()

    out_dir.mkdir(parents=True, exist_ok=True)
    st = out_dir / "schedulers.safetensors"
    write_safetensors(st, tensors, {"source": "tools/reference/scheduler_fixtures.py"})
    side = OrderedDict([("shape", list(SHAPE)), ("cases", cases), ("spacing", spacing)])
    (out_dir / "schedulers.json").write_text(json.dumps(side, indent=1) + "\n")
    print(f"schedulers: {len(cases)} chains, {len(spacing)} timestep lists; {st.stat().st_size} + "
          f"{(out_dir / 'schedulers.json').stat().st_size} bytes")
    main_wan(out_dir)


def main_wan(out_dir: pathlib.Path) -> None:
    """schedulers.wan.*: UniPC and FlowMatchEuler chains, UniPC's timestep spacings, flow schedules.

    A separate file so that adding them leaves schedulers.* alone: its float32 values are not
    reproduced bit for bit by every torch build (a few sigmas and chain values differ in the
    last bit on some machines), while the Rust tests compare its sigmas exactly.
    """
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_grad_enabled(False)
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    tensors: OrderedDict = OrderedDict()
    cases = [run_case(*c, tensors, seed=500 + i) for i, c in enumerate(WAN_CASES)]

    spacing = []
    for sp in ("leading", "linspace", "trailing"):
        cfg = own(UNIPC, timestep_spacing=sp, steps_offset=1)
        s = load(cfg, None)
        prefix = f"spacing.{UNIPC}.{sp}"
        for n in SPACING_STEPS:
            s.set_timesteps(n)
            tensors[f"{prefix}.{n}"] = s.timesteps.clone()
        spacing.append(OrderedDict([("prefix", prefix), ("config", cfg), ("steps", SPACING_STEPS)]))

    flow = []
    for prefix, cfg, load_as in FLOW_GROUPS:
        s = load(cfg, load_as)
        steps = [n for n in FLOW_STEPS if n > 1 or not cfg.get("shift_terminal")]
        for n in steps:
            s.set_timesteps(n)
            tensors[f"flow.{prefix}.{n}.timesteps"] = s.timesteps.clone()
            tensors[f"flow.{prefix}.{n}.sigmas"] = s.sigmas.clone()
        flow.append(OrderedDict([("prefix", prefix), ("class", type(s).__name__), ("config", cfg), ("load_as", load_as),
                                 ("steps", steps)]))

    gen = torch.Generator().manual_seed(7)
    rows = []
    for spread in (0.5, 1e-2, 1e-4, 1e-6):
        for sign in (-1.0, 1.0):
            r = sign * (1.0 + spread * torch.randn(64, generator=gen))
            b = torch.rand(64, 2, generator=gen) * 2 - 1
            for i in range(64):
                rks = torch.stack([r[i], torch.ones(())])
                R = torch.stack([torch.pow(rks, 0), torch.pow(rks, 1)])
                if bool(R[1, 0] == 1):
                    continue  # singular
                rho = torch.linalg.solve(R, b[i])
                rows.append(torch.stack([r[i], b[i, 0], b[i, 1], rho[0], rho[1]]))
    tensors["unipc_solve2"] = torch.stack(rows)

    out_dir.mkdir(parents=True, exist_ok=True)
    st = out_dir / "schedulers.wan.safetensors"
    write_safetensors(st, tensors, {"source": "tools/reference/scheduler_fixtures.py (main_wan)"})
    side = OrderedDict([("shape", list(SHAPE)), ("cases", cases), ("spacing", spacing), ("flow", flow)])
    (out_dir / "schedulers.wan.json").write_text(json.dumps(side, indent=1) + "\n")
    print(f"schedulers.wan: {len(cases)} chains, {len(spacing)} timestep lists, {len(flow)} flow schedules; "
          f"{st.stat().st_size} + {(out_dir / 'schedulers.wan.json').stat().st_size} bytes")
    main_options(out_dir)


# Stable Diffusion 1.x's scheduler/scheduler_config.json (PNDM, no clip_sample key): run as DDIM
# it clips x̂₀ to [-1, 1], DDIM's default (the case of issue 21).
SD_CONFIG = OrderedDict(
    [("_class_name", PNDM), ("_diffusers_version", "0.6.0"), ("beta_end", 0.012), ("beta_schedule", "scaled_linear"),
     ("beta_start", 0.00085), ("num_train_timesteps", 1000), ("set_alpha_to_one", False), ("skip_prk_steps", True),
     ("steps_offset", 1), ("trained_betas", None)]
)
SHAPE2 = (2, 4, 2, 2, 3)  # a batch of two: thresholding's quantile is per sample

# (name, config file, load_as, t2v --scheduler name, from_config overrides, n, add_noise step,
#  noise seed (stochastic) or None, shape)
KARRAS, SDE = {"use_karras_sigmas": True}, {"algorithm_type": "sde-dpmsolver++"}
OPTION_CASES = [
    # DDIM's x̂₀ clipping and thresholding
    ("ddim_sd_clip_default_5", SD_CONFIG, DDIM, "ddim", None, 5, 2, None, SHAPE),
    ("ddim_sd_clip_default_50", SD_CONFIG, DDIM, "ddim", None, 50, 10, None, SHAPE),
    ("ddim_clip_range_vpred_6", own(DDIM, clip_sample=True, clip_sample_range=1.5, prediction_type="v_prediction"), None, None, None, 6, 2, None, SHAPE),
    ("ddim_clip_sample_pred_4", own(DDIM, clip_sample=True, clip_sample_range=0.8, prediction_type="sample"), None, None, None, 4, 1, None, SHAPE),
    ("ddim_threshold_6", own(DDIM, thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=2.5), None, None, None, 6, 2, None, SHAPE2),
    ("ddim_threshold_default_vpred_5", own(DDIM, thresholding=True, prediction_type="v_prediction"), None, None, None, 5, 1, None, SHAPE2),
    # zero terminal SNR (v-prediction: ᾱ_T = 0 makes ε-prediction divide by zero)
    ("ddim_zero_snr_trailing_6", own(DDIM, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction", clip_sample=False), None, None, None, 6, 2, None, SHAPE),
    ("ddim_zero_snr_linspace_clip_5", own(DDIM, rescale_betas_zero_snr=True, timestep_spacing="linspace", prediction_type="v_prediction"), None, None, None, 5, 1, None, SHAPE),
    ("dpm_zero_snr_trailing_6", own(DPM, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction"), None, None, None, 6, 2, None, SHAPE),
    # (Euler's first step from the terminal σ = 4096 cancels x·(1 + dt/σ) ≈ 0.0023·x in float32:
    # torch's own rounding there is ~3e-5 relative, above the comparison's bound, so the Euler
    # zero-SNR chains use leading spacing, which starts below it; the schedules are still checked.)
    ("euler_zero_snr_leading_6", own(EULER, rescale_betas_zero_snr=True, timestep_spacing="leading", steps_offset=1, prediction_type="v_prediction"), None, None, None, 6, 2, None, SHAPE),
    ("unipc_zero_snr_trailing_6", own(UNIPC, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction"), None, None, None, 6, 2, None, SHAPE),
    # DPM-Solver++ sigma schedules (DPM++ 2M Karras) and final steps
    ("dpm_karras_25", ms(), DPM, "dpm++-karras", KARRAS, 25, 5, None, SHAPE),
    ("dpm_karras_6", ms(), DPM, "dpm++-karras", KARRAS, 6, 2, None, SHAPE),
    ("dpm_karras_heun_sigma_min_8", own(DPM, use_karras_sigmas=True, solver_type="heun", final_sigmas_type="sigma_min"), None, None, None, 8, 2, None, SHAPE),
    ("dpm_karras_no_lower_final_20", own(DPM, use_karras_sigmas=True, lower_order_final=False, final_sigmas_type="sigma_min"), None, None, None, 20, 4, None, SHAPE),
    ("dpm_exponential_10", own(DPM, use_exponential_sigmas=True), None, None, None, 10, 3, None, SHAPE),
    ("dpm_exponential_vpred_sigma_min_7", own(DPM, use_exponential_sigmas=True, prediction_type="v_prediction", final_sigmas_type="sigma_min"), None, None, None, 7, 2, None, SHAPE),
    ("dpm_lu_lambdas_10", own(DPM, use_lu_lambdas=True), None, None, None, 10, 3, None, SHAPE),
    ("dpm_lu_lambdas_heun_sigma_min_7", own(DPM, use_lu_lambdas=True, solver_type="heun", final_sigmas_type="sigma_min"), None, None, None, 7, 2, None, SHAPE),
    ("dpm_threshold_6", own(DPM, thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=2.5), None, None, None, 6, 2, None, SHAPE2),
    # SDE-DPM-Solver++ (noise from the torch generator stream)
    ("dpm_sde_10", ms(), DPM, "dpm++-sde", SDE, 10, 3, 7001, SHAPE),
    ("dpm_sde_25", ms(), DPM, "dpm++-sde", SDE, 25, 5, 7002, SHAPE),
    ("dpm_sde_karras_heun_8", own(DPM, algorithm_type="sde-dpmsolver++", use_karras_sigmas=True, solver_type="heun"), None, None, None, 8, 2, 7003, SHAPE),
    ("dpm_sde_order1_5", own(DPM, algorithm_type="sde-dpmsolver++", solver_order=1), None, None, None, 5, 1, 7004, SHAPE),
    ("dpm_sde_euler_final_sigma_min_16", own(DPM, algorithm_type="sde-dpmsolver++", euler_at_final=True, final_sigmas_type="sigma_min", lower_order_final=False), None, None, None, 16, 3, 7005, SHAPE2),
    # Euler: Karras and exponential sigmas; Euler ancestral (noise from the torch stream)
    ("euler_karras_10", own(EULER, use_karras_sigmas=True), None, None, None, 10, 3, None, SHAPE),
    ("euler_karras_sigma_min_vpred_6", own(EULER, use_karras_sigmas=True, final_sigmas_type="sigma_min", prediction_type="v_prediction"), None, None, None, 6, 2, None, SHAPE),
    ("euler_exponential_8", own(EULER, use_exponential_sigmas=True), None, None, None, 8, 2, None, SHAPE),
    ("euler_a_ms_10", ms(), EULER_A, "euler-a", None, 10, 3, 7101, SHAPE),
    ("euler_a_ms_25", ms(), EULER_A, "euler-a", None, 25, 5, 7102, SHAPE2),
    ("euler_a_trailing_vpred_6", own(EULER_A, timestep_spacing="trailing", prediction_type="v_prediction"), None, None, None, 6, 2, 7103, SHAPE),
    ("euler_a_leading_5", own(EULER_A, timestep_spacing="leading", steps_offset=1), None, None, None, 5, 1, 7104, SHAPE),
    # UniPC on Karras / exponential sigmas (beta schedules; refused with flow sigmas)
    ("unipc_karras_10", ms(), UNIPC, None, KARRAS, 10, 3, None, SHAPE),
    ("unipc_karras_bh1_sigma_min_8", own(UNIPC, use_karras_sigmas=True, solver_type="bh1", final_sigmas_type="sigma_min"), None, None, None, 8, 2, None, SHAPE),
    ("unipc_exponential_vpred_7", own(UNIPC, use_exponential_sigmas=True, prediction_type="v_prediction"), None, None, None, 7, 2, None, SHAPE),
    ("unipc_threshold_bh1_6", own(UNIPC, thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5, solver_type="bh1", final_sigmas_type="sigma_min"), None, None, None, 6, 2, None, SHAPE2),
    # the Glide cosine beta schedule and explicit trained_betas
    ("ddim_cosine_5", own(DDIM, beta_schedule="squaredcos_cap_v2", clip_sample=False), None, None, None, 5, 2, None, SHAPE),
    ("dpm_cosine_6", own(DPM, beta_schedule="squaredcos_cap_v2"), None, None, None, 6, 2, None, SHAPE),
    ("euler_cosine_6", own(EULER, beta_schedule="squaredcos_cap_v2"), None, None, None, 6, 2, None, SHAPE),
    ("ddim_trained_betas_4", own(DDIM, num_train_timesteps=100, trained_betas=[0.0005 + 0.0002 * i for i in range(100)], clip_sample=False), None, None, None, 4, 1, None, SHAPE),
    # PNDM: PLMS as Stable Diffusion ships it, and with the Runge-Kutta warm-up (skip_prk_steps
    # false, the class default: n + 9 evaluations)
    ("pndm_plms_sd_8", SD_CONFIG, None, None, None, 8, 2, None, SHAPE),
    ("pndm_prk_sd_10", OrderedDict(SD_CONFIG, skip_prk_steps=False), None, None, None, 10, 3, None, SHAPE),
    ("pndm_prk_default_6", own(PNDM), None, None, None, 6, 2, None, SHAPE),
    ("pndm_prk_vpred_alpha_one_4", own(PNDM, prediction_type="v_prediction", set_alpha_to_one=True, steps_offset=1), None, None, None, 4, 1, None, SHAPE2),
    ("euler_a_zero_snr_leading_6", own(EULER_A, rescale_betas_zero_snr=True, timestep_spacing="leading", steps_offset=1, prediction_type="v_prediction"), None, None, None, 6, 2, 7105, SHAPE),
    # DPM-Solver++ on Wan's flow sigmas (`dpm++` on a Wan folder: from_config keeps
    # use_flow_sigmas / flow_prediction / flow_shift), and on a FlowMatchEuler file (its shift)
    ("dpm_wan_s3_1", wan(), DPM, "dpm++", None, 1, 0, None, SHAPE),
    ("dpm_wan_s3_6", wan(), DPM, "dpm++", None, 6, 2, None, SHAPE),
    ("dpm_wan_s5_50", wan(flow_shift=5.0), DPM, "dpm++", None, 50, 10, None, SHAPE),
    ("dpm_wan_order1_5", wan(solver_order=1), DPM, "dpm++", None, 5, 1, None, SHAPE),
    # (UniPC registers a file's "heun" as bh2 when it loads it, and DPM-Solver reads bh2 as
    # midpoint: what from_config hands over is the loaded config, not the file)
    ("dpm_wan_file_heun_is_midpoint_sigma_min_7", wan(solver_type="heun", final_sigmas_type="sigma_min"), DPM, "dpm++", None, 7, 2, None, SHAPE),
    ("dpm_file_bh1_unipc_7", own(DPM, solver_type="bh1"), UNIPC, "unipc", None, 7, 2, None, SHAPE),
    ("dpm_wan_no_lower_final_sigma_min_20", wan(lower_order_final=False, final_sigmas_type="sigma_min"), DPM, "dpm++", None, 20, 4, None, SHAPE),
    ("dpm_wan_euler_at_final_sigma_min_8", wan(euler_at_final=True, final_sigmas_type="sigma_min", flow_shift=5.0), DPM, "dpm++", None, 8, 2, None, SHAPE),
    ("dpm_fme_s5_6", fme(shift=5.0), DPM, "dpm++", None, 6, 2, None, SHAPE),
    # EDM-style timesteps 0.25·ln σ for the denoiser (v-prediction only; otherwise unchanged)
    ("euler_continuous_vpred_karras_7", own(EULER, timestep_type="continuous", prediction_type="v_prediction", use_karras_sigmas=True), None, None, None, 7, 2, None, SHAPE),
    ("euler_continuous_vpred_trailing_5", own(EULER, timestep_type="continuous", prediction_type="v_prediction", timestep_spacing="trailing"), None, None, None, 5, 1, None, SHAPE),
    ("euler_continuous_eps_6", own(EULER, timestep_type="continuous"), None, None, None, 6, 2, None, SHAPE),
    # log-linear sigmas (torch.linspace in float32: n + 1 of them, so the last step lands on σ_min)
    ("euler_log_linear_8", own(EULER, interpolation_type="log_linear"), None, None, None, 8, 2, None, SHAPE),
    ("euler_log_linear_leading_vpred_25", own(EULER, interpolation_type="log_linear", timestep_spacing="leading", steps_offset=1, prediction_type="v_prediction"), None, None, None, 25, 5, None, SHAPE),
    ("euler_log_linear_karras_sigma_min_6", own(EULER, interpolation_type="log_linear", use_karras_sigmas=True, final_sigmas_type="sigma_min"), None, None, None, 6, 2, None, SHAPE),
    # DPM-Solver++ third order (lower orders while the history fills, lower_order_second near the end)
    ("dpm_order3_25", own(DPM, solver_order=3), None, None, None, 25, 5, None, SHAPE),
    ("dpm_order3_10", own(DPM, solver_order=3), None, None, None, 10, 3, None, SHAPE),
    ("dpm_order3_karras_6", own(DPM, solver_order=3, use_karras_sigmas=True), None, None, None, 6, 2, None, SHAPE),
    ("dpm_order3_no_lower_final_sigma_min_20", own(DPM, solver_order=3, final_sigmas_type="sigma_min", lower_order_final=False), None, None, None, 20, 4, None, SHAPE),
    ("dpm_order3_vpred_heun_16", own(DPM, solver_order=3, prediction_type="v_prediction", solver_type="heun"), None, None, None, 16, 3, None, SHAPE),
    ("dpm_order3_sde_12", own(DPM, solver_order=3, algorithm_type="sde-dpmsolver++"), None, None, None, 12, 3, 7006, SHAPE),
    ("dpm_order3_sde_no_lower_final_sigma_min_20", own(DPM, solver_order=3, algorithm_type="sde-dpmsolver++", lower_order_final=False, final_sigmas_type="sigma_min"), None, None, None, 20, 4, 7007, SHAPE2),
    ("dpm_wan_order3_8", wan(solver_order=3), DPM, "dpm++", None, 8, 2, None, SHAPE),
    # UniPC third order (UniP-3 with a 2×2 solve, UniC-3 with a 3×3 one)
    ("unipc_order3_10", own(UNIPC, solver_order=3), None, None, None, 10, 3, None, SHAPE),
    ("unipc_order3_ms_25", ms(), UNIPC, None, {"solver_order": 3}, 25, 5, None, SHAPE),
    ("unipc_order3_bh1_sigma_min_8", own(UNIPC, solver_order=3, solver_type="bh1", final_sigmas_type="sigma_min"), None, None, None, 8, 2, None, SHAPE),
    ("unipc_order3_no_lower_final_sigma_min_12", own(UNIPC, solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min"), None, None, None, 12, 3, None, SHAPE),
    ("unipc_order3_vpred_7", own(UNIPC, solver_order=3, prediction_type="v_prediction"), None, None, None, 7, 2, None, SHAPE),
    ("unipc_order3_noise_state_sigma_min_8", own(UNIPC, solver_order=3, predict_x0=False, final_sigmas_type="sigma_min"), None, None, None, 8, 2, None, SHAPE),
    ("unipc_wan_order3_10", wan(solver_order=3), None, None, None, 10, 3, None, SHAPE),
    ("unipc_wan_order3_no_corrector_9", wan(solver_order=3, disable_corrector=[2, 4], flow_shift=5.0), None, None, None, 9, 2, None, SHAPE),
    # UniPC's Karras sigmas on a flow model: the beta schedule's, mapped to σ/(σ + 1)
    ("unipc_wan_karras_8", wan(use_karras_sigmas=True), None, None, None, 8, 2, None, SHAPE),
    ("unipc_wan_karras_sigma_min_bh1_6", wan(use_karras_sigmas=True, final_sigmas_type="sigma_min", solver_type="bh1"), None, None, None, 6, 2, None, SHAPE),
    ("unipc_wan_karras_bounds_order3_10", wan(use_karras_sigmas=True, sigma_min=0.05, sigma_max=20.0, solver_order=3), None, None, None, 10, 3, None, SHAPE),
    # beta sigmas (scipy.stats.beta.ppf, Beta(0.6, 0.6)) in every class that has them
    ("euler_beta_10", own(EULER, use_beta_sigmas=True), None, None, None, 10, 3, None, SHAPE),
    ("euler_beta_2", own(EULER, use_beta_sigmas=True), None, None, None, 2, 0, None, SHAPE),
    ("euler_beta_bounds_vpred_7", own(EULER, use_beta_sigmas=True, sigma_min=0.1, sigma_max=10.0, prediction_type="v_prediction"), None, None, None, 7, 2, None, SHAPE),
    ("dpm_beta_25", own(DPM, use_beta_sigmas=True), None, None, None, 25, 5, None, SHAPE),
    ("dpm_beta_sde_heun_8", own(DPM, use_beta_sigmas=True, algorithm_type="sde-dpmsolver++", solver_type="heun"), None, None, None, 8, 2, 7010, SHAPE),
    ("unipc_beta_sigma_min_12", own(UNIPC, use_beta_sigmas=True, final_sigmas_type="sigma_min"), None, None, None, 12, 3, None, SHAPE),
    ("fme_beta_6", fme(use_beta_sigmas=True), None, None, None, 6, 2, None, SHAPE),
    ("fme_beta_shift5_50", fme(shift=5.0, use_beta_sigmas=True), None, None, None, 50, 10, None, SHAPE),
    # the noise-prediction DPM-Solver (algorithm_type dpmsolver / sde-dpmsolver, deprecated but run)
    ("dpm_noise_sigma_min_10", own(DPM, algorithm_type="dpmsolver", final_sigmas_type="sigma_min"), None, None, None, 10, 3, None, SHAPE),
    ("dpm_noise_heun_vpred_sigma_min_8", own(DPM, algorithm_type="dpmsolver", solver_type="heun", prediction_type="v_prediction", final_sigmas_type="sigma_min"), None, None, None, 8, 2, None, SHAPE),
    ("dpm_noise_order3_sigma_min_20", own(DPM, algorithm_type="dpmsolver", solver_order=3, final_sigmas_type="sigma_min"), None, None, None, 20, 4, None, SHAPE),
    ("dpm_noise_threshold_sample_sigma_min_6", own(DPM, algorithm_type="dpmsolver", prediction_type="sample", thresholding=True, sample_max_value=2.0, dynamic_thresholding_ratio=0.9, final_sigmas_type="sigma_min"), None, None, None, 6, 2, None, SHAPE2),
    ("dpm_sde_noise_sigma_min_10", own(DPM, algorithm_type="sde-dpmsolver", final_sigmas_type="sigma_min"), None, None, None, 10, 3, 7008, SHAPE),
    ("dpm_sde_noise_heun_karras_sigma_min_8", own(DPM, algorithm_type="sde-dpmsolver", solver_type="heun", use_karras_sigmas=True, final_sigmas_type="sigma_min"), None, None, None, 8, 2, 7009, SHAPE),
]


def main_options(out_dir: pathlib.Path) -> None:
    """schedulers.options.*: the options of issue 21 (see the module docstring)."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_grad_enabled(False)
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    tensors: OrderedDict = OrderedDict()
    cases = []
    for i, (name, cfg, load_as, user, over, n, k, noise_seed, shape) in enumerate(OPTION_CASES):
        c = run_case(name, cfg, load_as, n, k, tensors, seed=900 + i, overrides=over, noise_seed=noise_seed, shape=shape)
        c["scheduler"], c["overrides"], c["noise_seed"] = user, over, noise_seed
        cases.append(c)

    spacing = []
    for cls, skip in ((PNDM, True), (PNDM, False), (EULER_A, True)):
        for sp in ("leading", "linspace", "trailing"):
            if not skip and sp != "leading":
                continue  # PRK's half-way points pass t = 999 there: diffusers indexes out of range
            cfg = own(cls, timestep_spacing=sp, steps_offset=1, skip_prk_steps=skip)
            s = load(cfg, None)
            prefix = f"spacing.{cls}.{sp}" + ("" if skip else ".prk")
            steps = [n for n in SPACING_STEPS if skip or n >= 4]
            for n in steps:
                s.set_timesteps(n)
                tensors[f"{prefix}.{n}"] = s.timesteps.clone()
            spacing.append(OrderedDict([("prefix", prefix), ("config", cfg), ("steps", steps)]))

    # the zero-terminal-SNR training schedules (DDIM keeps ᾱ_T = 0; the sigma classes 2^-24)
    for cls in (DDIM, DPM):
        cfg = own(cls, rescale_betas_zero_snr=True)
        tensors[f"alphas_cumprod.zero_snr.{cls}"] = load(cfg, None).alphas_cumprod.clone()

    out_dir.mkdir(parents=True, exist_ok=True)
    st = out_dir / "schedulers.options.safetensors"
    write_safetensors(st, tensors, {"source": "tools/reference/scheduler_fixtures.py (main_options)"})
    side = OrderedDict([("cases", cases), ("spacing", spacing)])
    (out_dir / "schedulers.options.json").write_text(json.dumps(side, indent=1) + "\n")
    print(f"schedulers.options: {len(cases)} chains, {len(spacing)} timestep lists; {st.stat().st_size} + "
          f"{(out_dir / 'schedulers.options.json').stat().st_size} bytes")


if __name__ == "__main__":
    if "--options-only" in sys.argv[1:]:
        main_options(HERE.parent.parent / "tests" / "fixtures")
        sys.exit(0)
    # --wan-only: only schedulers.wan.* (leaves schedulers.* as committed)
    (main_wan if "--wan-only" in sys.argv[1:] else main)(HERE.parent.parent / "tests" / "fixtures")
