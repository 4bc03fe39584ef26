#!/usr/bin/env python3
"""VBench quality-dimension fixtures (issue 20): tests/fixtures/vbench/.

    tools/reference/.venv/bin/python tools/reference/vbench_fixtures.py

Needs torchvision (VBench's transforms are torchvision's): `pip install --no-deps torchvision==0.29.2`
into the venv (README). Everything is computed by the reference implementations on CPU:

  preprocess.safetensors  VBench's `clip_transform(n)` / `dino_transform(n)` (vbench/utils.py @45e79ec:
                          torchvision Resize(antialias=False) bicubic + CenterCrop, or bilinear with no
                          crop; /255; mean/std) on float32 (T, 3, H, W) frames of awkward sizes (odd,
                          non-square both ways, up- and down-scaled, already at size). `in_<case>` u8
                          frames (T, H, W, 3) as decord gives them, `clip_<case>` / `dino_<case>` the
                          transforms' outputs. Also `F.interpolate` bicubic with scale_factor (DINO's
                          position-embedding mapping) on random planes: `pos_in_<case>` / `pos_out_<case>`.
  background.safetensors  background_consistency (vbench/background_consistency.py's loop) on the tiny
                          random CLIPModel of tests/fixtures/clip/tiny-clip (from_pretrained; `encode_image`
                          = get_image_features), `clip_transform(32)` (its image size) of u8 frames
                          `frames_<case>` (T, H, W, 3) and their `features_<case>`; the per-video
                          values in cases.json `background`.
  tiny-dino/              a tiny random DINO ViT made by facebookresearch/dino's own `vision_transformer.py`
                          (vendored: tools/reference/dino_vision_transformer.py): patch 16, dim 24, depth 2,
                          3 heads, img_size 64 (a 4×4 position table), LayerNorm eps 1e-6, qkv bias, every
                          parameter randomised; its state dict (timm's key names) as model.safetensors and
                          t2v's config.json; loaded back strictly before use.
  dino.safetensors        `dino_in_<case>` normalised images (f16-exact values, stored f16) → `dino_out_<case>` (the model's forward: CLS after
                          the final norm) at the trained size and at other sizes (non-square, remainders,
                          square but not 4×4: interpolated position embeddings); subject consistency
                          (vbench/subject_consistency.py's loop: dino_transform(224), one frame at a time) on
                          the background videos: `sc_features_<case>`, values in cases.json `subject`.
  aesthetic_head.pth      a random LAION-V1-style head, nn.Linear(8, 1) (the tiny CLIP's projection width
                          instead of ViT-L/14's 768), saved by torch.save(state_dict) as LAION's file is;
                          aesthetic_quality (vbench/aesthetic_quality.py's arithmetic: encode_image → float32
                          → F.normalize → head → /10 → mean over frames) on the background videos with
                          tests/fixtures/clip/tiny-clip: values in cases.json `aesthetic`.
  cases.json              the cases and sizes.

torch's float resize has two CPU kernels: with more than one thread (and outputs above 128 px summed)
the generic one, which is also how CUDA combines taps; t2v reproduces that one. The script runs the
resizes with 2 threads for that reason (the rest of the fixtures pin 1).
"""

from __future__ import annotations

import json
import math
import sys
from collections import OrderedDict
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures as mf  # noqa: E402  (first: pins the CPU code paths before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from clip_fixtures import image  # noqa: E402
from dumping import write_safetensors  # noqa: E402

# (name, T, H, W): upscale odd non-square, portrait up, landscape down, portrait down, at size.
PRE_CASES = [("up_17x23", 1, 17, 23), ("up_64x41", 1, 64, 41), ("down_101x143", 1, 101, 143),
             ("down_131x67", 1, 131, 67), ("same", 1, 66, 70)]
DINO_CASES = ["up_17x23", "down_101x143", "same"]  # (outputs are the big part of the file)
CLIP_PX = 48   # bicubic + crop: small outputs keep the fixture small (the kernel is size-agnostic)
DINO_PX = 66   # bilinear: output sides summing above 128 px keep torch on its generic kernel
# (name, n, grid h, grid w): DINO's interpolate_pos_encoding scale factors (n + 0.1)/sqrt(N)
POS_CASES = [("14_to_14x24", 14, 14, 24), ("14_to_24x14", 14, 24, 14), ("14_to_15x15", 14, 15, 15), ("4_to_5x7", 4, 5, 7)]


def vbench_transforms(n_px: int):
    """vbench/utils.py clip_transform / dino_transform as VBENCH.md §2–3 pins them (@45e79ec)."""
    from torchvision import transforms
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize
    clip = Compose([
        Resize(n_px, interpolation=InterpolationMode.BICUBIC, antialias=False),
        CenterCrop(n_px),
        transforms.Lambda(lambda x: x.float().div(255.0)),
        Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ])
    dino = Compose([
        Resize(size=n_px, antialias=False),
        transforms.Lambda(lambda x: x.float().div(255.0)),
        Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    return clip, dino


def load_video_like(frames_u8: np.ndarray) -> torch.Tensor:
    """vbench.utils.load_video: torch.Tensor(frames) (float32 0..255) permuted to (T, C, H, W)."""
    return torch.Tensor(frames_u8).permute(0, 3, 1, 2)


def preprocess(out: Path) -> dict:
    torch.set_num_threads(2)
    tensors = OrderedDict()
    for i, (name, t, h, w) in enumerate(PRE_CASES):
        fr = np.stack([image(h, w, 300 + 10 * i + k) for k in range(t)])
        x = load_video_like(fr)
        tensors[f"in_{name}"] = torch.from_numpy(fr)
        tensors[f"clip_{name}"] = vbench_transforms(CLIP_PX)[0](x)
        if name in DINO_CASES:
            tensors[f"dino_{name}"] = vbench_transforms(DINO_PX)[1](x)
    g = torch.Generator().manual_seed(31)
    for name, n, gh, gw in POS_CASES:
        # channels-last planes as DINO makes them: (1, N, N, dim).permute(0, 3, 1, 2)
        pe = torch.randn(1, n, n, 6, generator=g).permute(0, 3, 1, 2)
        o = F.interpolate(pe, scale_factor=((gh + 0.1) / n, (gw + 0.1) / n), mode="bicubic")
        assert o.shape[-2:] == (gh, gw), o.shape
        tensors[f"pos_in_{name}"] = pe.contiguous()
        tensors[f"pos_out_{name}"] = o.contiguous()
    torch.set_num_threads(1)
    write_safetensors(out / "preprocess.safetensors", tensors, {})
    return {"pre_cases": PRE_CASES, "clip_px": CLIP_PX, "dino_px": DINO_PX, "dino_cases": DINO_CASES, "pos_cases": POS_CASES}


def video(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """(t, h, w, 3) u8: frame k blends the first procedural image with its own, more with k, so
    consecutive frames are similar and late ones drift (the consistency cosines vary)."""
    base = image(h, w, seed).astype(np.float64)
    out = []
    for k in range(t):
        a = min(1.0, 0.25 * k)
        out.append(np.round((1 - a) * base + a * image(h, w, seed + 1 + k)).astype(np.uint8))
    return np.stack(out)


def vbench_consistency(image_features: torch.Tensor) -> float:
    """The per-video loop of vbench/background_consistency.py and subject_consistency.py."""
    image_features = F.normalize(image_features, dim=-1, p=2)
    video_sim = 0.0
    for i in range(len(image_features)):
        image_feature = image_features[i].unsqueeze(0)
        if i == 0:
            first_image_feature = image_feature
        else:
            sim_pre = max(0.0, F.cosine_similarity(former_image_feature, image_feature).item())
            sim_fir = max(0.0, F.cosine_similarity(first_image_feature, image_feature).item())
            video_sim += (sim_pre + sim_fir) / 2
        former_image_feature = image_feature
    return video_sim / (len(image_features) - 1)


# (name, T, H, W, seed): landscape down to 32, portrait, square, one with 2 frames.
VIDEO_CASES = [("land", 5, 48, 71, 500), ("port", 4, 57, 40, 510), ("square", 3, 32, 32, 520), ("two", 2, 45, 45, 530)]


def background(out: Path) -> dict:
    from transformers import CLIPModel
    torch.set_num_threads(2)  # torch's generic resize kernel (module docstring)
    model = CLIPModel.from_pretrained(mf.FIX / "clip" / "tiny-clip").eval()
    n_px = model.config.vision_config.image_size
    clip_t = vbench_transforms(n_px)[0]
    tensors, values = OrderedDict(), {}
    for name, t, h, w, seed in VIDEO_CASES:
        fr = video(t, h, w, seed)
        pixels = clip_t(load_video_like(fr))
        feats = model.get_image_features(pixel_values=pixels).pooler_output
        tensors[f"frames_{name}"] = torch.from_numpy(fr)
        tensors[f"features_{name}"] = feats
        values[name] = vbench_consistency(feats)
    torch.set_num_threads(1)
    write_safetensors(out / "background.safetensors", tensors, {})
    return {"video_cases": VIDEO_CASES, "background": values, "background_clip": "tests/fixtures/clip/tiny-clip"}


DINO_CFG = dict(embed_dim=24, depth=2, num_heads=3, mlp_ratio=4.0, patch_size=16, img_size=64, in_chans=3,
                layer_norm_eps=1e-6)
# (name, B, H, W): trained size (the table as is), non-square, square at another grid, remainders.
DINO_CASES_FWD = [("trained_64x64", 2, 64, 64), ("wide_48x80", 1, 48, 80), ("square_48x48", 1, 48, 48),
                  ("rest_35x50", 1, 35, 50), ("tall_70x33", 1, 70, 33)]


def dino_model():
    import types
    from functools import partial
    from torch import nn
    sys.modules.setdefault("vit_utils", types.SimpleNamespace(trunc_normal_=nn.init.trunc_normal_))
    import dino_vision_transformer as dvt
    c = DINO_CFG
    return dvt.VisionTransformer(img_size=[c["img_size"]], patch_size=c["patch_size"], embed_dim=c["embed_dim"],
                                 depth=c["depth"], num_heads=c["num_heads"], mlp_ratio=c["mlp_ratio"], qkv_bias=True,
                                 norm_layer=partial(nn.LayerNorm, eps=c["layer_norm_eps"]))


@torch.no_grad()
def randomize_dino(model, seed: int) -> None:
    from torch import nn
    g = torch.Generator().manual_seed(seed)
    mods = dict(model.named_modules())
    for name, p in model.named_parameters():
        mname, _, pname = name.rpartition(".")
        m = mods[mname]
        noise = torch.randn(p.shape, generator=g)
        if isinstance(m, nn.LayerNorm):
            val = 1.0 + 0.2 * noise if pname == "weight" else 0.1 * noise
        elif pname in ("cls_token", "pos_embed"):
            val = 0.5 * noise
        elif pname == "bias":
            val = 0.1 * noise
        elif pname == "weight" and isinstance(m, (nn.Linear, nn.Conv2d)):
            val = noise * 1.2 / math.sqrt(p[0].numel())
        else:
            raise RuntimeError(f"randomize: no rule for {name}")
        p.copy_(val)


def dino(out: Path) -> dict:
    from safetensors.torch import load_file
    model_dir = out / "tiny-dino"
    model_dir.mkdir(exist_ok=True)
    torch.manual_seed(0)
    m = dino_model()
    randomize_dino(m, 41)
    sd = OrderedDict((k, v.contiguous()) for k, v in m.state_dict().items())
    assert not any(k.startswith("head") for k in sd), list(sd)
    write_safetensors(model_dir / "model.safetensors", sd, {})
    (model_dir / "config.json").write_text(json.dumps(dict(DINO_CFG, _note="t2v fixture: tiny random DINO ViT, timm keys"), indent=1) + "\n")
    model = dino_model().eval()
    model.load_state_dict(load_file(model_dir / "model.safetensors"), strict=True)
    tensors = OrderedDict()
    g = torch.Generator().manual_seed(42)
    for name, b, h, w in DINO_CASES_FWD:
        x = torch.randn(b, 3, h, w, generator=g).half().float()  # stored as f16, exactly
        y = model(x)
        tensors[f"dino_in_{name}"] = x.half()
        tensors[f"dino_out_{name}"] = y
        # every path counts: zeroing the last block's MLP output moves the features
        fc2 = model.blocks[-1].mlp.fc2.weight
        keep = fc2.clone()
        fc2.zero_()
        rel = float((model(x) - y).norm() / y.norm())
        fc2.copy_(keep)
        assert rel > 0.01, (name, rel)
    # The position table is interpolated exactly when DINO says so.
    assert model.interpolate_pos_encoding(torch.zeros(1, 17, DINO_CFG["embed_dim"]), 64, 64) is model.pos_embed
    torch.set_num_threads(2)  # torch's generic resize kernel (module docstring)
    dino_t = vbench_transforms(224)[1]
    values = {}
    for name, t, h, w, seed in VIDEO_CASES:
        images = dino_t(load_video_like(video(t, h, w, seed)))
        feats = torch.cat([model(images[i].unsqueeze(0)) for i in range(len(images))])
        tensors[f"sc_features_{name}"] = feats
        values[name] = vbench_consistency(feats)
    torch.set_num_threads(1)
    from safetensors.torch import save_file  # keeps the f16 inputs f16 (write_safetensors upcasts)
    save_file(OrderedDict((k, tensors[k].contiguous()) for k in sorted(tensors)), str(out / "dino.safetensors"))
    return {"dino_fwd_cases": DINO_CASES_FWD, "subject": values, "subject_px": 224}


def aesthetic(out: Path) -> dict:
    from torch import nn
    from transformers import CLIPModel
    model = CLIPModel.from_pretrained(mf.FIX / "clip" / "tiny-clip").eval()
    dim = model.config.projection_dim
    g = torch.Generator().manual_seed(51)
    head = nn.Linear(dim, 1)
    head.weight.copy_(3.0 * torch.randn(1, dim, generator=g))
    head.bias.copy_(torch.tensor([5.0]) + 0.5 * torch.randn(1, generator=g))
    path = out / "aesthetic_head.pth"
    torch.save(head.state_dict(), path)
    aesthetic_model = nn.Linear(dim, 1)
    aesthetic_model.load_state_dict(torch.load(path))
    aesthetic_model.eval()
    torch.set_num_threads(2)  # torch's generic resize kernel (module docstring)
    clip_t = vbench_transforms(model.config.vision_config.image_size)[0]
    values = {}
    for name, t, h, w, seed in VIDEO_CASES:
        images = clip_t(load_video_like(video(t, h, w, seed)))
        image_feats = model.get_image_features(pixel_values=images).pooler_output.to(torch.float32)
        image_feats = F.normalize(image_feats, dim=-1, p=2)
        aesthetic_scores = aesthetic_model(image_feats).squeeze()
        normalized_aesthetic_scores = aesthetic_scores / 10
        values[name] = torch.mean(normalized_aesthetic_scores, dim=0, keepdim=True).item()
    torch.set_num_threads(1)
    return {"aesthetic": values, "aesthetic_head": "aesthetic_head.pth"}


# ---------------------------------------------------------------------------------------------------
# RAFT (dynamic_degree, VBench's static filter): princeton-vl/RAFT's own core/ (vendored verbatim in
# tools/reference/raft_core/), RAFT-large (small=False) with every width divided by 16 — the widths
# are literals in RAFT's code, so nn.Conv2d / nn.BatchNorm2d are narrowed while the model is built
# (RAFT_NARROW; the 3 image channels, the 2 flow channels, the 324 correlation channels and the
# 576 = 9·8·8 upsampling-mask channels are the algorithm's and stay) and the split of the context
# network's output follows (hidden_dim = context_dim = 8). t2v reads every width from the
# checkpoint's shapes, so the same code runs raft-things.pth.

RAFT_NARROW = {64: 4, 96: 6, 128: 8, 192: 12, 256: 16, 126: 6, 384: 24}
RAFT_SEED = 61
# Gain on update_block.flow_head.conv2's weight and bias (the per-iteration flow update): puts the random model's
# per-pair scores on both sides of VBench's thresholds for these frames.
RAFT_FLOW_GAIN = 0.018
# (name, T, H, W, fps, seed, pan px/frame): H, W not multiples of 8 (sintel padding); "small" has a
# 1-pixel coarsest correlation level (frames padded to 72×96), where RAFT's lookup divides by zero.
RAFT_VIDEOS = [("pan", 5, 122, 133, 16.0, 700, 3), ("still", 3, 128, 131, 8.0, 710, 0),
               ("slow", 4, 125, 128, 24.0, 720, 1), ("small", 2, 70, 90, 8.0, 730, 2)]


def raft_frames(t: int, h: int, w: int, seed: int, pan: int) -> np.ndarray:
    """(t, h, w, 3) u8: frame k is the procedural image (clip_fixtures.image) at column offset
    pan·k — a camera pan. tests/eval_raft.rs makes the same frames."""
    base = image(h, w + pan * (t - 1), seed)
    return np.stack([base[:, pan * k: pan * k + w] for k in range(t)])


class _Args(dict):
    """VBench passes an EasyDict: RAFT tests `'dropout' not in self.args` and reads attributes."""
    __getattr__ = dict.__getitem__
    __setattr__ = dict.__setitem__


def raft_import():
    sys.path.insert(0, str(HERE / "raft_core"))
    import raft as raft_mod  # noqa: E402  (the vendored core/raft.py)
    import corr as corr_mod  # noqa: E402
    from utils.utils import InputPadder  # noqa: E402
    return raft_mod, corr_mod, InputPadder


def raft_model():
    from torch import nn
    raft_mod, _, _ = raft_import()
    conv, bn = nn.Conv2d, nn.BatchNorm2d
    w = lambda c: RAFT_NARROW.get(c, c)

    class NarrowConv2d(conv):
        def __init__(self, cin, cout, *a, **k):
            super().__init__(w(cin), w(cout), *a, **k)

    class NarrowBatchNorm2d(bn):
        def __init__(self, c, *a, **k):
            super().__init__(w(c), *a, **k)

    nn.Conv2d, nn.BatchNorm2d = NarrowConv2d, NarrowBatchNorm2d
    try:
        model = raft_mod.RAFT(_Args(small=False, mixed_precision=False, alternate_corr=False))
    finally:
        nn.Conv2d, nn.BatchNorm2d = conv, bn
    model.hidden_dim = model.context_dim = w(128)
    return model


@torch.no_grad()
def randomize_raft(model, seed: int) -> None:
    from torch import nn
    g = torch.Generator().manual_seed(seed)
    mods = dict(model.named_modules())
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        mname, _, pname = name.rpartition(".")
        m = mods[mname]
        noise = torch.randn(p.shape, generator=g)
        if isinstance(m, nn.BatchNorm2d):
            val = {"weight": 1.0 + 0.2 * noise, "bias": 0.1 * noise, "running_mean": 0.2 * noise,
                   "running_var": torch.exp(0.3 * noise), "num_batches_tracked": torch.tensor(1000)}[pname]
        elif isinstance(m, nn.Conv2d) and pname == "weight":
            val = noise * 1.2 / math.sqrt(p[0].numel())
        elif isinstance(m, nn.Conv2d) and pname == "bias":
            val = 0.1 * noise
        else:
            raise RuntimeError(f"randomize: no rule for {name}")
        if name.startswith("update_block.flow_head.conv2."):
            val = val * RAFT_FLOW_GAIN
        p.copy_(val.to(p.dtype))


def vbench_flow_score(img, flo, fraction: float) -> float:
    """DynamicDegree.get_score (fraction 0.05) / StaticFilter.get_score (0.02), vbench @45e79ec."""
    img = img[0].permute(1, 2, 0).cpu().numpy()
    flo = flo[0].permute(1, 2, 0).cpu().numpy()
    u = flo[:, :, 0]
    v = flo[:, :, 1]
    rad = np.sqrt(np.square(u) + np.square(v))
    h, w = rad.shape
    rad_flat = rad.flatten()
    cut_index = int(h * w * fraction)
    max_rad = np.mean(abs(np.sort(-rad_flat))[:cut_index])
    return max_rad.item()


def vbench_check_move(score_list, params) -> bool:
    """DynamicDegree.check_move."""
    thres = params["thres"]
    count_num = params["count_num"]
    count = 0
    for score in score_list:
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


def vbench_check_static(score_list, params) -> bool:
    """StaticFilter.check_static (static_filter.py)."""
    thres = params["thres"]
    count_num = params["count_num"]
    count = 0
    for score in score_list[:-2]:
        if score > thres:
            count += 1
        if count > count_num:
            return False
    for score in score_list[-2:]:
        if score > thres * count_num * 2:
            return False
    return True


def raft(out: Path) -> dict:
    raft_mod, corr_mod, InputPadder = raft_import()
    torch.manual_seed(0)
    m = raft_model()
    randomize_raft(m, RAFT_SEED)
    # As raft-things.pth: the state dict of nn.DataParallel(RAFT) (keys "module.…"), torch.save zip.
    path = out / "tiny-raft.pth"
    torch.save(OrderedDict(("module." + k, v.contiguous()) for k, v in m.state_dict().items()), path)
    # vbench/dynamic_degree.py DynamicDegree.load_model.
    model = raft_model()
    ckpt = torch.load(path, map_location="cpu")
    new_ckpt = {k.replace('module.', ''): v for k, v in ckpt.items()}
    model.load_state_dict(new_ckpt)
    model.eval()

    # Intermediates of the first pair: fnet/cnet outputs, the correlation lookups of the first two
    # iterations (CorrBlock.__call__), the final low-resolution and upsampled flows.
    seen = {}
    model.fnet.register_forward_hook(lambda mod, i, o: seen.setdefault("fnet", o))
    model.cnet.register_forward_hook(lambda mod, i, o: seen.setdefault("cnet", o))
    lookups = []

    class RecordingCorrBlock(corr_mod.CorrBlock):
        def __call__(self, coords):
            r = super().__call__(coords)
            lookups.append(r)
            return r

    raft_mod.CorrBlock = RecordingCorrBlock
    tensors = OrderedDict()
    videos = []
    for name, t, h, w, fps, seed, pan in RAFT_VIDEOS:
        fr = raft_frames(t, h, w, seed, pan)
        # cv2 decode → RGB → (1, 3, H, W) float, as DynamicDegree.get_frames / StaticFilter.get_frames.
        frames = [torch.from_numpy(f.astype(np.uint8)).permute(2, 0, 1).float()[None] for f in fr]
        flows = {}

        def flow(i, j):
            if (i, j) not in flows:
                image1, image2 = frames[i], frames[j]
                padder = InputPadder(image1.shape)
                image1, image2 = padder.pad(image1, image2)
                seen.clear()
                lookups.clear()
                flow_low, flow_up = model(image1, image2, iters=20, test_mode=True)
                flows[(i, j)] = (image1, flow_up)
                if name == "pan" and (i, j) == (0, 1):
                    tensors["pan_fmap"] = torch.cat(seen["fnet"])  # fnet([image1, image2]) returns both
                    net, inp = torch.split(seen["cnet"], [model.hidden_dim, model.context_dim], dim=1)
                    tensors["pan_net"] = torch.tanh(net)
                    tensors["pan_inp"] = torch.relu(inp)
                    tensors["pan_corr1"] = lookups[1]
                    tensors["pan_flow_low"] = flow_low
                    tensors["pan_flow_up"] = flow_up
            return flows[(i, j)]

        # DynamicDegree.infer on the frames get_frames keeps (interval = max(1, round(fps / 8))).
        interval = max(1, round(fps / 8))
        keep = list(range(0, t, interval))
        scale = min(list(frames[0].shape)[-2:])
        params = {"thres": 6.0 * (scale / 256.0), "count_num": round(4 * (len(keep) / 16.0))}
        dyn_scores = [vbench_flow_score(*flow(i, j), 0.05) for i, j in zip(keep[:-1], keep[1:])]
        dynamic = vbench_check_move(dyn_scores, params)
        # StaticFilter.infer: every consecutive pair, then (first, last) and (last, first).
        idx = list(range(t))
        pairs = list(zip(idx[:-1] + [idx[0], idx[-1]], idx[1:] + [idx[-1], idx[0]]))
        sparams = {"thres": 3.0 * (scale / 256.0), "count_num": round(2 * (t / 16.0))}
        st_scores = [vbench_flow_score(*flow(i, j), 0.02) for i, j in pairs]
        static = vbench_check_static(st_scores, sparams)
        nan = lambda xs: [None if math.isnan(x) else x for x in xs]  # JSON has no NaN
        videos.append({"name": name, "sum": int(fr.astype(np.int64).sum()), "frames": t, "height": h, "width": w, "fps": fps, "seed": seed, "pan": pan,
                       "interval": interval, "dynamic_scores": nan(dyn_scores), "dynamic_params": params,
                       "dynamic": int(dynamic), "static_scores": nan(st_scores), "static_params": sparams,
                       "static": bool(static)})
        print(f"raft {name}: dynamic {int(dynamic)} {dyn_scores} thres {params}; static {static} {st_scores} {sparams}")
    raft_mod.CorrBlock = corr_mod.CorrBlock
    assert any(v["dynamic"] for v in videos) and not all(v["dynamic"] for v in videos[:-1]), "tune RAFT_FLOW_GAIN"
    # RAFT's coarsest lookup on a 1-pixel level (frames padded below 128 px) is NaN: 2x/(W-1) = x/0.
    assert all(x is None for x in videos[-1]["static_scores"]), videos[-1]
    write_safetensors(out / "raft.safetensors", tensors, {})
    return {"raft_videos": videos, "raft_model": "tiny-raft.pth", "raft_iters": 20}


def main(fix: Path, parts: list[str]) -> None:
    out = fix / "vbench"
    out.mkdir(parents=True, exist_ok=True)
    cases_path = out / "cases.json"
    cases = json.loads(cases_path.read_text()) if cases_path.is_file() else {}
    torch.set_grad_enabled(False)
    for part in parts:
        cases.update(PARTS[part](out))
    cases_path.write_text(json.dumps(cases, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"vbench fixtures: {size / 1e6:.3f} MB in {out}")


PARTS = {"preprocess": preprocess, "background": background, "dino": dino, "aesthetic": aesthetic, "raft": raft}

if __name__ == "__main__":
    main(mf.FIX, sys.argv[1:] or list(PARTS))
