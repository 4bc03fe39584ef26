//! Compiled compute pipelines, cached by a readable key ("matmul:matmul_vec4[TM=4,TN=16]").

use super::shader::preprocess;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shared WGSL prelude: the f16 switch and the 2-D grid helper every kernel uses.
const COMMON: &str = include_str!("../../shaders/common.wgsl");

pub struct Kernel {
    pub key: String,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// The cache key of a kernel variant: "name:entry[DEFINE=value,…]".
pub(super) fn key(name: &str, entry: &str, defines: &[(&str, String)]) -> String {
    let mut key = format!("{name}:{entry}");
    if !defines.is_empty() {
        let d: Vec<String> = defines.iter().map(|(k, v)| format!("{k}={v}")).collect();
        key = format!("{key}[{}]", d.join(","));
    }
    key
}

/// The WGSL a variant compiles: the shared prelude and the kernel file, preprocessed. A kernel's
/// own `enable` directives go first (WGSL allows them only before any declaration).
pub(super) fn source(name: &str, source: &str, defines: &[(&str, String)]) -> Result<String> {
    let (enables, body): (Vec<&str>, Vec<&str>) = source.lines().partition(|l| l.starts_with("enable "));
    preprocess(name, &format!("{}\n{COMMON}\n{}", enables.join("\n"), body.join("\n")), defines)
}

#[derive(Default)]
pub(super) struct PipelineCache {
    map: Mutex<HashMap<String, Arc<Kernel>>>,
}

fn unchecked_shaders() -> bool {
    // Bounds checks cost a clamp per load; the kernels keep their indices in range themselves
    // (tests poison outputs and run awkward shapes). T2V_SHADER_CHECKS=1 turns them back on.
    std::env::var("T2V_SHADER_CHECKS").map(|v| v == "0" || v.is_empty()).unwrap_or(true)
}

impl PipelineCache {
    pub(super) fn get(
        &self,
        device: &wgpu::Device,
        name: &str,
        source: &str,
        entry: &str,
        defines: &[(&str, String)],
    ) -> Result<Arc<Kernel>> {
        let key = key(name, entry, defines);
        if let Some(k) = self.map.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(k.clone());
        }
        let text = self::source(name, source, defines)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor { label: Some(&key), source: wgpu::ShaderSource::Wgsl(text.into()) };
        let module = if unchecked_shaders() {
            // SAFETY: every kernel clamps or masks its own indices; see unchecked_shaders().
            unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        } else {
            device.create_shader_module(desc)
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&key),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader { name: key, msg: e.to_string() });
        }
        let layout = pipeline.get_bind_group_layout(0);
        let k = Arc::new(Kernel { key: key.clone(), pipeline, layout });
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(key, k.clone());
        Ok(k)
    }
}
