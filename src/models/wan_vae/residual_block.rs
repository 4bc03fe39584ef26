use super::cache::CausalCache;
use super::causal_conv::CausalConv3d;
use super::norm::WanRmsNorm;
use crate::error::Result;
use crate::ops::elementwise::add_inplace;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `WanResidualBlock`: shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))), both convs
/// 3×3×3 causal with a cache slot each; the shortcut is a 1×1×1 conv when channels change.
pub struct WanResidualBlock {
    pub norm1: WanRmsNorm,
    pub conv1: CausalConv3d,
    pub norm2: WanRmsNorm,
    pub conv2: CausalConv3d,
    pub conv_shortcut: Option<CausalConv3d>,
}

impl WanResidualBlock {
    pub fn load(w: &Scope, cin: usize, cout: usize, slots: &mut usize) -> Result<WanResidualBlock> {
        let mut none = 0;
        Ok(WanResidualBlock {
            norm1: WanRmsNorm::load(&w.at("norm1"), cin, false)?,
            conv1: CausalConv3d::load(&w.at("conv1"), cin, cout, 3, 3, slots)?,
            norm2: WanRmsNorm::load(&w.at("norm2"), cout, false)?,
            conv2: CausalConv3d::load(&w.at("conv2"), cout, cout, 3, 3, slots)?,
            conv_shortcut: if cin != cout { Some(CausalConv3d::load(&w.at("conv_shortcut"), cin, cout, 1, 1, &mut none)?) } else { None },
        })
    }

    /// x (F, Cin, H, W) → (F, Cout, H, W). Takes x so it is freed as soon as nothing needs it.
    pub fn forward(&self, x: Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let h = match &self.conv_shortcut {
            Some(sc) => sc.forward(&x, cache, false)?,
            None => x.clone(),
        };
        let n = self.norm1.forward(&x, true)?;
        drop(x);
        let y = self.conv1.forward(&n, cache, false)?;
        drop(n);
        let n = self.norm2.forward(&y, true)?;
        drop(y);
        let out = self.conv2.forward(&n, cache, false)?;
        drop(n);
        add_inplace(&out, &h)?;
        Ok(out)
    }
}
