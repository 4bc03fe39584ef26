//! `torch.randn(n, generator=torch.Generator().manual_seed(seed))` on the CPU, bit for bit in
//! float32, float16 and bfloat16 — so a seed given to t2v gives the same initial latents as the
//! same seed given to diffusers with a CPU generator.
//!
//! What torch 2.x does (ATen `normal_kernel`, `DistributionTemplates.h`, `avx_mathfun.h`,
//! `DistributionsHelper.h`, `MT19937RNGEngine.h`; checked against torch 2.15):
//! - The generator is MT19937 seeded with `init_genrand(seed & 0xFFFF_FFFF)`: seeds of 2^32 and
//!   above only contribute their low 32 bits (`manual_seed(2**32 + 5)` ≡ `manual_seed(5)`).
//! - n ≥ 16 ("normal_fill"): every element first gets `(next_u32 & 0xFFFFFF) · 2^-24`; each full
//!   block of 16 becomes normals by Box–Muller on pairs (j, j+8); when 16 ∤ n the last 16
//!   elements are drawn again as fresh uniforms and transformed the same way (float16 and
//!   bfloat16 differ in when the uniforms are drawn: see `normal_fill`). On x86-64 with
//!   AVX2 (what torch picks on any CPU of the last decade, AVX-512 ones included) the log and
//!   sin/cos are Pommier's `avx_mathfun` polynomials, reproduced below operation by operation;
//!   they differ from correctly rounded libm by up to tens of ulps, so a libm version would not
//!   match. torch's build (GCC, `-mfma`, default `-ffp-contract=fast`) fuses each multiply
//!   feeding an add into an FMA, so the polynomials below use `mul_add` in exactly those places
//!   (plain mul-then-add differs from torch in ~1 % of elements by 1–2 ulps). (torch's non-SIMD build, `ATEN_CPU_CAPABILITY=default`, uses libm `logf/cosf/sinf`
//!   and gives slightly different numbers; not reproduced.)
//! - n < 16: one `normal_distribution<double>` draw per element: two 53-bit uniforms from
//!   64-bit draws (two u32, first one high), `r = sqrt(-2·log1p(-u2))`, `θ = 2π·u1`, return
//!   `r·cos θ` rounded to f32, and *cache* `r·sin θ` in the generator: the next small draw on
//!   the same generator returns the cached value first. The cache survives n ≥ 16 calls
//!   (they never look at it) and is cleared by seeding.

/// torch's CPU generator state: MT19937 plus the cached second Box–Muller sample.
#[derive(Clone)]
pub struct TorchGenerator {
    mt: Mt19937,
    next_double_normal: Option<f64>,
}

impl TorchGenerator {
    /// Same as `torch.Generator().manual_seed(seed)`.
    pub fn new(seed: u64) -> TorchGenerator {
        TorchGenerator { mt: Mt19937::new(seed as u32), next_double_normal: None }
    }

    /// Same as `torch.randn(n, generator=self)` with dtype float32 (the values of any shape
    /// with n elements, in row-major order), continuing this generator's stream.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        if n >= 16 {
            self.normal_fill(n, false)
        } else {
            (0..n).map(|_| self.normal_f64() as f32).collect()
        }
    }

    /// `torch.randn(n, generator=self, dtype=torch.float16)`: what diffusers draws when a
    /// pipeline runs in float16. Not simply `randn(n)` rounded: see `normal_fill`.
    pub fn randn_f16(&mut self, n: usize) -> Vec<half::f16> {
        self.randn_reduced(n).into_iter().map(half::f16::from_f32).collect()
    }

    /// `torch.randn(n, generator=self, dtype=torch.bfloat16)`.
    pub fn randn_bf16(&mut self, n: usize) -> Vec<half::bf16> {
        self.randn_reduced(n).into_iter().map(half::bf16::from_f32).collect()
    }

    /// Float32 values that torch then rounds (to nearest even) to a 16-bit type. Below 16
    /// elements the double sample goes through float first (`c10::Half` has no double
    /// constructor), so that is the same double rounding.
    fn randn_reduced(&mut self, n: usize) -> Vec<f32> {
        if n >= 16 {
            self.normal_fill(n, true)
        } else {
            (0..n).map(|_| self.normal_f64() as f32).collect()
        }
    }

    fn uniform_f32(&mut self) -> f32 {
        (self.mt.next_u32() & 0xFF_FFFF) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    fn uniform_f64(&mut self) -> f64 {
        let hi = self.mt.next_u32() as u64;
        let lo = self.mt.next_u32() as u64;
        (((hi << 32) | lo) & ((1u64 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// torch's `normal_fill`. For float32 it first draws a uniform for *every* element, then
    /// transforms full blocks; for float16/bfloat16 (`reduced`) it draws and transforms one
    /// block of 16 at a time and never draws the n % 16 leftovers. Both then redraw the last
    /// 16, so when 16 ∤ n the tails come from different stream positions.
    fn normal_fill(&mut self, n: usize, reduced: bool) -> Vec<f32> {
        let upfront = if reduced { n / 16 * 16 } else { n };
        let mut data: Vec<f32> = (0..upfront).map(|_| self.uniform_f32()).collect();
        data.resize(n, 0.0);
        for block in data.chunks_exact_mut(16) {
            box_muller_16(block);
        }
        if !n.is_multiple_of(16) {
            let tail = &mut data[n - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32();
            }
            box_muller_16(tail);
        }
        data
    }

    fn normal_f64(&mut self) -> f64 {
        if let Some(cached) = self.next_double_normal.take() {
            return cached;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.next_double_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// `NormalFill16<float>` for AVX2: lanes j and j+8 form one Box–Muller pair.
fn box_muller_16(d: &mut [f32]) {
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    for j in 0..8 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let radius = (-2.0 * log_ps(u1)).sqrt();
        let (sin, cos) = sincos_ps(two_pi * u2);
        // torch stores fma(n, std, mean) with std 1, mean 0: n + 0 (turns -0 into +0).
        d[j] = radius * cos + 0.0;
        d[j + 8] = radius * sin + 0.0;
    }
}

// Constants exactly as avx_mathfun.h spells them: C double literals rounded to float (the
// double step matters for bit-exactness, hence `_f64 as f32` and the long literals).
const SQRTHF: f32 = std::f64::consts::FRAC_1_SQRT_2 as f32; // "0.707106781186547524"
const LOG_P: [f32; 9] = [
    7.0376836292E-2_f64 as f32,
    -1.1514610310E-1_f64 as f32,
    1.1676998740E-1_f64 as f32,
    -1.2420140846E-1_f64 as f32,
    1.4249322787E-1_f64 as f32,
    -1.6668057665E-1_f64 as f32,
    2.0000714765E-1_f64 as f32,
    -2.4999993993E-1_f64 as f32,
    3.3333331174E-1_f64 as f32,
];
const LOG_Q1: f32 = -2.12194440e-4_f64 as f32;
const LOG_Q2: f32 = 0.693359375_f64 as f32;
const MINUS_DP1: f32 = -0.78515625_f64 as f32;
#[allow(clippy::excessive_precision)]
const MINUS_DP2: f32 = -2.4187564849853515625e-4_f64 as f32;
#[allow(clippy::excessive_precision)]
const MINUS_DP3: f32 = -3.77489497744594108e-8_f64 as f32;
const SINCOF: [f32; 3] = [-1.9515295891E-4_f64 as f32, 8.3321608736E-3_f64 as f32, -1.6666654611E-1_f64 as f32];
const COSCOF: [f32; 3] = [2.443315711809948E-005_f64 as f32, -1.388731625493765E-003_f64 as f32, 4.166664568298827E-002_f64 as f32];
const FOPI: f32 = 1.27323954473516_f64 as f32;

/// `log256_ps` for one lane (Cephes logf). Only called on (0, 1], so the NaN and denormal
/// guards of the original are kept just for fidelity.
fn log_ps(x: f32) -> f32 {
    if x.is_nan() || x <= 0.0 {
        return f32::NAN;
    }
    let x = x.max(f32::MIN_POSITIVE);
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32;
    e += 1.0;
    let mut x = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    let below = x < SQRTHF;
    let tmp = if below { x } else { 0.0 };
    x -= 1.0;
    e -= if below { 1.0 } else { 0.0 };
    x += tmp;
    let z = x * x;
    let mut y = LOG_P[0];
    for &p in &LOG_P[1..] {
        y = y.mul_add(x, p);
    }
    y *= x;
    y = y.mul_add(z, e * LOG_Q1);
    y -= z * 0.5;
    x += y;
    e.mul_add(LOG_Q2, x)
}

/// `sincos256_ps` for one lane (Cephes sinf/cosf with the 4/π octant reduction).
fn sincos_ps(x: f32) -> (f32, f32) {
    let sign_in = x.to_bits() & 0x8000_0000;
    let mut x = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let mut j = cvtt(x * FOPI);
    j = j.wrapping_add(1) & !1;
    let y = j as f32;
    let swap_sign_sin = ((j & 4) as u32) << 29;
    let poly_is_cos = (j & 2) == 0;
    x = y.mul_add(MINUS_DP1, x);
    x = y.mul_add(MINUS_DP2, x);
    x = y.mul_add(MINUS_DP3, x);
    let sign_cos = ((!j.wrapping_sub(2) & 4) as u32) << 29;
    let sign_sin = sign_in ^ swap_sign_sin;

    let z = x * x;
    let mut yc = COSCOF[0];
    yc = yc.mul_add(z, COSCOF[1]);
    yc = yc.mul_add(z, COSCOF[2]);
    yc *= z;
    yc = yc.mul_add(z, -(z * 0.5));
    yc += 1.0;
    let mut ys = SINCOF[0];
    ys = ys.mul_add(z, SINCOF[1]);
    ys = ys.mul_add(z, SINCOF[2]);
    ys *= z;
    ys = ys.mul_add(x, x);

    let ysin2 = if poly_is_cos { ys } else { 0.0 };
    let ysin1 = if poly_is_cos { 0.0 } else { yc };
    let ys = ys - ysin2;
    let yc = yc - ysin1;
    let s = ysin1 + ysin2;
    let c = yc + ys;
    (f32::from_bits(s.to_bits() ^ sign_sin), f32::from_bits(c.to_bits() ^ sign_cos))
}

/// `_mm256_cvttps_epi32`: truncation; out-of-range and NaN give i32::MIN ("integer indefinite").
fn cvtt(v: f32) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        i32::MIN
    } else {
        v as i32
    }
}

/// MT19937 as `at::mt19937` (the reference `init_genrand` seeding and tempering).
#[derive(Clone)]
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for j in 1..624 {
            state[j] = 1_812_433_253u32.wrapping_mul(state[j - 1] ^ (state[j - 1] >> 30)).wrapping_add(j as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mag = if y & 1 != 0 { 0x9908_b0df } else { 0 };
            self.state[i] = self.state[(i + 397) % 624] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }
}
