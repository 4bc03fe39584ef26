//! Dispatch recorder: ops append dispatches here; a flush encodes all of them into one compute
//! pass and one submit, with every dispatch's small parameter block packed into one uniform
//! arena (one queue write per flush instead of one buffer per dispatch).

use super::pipelines::Kernel;
use crate::error::{Error, Result};
use std::sync::Arc;

/// A byte range of a device buffer bound to one storage slot.
#[derive(Clone)]
pub struct Binding {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

struct Dispatch {
    kernel: Arc<Kernel>,
    params_at: u64,
    params_len: u64,
    bindings: Vec<(u32, Binding)>,
    groups: [u32; 3],
}

pub(super) struct Recorder {
    pending: Vec<Dispatch>,
    params: Vec<u8>,
    arena: Option<wgpu::Buffer>,
    align: u64,
    timer: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer)>,
}

impl Recorder {
    pub(super) fn new(device: &wgpu::Device) -> Self {
        let align = device.limits().min_uniform_buffer_offset_alignment.max(16) as u64;
        Recorder { pending: Vec::new(), params: Vec::new(), arena: None, align, timer: None }
    }

    pub(super) fn push(&mut self, kernel: Arc<Kernel>, params: &[u32], bindings: Vec<(u32, Binding)>, groups: [u32; 3]) {
        let at = self.params.len() as u64;
        // Uniform blocks are read in 16-byte rows: pad to 16, and to the offset alignment.
        let mut len = (params.len() as u64 * 4).div_ceil(16) * 16;
        len = len.max(16);
        self.params.extend_from_slice(bytemuck::cast_slice(params));
        let next = (at + len).div_ceil(self.align) * self.align;
        self.params.resize(next as usize, 0);
        self.pending.push(Dispatch { kernel, params_at: at, params_len: len, bindings, groups });
    }

    fn encode(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, timed: bool) -> Result<Option<wgpu::CommandEncoder>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let need = self.params.len() as u64;
        if self.arena.as_ref().is_none_or(|a| a.size() < need) {
            self.arena = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("t2v params arena"),
                size: need.next_power_of_two().max(4096),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let arena = self.arena.clone().ok_or_else(|| Error::Gpu("params arena missing".into()))?;
        queue.write_buffer(&arena, 0, &self.params);
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("t2v") });
        {
            let timestamp_writes = match (&self.timer, timed) {
                (Some((qs, _, _)), true) => Some(wgpu::ComputePassTimestampWrites {
                    query_set: qs,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
                _ => None,
            };
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("t2v"), timestamp_writes });
            for d in &self.pending {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &arena,
                        offset: d.params_at,
                        size: wgpu::BufferSize::new(d.params_len),
                    }),
                }];
                for (slot, b) in &d.bindings {
                    entries.push(wgpu::BindGroupEntry {
                        binding: *slot,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &b.buffer,
                            offset: b.offset,
                            size: wgpu::BufferSize::new(b.size),
                        }),
                    });
                }
                let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &d.kernel.layout,
                    entries: &entries,
                });
                pass.set_pipeline(&d.kernel.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        self.pending.clear();
        self.params.clear();
        Ok(Some(enc))
    }

    pub(super) fn submit(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<()> {
        if let Some(enc) = self.encode(device, queue, false)? {
            queue.submit([enc.finish()]);
        }
        Ok(())
    }

    /// Submits with timestamps around the pass and waits; returns GPU seconds.
    pub(super) fn submit_timed(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, has_ts: bool) -> Result<Option<f64>> {
        if !has_ts {
            self.submit(device, queue)?;
            device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
            return Ok(None);
        }
        if self.timer.is_none() {
            let qs = device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("t2v timer"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("t2v timer resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("t2v timer read"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.timer = Some((qs, resolve, read));
        }
        let Some(mut enc) = self.encode(device, queue, true)? else { return Ok(Some(0.0)) };
        let (qs, resolve, read) = self.timer.as_ref().ok_or_else(|| Error::Gpu("timer missing".into()))?;
        enc.resolve_query_set(qs, 0..2, resolve, 0);
        enc.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
        queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        read.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        rx.recv()
            .map_err(|_| Error::Gpu("timer callback never ran".into()))?
            .map_err(|e| Error::Gpu(e.to_string()))?;
        let ticks: [u64; 2] = {
            let v = read.get_mapped_range(..).map_err(|e| Error::Gpu(e.to_string()))?;
            let t: &[u64] = bytemuck::cast_slice(&v);
            [t[0], t[1]]
        };
        read.unmap();
        let period = queue.get_timestamp_period() as f64;
        Ok(Some(ticks[1].saturating_sub(ticks[0]) as f64 * period * 1e-9))
    }
}
