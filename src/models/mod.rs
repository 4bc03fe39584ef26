//! The networks, each a folder nested like its checkpoint's state-dict keys
//! (`down_blocks.1.temp_convs.0` → `unet/down_blocks.rs` → `temporal_conv.rs`), built from its
//! config.json with diffusers' (or transformers') defaults.

/// LAION's aesthetic predictor V1 head (VBench's aesthetic quality, on CLIP ViT-L/14 features).
pub mod aesthetic;
/// CLIPModel (vision tower + the text encoder, projections): the scorer of `t2v compare`.
pub mod clip;
/// DINO's ViT (timm layout, `vit_base_patch16_224.dino`): VBench's subject-consistency features.
pub mod dino;
/// RAFT-large optical flow (`raft-things.pth` layout): VBench's dynamic degree and static filter.
pub mod raft;
/// CLIPTextModel: prompt tokens → embeddings (transformers' layout).
pub mod text_encoder;
/// UNet3DConditionModel (ModelScope, Zeroscope): the video denoiser.
pub mod unet;
/// UNet2DConditionModel (Stable Diffusion 1.x, for Text2Video-Zero): the image denoiser.
pub mod unet_2d;
/// UMT5EncoderModel (Wan's umT5-XXL text encoder): prompt tokens → embeddings.
pub mod umt5;
/// AutoencoderKL: latents ↔ frames.
pub mod vae;
/// WanTransformer3DModel (Wan 2.1 text-to-video): the diffusion transformer.
pub mod wan_transformer;
/// AutoencoderKLWan (Wan 2.1's causal 3-D VAE): latents → frames.
pub mod wan_vae;
