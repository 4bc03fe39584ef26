//! Device tensors: a pooled buffer, a byte offset, a shape and a dtype. Always contiguous
//! (row-major); views are an offset plus a shape over the same buffer.

use crate::error::{shape_err, Bytes, Error, Result};
use crate::gpu::{Binding, Gpu, PooledBuffer};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
}

impl DType {
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
        }
    }
}

#[derive(Clone)]
pub struct Tensor {
    gpu: Arc<Gpu>,
    buf: Arc<PooledBuffer>,
    /// Byte offset of element 0 inside the buffer.
    offset: u64,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {}, +{}B)", self.shape, self.dtype.name(), self.offset)
    }
}

/// A storage binding of part of a tensor plus the element shift the kernel must add: binding
/// offsets must be aligned, element ranges need not be.
pub struct Window {
    pub binding: Binding,
    pub shift: u32,
}

impl Tensor {
    /// An uninitialised tensor (NaN-filled when the device is in poison mode).
    pub fn empty(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        let bytes = numel as u64 * dtype.size();
        let buf = gpu.alloc(bytes, &format!("tensor {shape:?} {}", dtype.name()))?;
        let t = Tensor { gpu: gpu.clone(), buf, offset: 0, shape: shape.to_vec(), dtype };
        if gpu.poison() {
            crate::ops::elementwise::fill_bits(&t, 0xffff_ffff)?;
        }
        Ok(t)
    }

    pub fn zeros(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let t = Tensor::empty(gpu, shape, dtype)?;
        crate::ops::elementwise::fill_bits(&t, 0)?;
        Ok(t)
    }

    pub fn from_f32(gpu: &Arc<Gpu>, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::F32)?;
        gpu.write_bytes(&t.buf.buffer, t.offset, bytemuck::cast_slice(data))?;
        Ok(t)
    }

    /// Stores `data` rounded to f16 (round-to-nearest-even, as torch's `.half()`).
    pub fn from_f32_as_f16(gpu: &Arc<Gpu>, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let h: Vec<half::f16> = data.iter().map(|&x| half::f16::from_f32(x)).collect();
        Tensor::from_f16(gpu, shape, &h)
    }

    pub fn from_f16(gpu: &Arc<Gpu>, shape: &[usize], data: &[half::f16]) -> Result<Tensor> {
        check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::F16)?;
        gpu.write_bytes(&t.buf.buffer, t.offset, bytemuck::cast_slice(data))?;
        Ok(t)
    }

    /// Overwrites the tensor with `bytes` already in its dtype (host copies of weights).
    pub fn write_raw(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.bytes() {
            return crate::error::shape_err("write_raw", format!("{} bytes for a tensor {:?} of {} bytes", bytes.len(), self.shape, self.bytes()));
        }
        self.gpu.write_bytes(&self.buf.buffer, self.offset, bytes)
    }

    /// Reads the tensor back as f32 (f16 is widened). Flushes queued work first.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let bytes = self.gpu.read_bytes(&self.buf.buffer, self.offset, self.bytes())?;
        Ok(match self.dtype {
            DType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(&bytes),
            DType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes).iter().map(|h| h.to_f32()).collect(),
        })
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn bytes(&self) -> u64 {
        self.numel() as u64 * self.dtype.size()
    }
    pub fn dim(&self, i: usize) -> usize {
        self.shape[i]
    }

    /// Same data, new shape (element count must match).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != self.numel() {
            return shape_err("reshape", format!("cannot view {:?} as {:?}", self.shape, shape));
        }
        Ok(Tensor { shape: shape.to_vec(), ..self.clone() })
    }

    /// A contiguous sub-range along dimension 0: rows `start..start+len`.
    pub fn narrow0(&self, start: usize, len: usize) -> Result<Tensor> {
        let rows = *self.shape.first().unwrap_or(&1);
        if start + len > rows {
            return shape_err("narrow", format!("rows {start}..{} of {:?}", start + len, self.shape));
        }
        let row_bytes = self.bytes() / rows.max(1) as u64;
        let mut shape = self.shape.clone();
        shape[0] = len;
        Ok(Tensor { offset: self.offset + start as u64 * row_bytes, shape, ..self.clone() })
    }

    /// Binds elements `lo..hi` of this tensor. The binding starts at the nearest aligned byte
    /// at or below `lo`; `shift` says how many elements in the window precede `lo`.
    pub fn window(&self, lo: usize, hi: usize, op: &'static str) -> Result<Window> {
        let es = self.dtype.size();
        let align = self.gpu.limits.min_storage_buffer_offset_alignment.max(4) as u64;
        let byte_lo = self.offset + lo as u64 * es;
        let start = byte_lo / align * align;
        let end = (self.offset + hi.max(lo + 1) as u64 * es).div_ceil(16) * 16;
        // Planning tensors share one small stand-in buffer: keep the real extent for the checks.
        let end = if self.gpu.is_planning() { end } else { end.min(self.buf.buffer.size()) };
        let size = end - start;
        if self.gpu.is_planning() {
            // A plan reports the largest binding instead of stopping at the first too big.
            self.gpu.note_binding(size, op);
        } else if size > self.gpu.max_binding() {
            return Err(Error::BindingTooLarge {
                op,
                what: format!("{:?} elements {lo}..{hi}", self.shape),
                need: Bytes(size),
                limit: Bytes(self.gpu.max_binding()),
            });
        }
        Ok(Window {
            binding: Binding { buffer: self.buf.buffer.clone(), offset: start, size },
            shift: ((byte_lo - start) / es) as u32,
        })
    }

    /// Whether `other` is this very tensor's storage: same buffer, offset, dtype and size.
    pub fn aliases(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf) && self.offset == other.offset && self.numel() == other.numel() && self.dtype == other.dtype
    }

    /// Whether `other` lives in the same device buffer (a view of it, or the same tensor).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// Whether no other tensor or view holds this tensor's buffer, so writing over it is safe.
    pub fn is_exclusive(&self) -> bool {
        Arc::strong_count(&self.buf) == 1
    }

    /// Binds the whole tensor.
    pub fn whole(&self, op: &'static str) -> Result<Window> {
        self.window(0, self.numel(), op)
    }
}

fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != len {
        return shape_err("upload", format!("shape {shape:?} holds {n} elements but {len} were given"));
    }
    Ok(())
}
