"""Tiny configs with the real block types, and a deterministic randomisation of every parameter.

Fresh diffusers modules hide bugs: TemporalConvLayer.conv4 is zero-initialised and norm
gains/biases start at 1/0. randomize() gives every parameter a random value instead:
  conv / linear weights  N(0,1) * gain / sqrt(fan_in)   (fan_in = in_channels * kernel size)
  biases                 0.1 * N(0,1)
  norm gains             1 + 0.2 * N(0,1)   (GroupNorm, LayerNorm)
  norm biases            0.1 * N(0,1)
  embedding tables       0.5 * N(0,1)
Parameters are visited in named_parameters() order with one torch.Generator per model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    block_out_channels=(8, 16, 16, 16),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=4,
    norm_eps=1e-5,
    cross_attention_dim=8,
    attention_head_dim=4,  # diffusers' naming quirk: this is the per-head width; heads = C / 4
)

TEXT_ENCODER_CONFIG = dict(
    vocab_size=49408,
    hidden_size=8,
    intermediate_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=77,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    projection_dim=8,
    attention_dropout=0.0,
    bos_token_id=0,  # placeholder ids as in the ms-1.7b / SD 2.x configs (real ids: 49406/49407)
    eos_token_id=2,
    pad_token_id=1,
)

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(8, 16, 16, 16),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=4,
    sample_size=32,
    scaling_factor=0.18215,
)

# scheduler/scheduler_config.json of ali-vilab/text-to-video-ms-1.7b (MODELS.md §2b).
# "skip_prk_steps" is not a DDIMScheduler argument: from_config ignores it (as it does for the
# real file), so the saved config lacks it and spells out every DDIM default instead.
SCHEDULER_CONFIG = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    prediction_type="epsilon",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    skip_prk_steps=True,
    thresholding=False,
)

NORM_TYPES = (nn.GroupNorm, nn.LayerNorm)


@torch.no_grad()
def randomize(model: nn.Module, seed: int, gain: float = 1.2, gains: dict | None = None) -> None:
    """Overwrite every parameter with random values (see module docstring).

    gains: optional {module path: gain} overrides for conv/linear weights.
    """
    gains = gains or {}
    g = torch.Generator().manual_seed(seed)
    owner = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = (mname, m, pname)
    for name, p in model.named_parameters():
        mname, m, pname = owner[name]
        noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
        if isinstance(m, NORM_TYPES):
            val = 1.0 + 0.2 * noise if pname == "weight" else 0.1 * noise
        elif isinstance(m, nn.Embedding):
            val = 0.5 * noise
        elif pname == "bias":
            val = 0.1 * noise
        elif pname == "weight" and p.dim() >= 2 and isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            fan_in = p[0].numel()
            val = noise * gains.get(mname, gain) / math.sqrt(fan_in)
        else:
            raise RuntimeError(f"randomize: no rule for parameter {name} of {type(m).__name__}")
        p.copy_(val.to(p.dtype))


def build_unet(seed: int):
    from diffusers import UNet3DConditionModel

    unet = UNet3DConditionModel(**UNET_CONFIG)
    randomize(unet, seed)
    return unet.eval()


def build_text_encoder(seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    te = CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG))
    randomize(te, seed)
    return te.eval()


def build_vae(seed: int, gains: dict | None = None):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**VAE_CONFIG)
    randomize(vae, seed, gains=gains)
    return vae.eval()


def build_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(SCHEDULER_CONFIG)


def legacy_vae_state_dict(state_dict: dict) -> dict:
    """Rename the VAE mid-block attention keys to the 2023-era spelling.

    to_q/to_k/to_v/to_out.0 -> query/key/value/proj_attn (group_norm keeps its name).
    Only attention blocks built with _from_deprecated_attn_block (encoder/decoder mid_block)
    are affected; diffusers maps them back in ModelMixin._fix_state_dict_keys_on_load.
    """
    ren = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for k, v in state_dict.items():
        nk = k
        for prefix in ("encoder.mid_block.attentions.0.", "decoder.mid_block.attentions.0."):
            if k.startswith(prefix):
                rest = k[len(prefix):]
                for new, old in ren.items():
                    if rest.startswith(new + "."):
                        nk = prefix + old + rest[len(new):]
        out[nk] = v
    return out
