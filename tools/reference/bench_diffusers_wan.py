#!/usr/bin/env python3
"""diffusers on the CPU beside `t2v bench pipeline` for a WanPipeline folder (the full-size
replica of tools/reference/make_wan_replica.py): same shape, steps and guidance, each stage timed.

    tools/reference/.venv/bin/python tools/reference/make_wan_replica.py /tmp/wan13b
    tools/reference/.venv/bin/python tools/reference/bench_diffusers_wan.py /tmp/wan13b --frames 5 --height 128 --width 128 --steps 2
    target/release/t2v bench pipeline --model /tmp/wan13b --frames 5 --height 128 --width 128 --steps 2

The transformer and the VAE run in float32, as everywhere in these tables. UMT5-XXL does not fit
a 24 GiB machine in float32 (22.7 GB of weights), so it runs in bfloat16 (the dtype the replica
stores and the Wan card runs), alone, and is freed before the transformer loads; its time is
stated as such. The generation is the pipeline's own call with those prompt embeddings, its
denoising (output_type="latent") and VAE decode timed apart.
"""
import argparse
import gc
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--transformer-steps", type=int, default=2)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    rows = []
    prompt, negative = "a lion walking in the jungle", ""
    guided = a.guidance > 1.0

    # 1. UMT5-XXL alone, bfloat16.
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(a.model, subfolder="tokenizer")
    te = UMT5EncoderModel.from_pretrained(a.model, subfolder="text_encoder", torch_dtype=torch.bfloat16).eval()
    rows.append(("load text encoder (bf16)", time.perf_counter() - t0))
    enc = WanPipeline(tokenizer=tok, text_encoder=te, transformer=None, vae=None, scheduler=None)
    with torch.no_grad():
        t0 = time.perf_counter()
        pe, ne = enc.encode_prompt(prompt, negative, do_classifier_free_guidance=guided, max_sequence_length=512,
                                   device=torch.device("cpu"))
        rows.append((f"prompt encoding (UMT5 bf16, 512 positions, {2 if guided else 1} prompts)", time.perf_counter() - t0))
    pe = pe.float()
    ne = ne.float() if ne is not None else None
    del enc, te
    gc.collect()

    # 2. Transformer and VAE in float32.
    t0 = time.perf_counter()
    tr = WanTransformer3DModel.from_pretrained(a.model, subfolder="transformer", torch_dtype=torch.float32).eval()
    vae = AutoencoderKLWan.from_pretrained(a.model, subfolder="vae", torch_dtype=torch.float32).eval()
    sched = UniPCMultistepScheduler.from_pretrained(a.model, subfolder="scheduler")
    rows.append(("load transformer + VAE (f32)", time.perf_counter() - t0))
    pipe = WanPipeline(tokenizer=tok, text_encoder=None, transformer=tr, vae=vae, scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    nf = a.frames if a.frames % 4 == 1 else a.frames // 4 * 4 + 1
    shape = (1, 16, (nf - 1) // 4 + 1, a.height // 8, a.width // 8)
    sample = torch.full(shape, 0.1)
    ctx = torch.full((1, 512, tr.config.text_dim), 0.01)
    t = torch.tensor([981])
    passes = 2 if guided else 1
    with torch.no_grad():
        def step():
            for _ in range(passes):
                tr(hidden_states=sample, timestep=t, encoder_hidden_states=ctx)
        step()
        t0 = time.perf_counter()
        for _ in range(a.transformer_steps):
            step()
        step_s = (time.perf_counter() - t0) / a.transformer_steps
        t0 = time.perf_counter()
        lat = pipe(prompt_embeds=pe, negative_prompt_embeds=ne, height=a.height, width=a.width, num_frames=nf,
                   num_inference_steps=a.steps, guidance_scale=a.guidance, generator=torch.Generator().manual_seed(0),
                   output_type="latent").frames
        denoise_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        mean = torch.tensor(vae.config.latents_mean).view(1, 16, 1, 1, 1)
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, 16, 1, 1, 1)
        video = vae.decode(lat / std + mean, return_dict=False)[0]
        decode_s = time.perf_counter() - t0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| what | seconds |\n|---|---:|")
    for what, s in rows:
        print(f"| {what} | {s:.2f} |")
    print(f"| transformer step (f32, {passes} pass{'es' if passes > 1 else ''} of batch 1), {nf} frames × {a.width}×{a.height} "
          f"(latent {shape[2]}×{shape[3]}×{shape[4]}) | {step_s:.3f} |")
    print(f"| denoising, {a.steps} steps (f32) | {denoise_s:.2f} |")
    print(f"| VAE decode, {video.shape[2]} frames (f32) | {decode_s:.2f} |")


if __name__ == "__main__":
    main()
