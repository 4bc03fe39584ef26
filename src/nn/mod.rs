//! Building blocks shared by the models, named as in diffusers/transformers so a state-dict key
//! tells you the code: `Linear`, `Conv2d`, `GroupNorm`, `LayerNorm`, `Attention`,
//! `BasicTransformerBlock`, `ResnetBlock2D`, `Downsample2D`, `Upsample2D`.

mod attention;
mod conv;
mod linear;
mod norm;
mod resnet;
mod sampling;
mod transformer_block;

pub use attention::Attention;
pub use conv::Conv2d;
pub use linear::Linear;
pub use norm::{GroupNorm, LayerNorm};
pub use resnet::ResnetBlock2D;
pub use sampling::{Downsample2D, Upsample2D};
pub use transformer_block::{BasicTransformerBlock, FeedForward};
