// SPDX-License-Identifier: MIT OR Apache-2.0
//! Recorded forwards. A [`Graph`] lists device tensors and the dispatches
//! that read and write them, in order (the ops: [`Graph::dense`],
//! [`Graph::add`], ...); [`Graph::build`] turns it into a [`Forward`]:
//! intermediate tensors get buffers from a pool sized up front (a buffer
//! is reused once its tensor is dead, by tensors of the same columns and
//! format, which keeps the zero padding of rows zero), every dispatch's
//! uniform goes into one buffer, and the bind groups and pipelines are made
//! once. [`Forward::run`] then writes the inputs, encodes every dispatch in
//! one compute pass of one command encoder (wgpu orders the dispatches'
//! reads after the writes they depend on), submits once and reads back
//! only the outputs, through one staging buffer: running it again creates
//! no buffer, bind group or pipeline. [`Forward::time`] runs it with GPU
//! timestamps around each dispatch.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::HostFloat;
use crate::gpu::context::GpuContext;
use crate::gpu::mirror::ChunkTexture;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::tensor::{TENSOR_USAGE, Tensor, TensorShape};

/// A tensor of a [`Graph`] (of that graph only: another graph refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorId {
    graph: u64,
    index: usize,
}

/// Where a graph's tensor lives.
#[derive(Debug, Clone)]
enum Slot {
    /// Written from the host at each run.
    Input(TensorShape),
    /// Written and read by the graph's dispatches; pooled unless an output.
    Intermediate(TensorShape),
    /// A device tensor the caller owns.
    External(Tensor),
    /// Raw bytes a dispatch writes and a later one reads (the int8
    /// activations and their scales); pooled apart from tensors.
    Scratch(u64),
}

/// What a dispatch binds, after its uniform.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    /// A tensor, whole.
    Tensor(TensorId),
    /// A tensor from byte `offset` on (a part of a split layer writes its
    /// columns of y this way).
    TensorFrom(TensorId, u64),
    /// A buffer the graph does not manage (weights, probe data).
    Buffer(wgpu::Buffer),
    /// A tensor's chunks as a texture (gpu::mirror), copied from the tensor
    /// just before the dispatch.
    TensorTexture(TensorId),
    /// A buffer's chunks as a texture made once, on the first build that
    /// binds it, and kept in `mirror` for every later one (weights).
    BufferTexture {
        /// The buffer mirrored.
        buffer: wgpu::Buffer,
        /// Its texture, once made.
        mirror: Arc<Mutex<Option<ChunkTexture>>>,
    },
}

/// One dispatch of a graph.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The pipeline.
    pub(crate) key: PipelineKey,
    /// What it is, for timings (`dense int8 layer/path`).
    pub(crate) label: String,
    /// Its uniform (the kernel's dims struct; 16 or 32 bytes are read).
    pub(crate) uniform: [u32; 8],
    /// Bindings 1.. in order (binding 0 is the uniform).
    pub(crate) bindings: Vec<Bind>,
    /// Workgroups.
    pub(crate) groups: (u32, u32),
}

/// Bytes of a step's uniform bound (the largest dims struct).
const UNIFORM_BYTES: u64 = 32;

/// Tensors and dispatches in order: a forward before it is built.
#[derive(Debug)]
pub struct Graph {
    /// Tells this graph's tensors from another's.
    id: u64,
    slots: Vec<Slot>,
    steps: Vec<Step>,
    inputs: Vec<TensorId>,
    outputs: Vec<TensorId>,
    /// Uniform words that follow the forward's position
    /// ([`Forward::run_at`]): (dispatch, word, per position); the word
    /// holds its recorded value plus `per_position * position`.
    positional: Vec<(usize, usize, u32)>,
    /// int8 activations quantized so far, for Dense layers that read the
    /// same tensor (a query, key and value projection): (x, the weights'
    /// storage, the quantized rows, their scales).
    pub(crate) quantized_rows: Vec<(
        TensorId,
        crate::gpu::shaders::StorageVariant,
        TensorId,
        TensorId,
    )>,
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new()
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        static GRAPHS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Graph {
            id: GRAPHS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            slots: Vec::new(),
            steps: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            positional: Vec::new(),
            quantized_rows: Vec::new(),
        }
    }

    /// A tensor the host writes at each run ([`Forward::run`] takes the
    /// inputs in the order they were declared).
    pub fn input(&mut self, shape: TensorShape) -> TensorId {
        let id = self.slot(Slot::Input(shape));
        self.inputs.push(id);
        id
    }

    /// A device tensor the caller owns, read or written in place.
    pub fn external(&mut self, tensor: &Tensor) -> TensorId {
        self.slot(Slot::External(tensor.clone()))
    }

    /// Marks a tensor as an output: it keeps a buffer of its own, and each
    /// run reads it back ([`Forward::run`] returns the outputs in the order
    /// they were marked, each once).
    pub fn output(&mut self, id: TensorId) -> Result<()> {
        self.slot_of(id)?;
        if !self.outputs.contains(&id) {
            self.outputs.push(id);
        }
        Ok(())
    }

    /// The shape of a tensor of this graph (a scratch buffer: a 1-row f32
    /// shape of its words).
    pub fn shape(&self, id: TensorId) -> Result<TensorShape> {
        match self.slot_of(id)? {
            Slot::Input(s) | Slot::Intermediate(s) => Ok(*s),
            Slot::External(t) => Ok(t.shape()),
            Slot::Scratch(bytes) => TensorShape::new(
                1,
                (*bytes as usize / 4).max(1),
                crate::format::StorageFormat::F32,
            ),
        }
    }

    /// The slot of `id`; `Err` for a tensor of another graph.
    fn slot_of(&self, id: TensorId) -> Result<&Slot> {
        if id.graph != self.id {
            return Err(Error::InvalidArgument(
                "a tensor of another graph was given to this one".to_owned(),
            ));
        }
        Ok(&self.slots[id.index])
    }

    /// Runs `op`, which adds tensors and dispatches; when it fails, the
    /// graph is left as it was before (no half-recorded op, no orphan
    /// tensor), so that the caller may try again.
    pub(crate) fn op<T>(&mut self, op: impl FnOnce(&mut Graph) -> Result<T>) -> Result<T> {
        let (slots, steps) = (self.slots.len(), self.steps.len());
        let (positional, quantized) = (self.positional.len(), self.quantized_rows.len());
        // An op may replace the last dispatch by a fused one (pop_step).
        let last = self.steps.last().cloned();
        let result = op(self);
        if result.is_err() {
            self.slots.truncate(slots);
            self.steps.truncate(steps.saturating_sub(1));
            self.steps.extend(last);
            self.positional.truncate(positional);
            self.quantized_rows.truncate(quantized);
        }
        result
    }

    /// How many dispatches the graph has.
    pub fn dispatches(&self) -> usize {
        self.steps.len()
    }

    /// A new intermediate tensor, written by the step that creates it.
    pub(crate) fn tensor(&mut self, shape: TensorShape) -> TensorId {
        self.slot(Slot::Intermediate(shape))
    }

    /// A new scratch buffer of `bytes`.
    pub(crate) fn scratch(&mut self, bytes: u64) -> TensorId {
        self.slot(Slot::Scratch(bytes.max(4)))
    }

    /// Appends a dispatch.
    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The last dispatch recorded.
    pub(crate) fn last_step(&self) -> Option<&Step> {
        self.steps.last()
    }

    /// Takes the last dispatch back (to record a fused one in its place).
    pub(crate) fn pop_step(&mut self) -> Option<Step> {
        self.steps.pop()
    }

    /// Sets uniform word `word` of the last dispatch (what a positional
    /// word holds at position 0).
    pub(crate) fn set_last_uniform(&mut self, word: usize, value: u32) -> Result<()> {
        let step = self
            .steps
            .last_mut()
            .ok_or_else(|| Error::InvalidArgument("no dispatch to set a uniform of".to_owned()))?;
        let slot = step
            .uniform
            .get_mut(word)
            .ok_or_else(|| Error::InvalidArgument(format!("uniform word {word} of 8")))?;
        *slot = value;
        Ok(())
    }

    /// Makes uniform word `word` of the last dispatch follow the position
    /// of each run: `recorded + per_position * position`
    /// ([`Forward::run_at`]).
    pub(crate) fn follow_position(&mut self, word: usize, per_position: u32) -> Result<()> {
        let step =
            self.steps.len().checked_sub(1).ok_or_else(|| {
                Error::InvalidArgument("no dispatch to make positional".to_owned())
            })?;
        if word >= 8 {
            return Err(Error::InvalidArgument(format!("uniform word {word} of 8")));
        }
        self.positional.push((step, word, per_position));
        Ok(())
    }

    /// Whether `id` is written once per run before any dispatch reads it
    /// (an input, or an intermediate by the dispatch that makes it), not an
    /// external tensor that a dispatch may write in place.
    pub(crate) fn written_once(&self, id: TensorId) -> bool {
        self.slot_of(id)
            .is_ok_and(|s| matches!(s, Slot::Input(_) | Slot::Intermediate(_)))
    }

    fn slot(&mut self, slot: Slot) -> TensorId {
        self.slots.push(slot);
        TensorId {
            graph: self.id,
            index: self.slots.len() - 1,
        }
    }

    /// Allocates every buffer (intermediates from a pool, by liveness),
    /// writes the uniforms, compiles the pipelines and binds every
    /// dispatch: the forward, ready to run again and again.
    pub fn build(self, ctx: &mut GpuContext) -> Result<Forward> {
        if self.steps.is_empty() {
            return Err(Error::InvalidArgument(
                "a forward needs at least one dispatch".to_owned(),
            ));
        }
        let (buffers, tensor_bytes) = self.allocate(ctx)?;
        let align =
            u64::from(ctx.device.limits().min_uniform_buffer_offset_alignment).max(UNIFORM_BYTES);
        let stride = UNIFORM_BYTES.div_ceil(align) * align;
        let mut uniforms = vec![0u8; self.steps.len() * stride as usize];
        for (i, step) in self.steps.iter().enumerate() {
            let at = i * stride as usize;
            uniforms[at..at + UNIFORM_BYTES as usize]
                .copy_from_slice(bytemuck::cast_slice(&step.uniform));
        }
        let uniform = ctx.upload(
            "forward uniforms",
            &uniforms,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        let positional = self
            .positional
            .iter()
            .map(|&(i, word, per_position)| PositionalWord {
                byte: i as u64 * stride + 4 * word as u64,
                recorded: self.steps[i].uniform[word],
                per_position,
            })
            .collect();
        let mut passes = Vec::with_capacity(self.steps.len());
        // One texture per tensor read as one, refilled before each dispatch that reads it.
        let mut tensor_textures: std::collections::HashMap<usize, ChunkTexture> =
            Default::default();
        for (i, step) in self.steps.iter().enumerate() {
            let pipeline = ctx.compile(step.key)?;
            let mut copies = Vec::new();
            let mut views = Vec::new();
            for bind in &step.bindings {
                match bind {
                    Bind::TensorTexture(id) => {
                        let bytes = match self.slot_of(*id)? {
                            Slot::Scratch(bytes) => *bytes,
                            _ => self.shape(*id)?.bytes(),
                        };
                        let texture = match tensor_textures.entry(id.index) {
                            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
                            std::collections::hash_map::Entry::Vacant(e) => e
                                .insert(ctx.chunk_texture("tensor texture", bytes)?)
                                .clone(),
                        };
                        copies.push((buffers[id.index].clone(), texture.clone()));
                        views.push(texture.view);
                    }
                    Bind::BufferTexture { buffer, mirror } => {
                        let mut slot = mirror.lock().unwrap_or_else(|e| e.into_inner());
                        let texture = match &*slot {
                            Some(t) => t.clone(),
                            None => slot
                                .insert(ctx.mirror_of("weights texture", buffer)?)
                                .clone(),
                        };
                        views.push(texture.view);
                    }
                    _ => {}
                }
            }
            let mut views = views.iter();
            let mut bindings = vec![wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &uniform,
                offset: i as u64 * stride,
                size: std::num::NonZeroU64::new(UNIFORM_BYTES),
            })];
            for bind in &step.bindings {
                bindings.push(match bind {
                    Bind::Tensor(id) => buffers[id.index].as_entire_binding(),
                    Bind::TensorFrom(id, offset) => {
                        let b = &buffers[id.index];
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: b,
                            offset: *offset,
                            size: std::num::NonZeroU64::new(b.size().saturating_sub(*offset)),
                        })
                    }
                    Bind::Buffer(b) => b.as_entire_binding(),
                    Bind::TensorTexture(_) | Bind::BufferTexture { .. } => {
                        wgpu::BindingResource::TextureView(views.next().unwrap_or_else(|| {
                            unreachable!("a view was made for every texture binding")
                        }))
                    }
                });
            }
            let layout = ctx.pipelines.bind_group_layout(step.key.kernel).clone();
            let bind_group = ctx.create_bind_group(step.key.kernel.file(), &layout, &bindings)?;
            passes.push(Pass {
                pipeline,
                bind_group,
                groups: step.groups,
                label: step.label.clone(),
                copies,
            });
        }
        let mut outputs = Vec::with_capacity(self.outputs.len());
        let mut offset = 0u64;
        for id in &self.outputs {
            let shape = self.shape(*id)?;
            outputs.push((buffers[id.index].clone(), shape, offset));
            offset += shape.bytes();
        }
        let staging = if offset > 0 {
            Some(ctx.create_buffer(
                "forward outputs",
                offset,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )?)
        } else {
            None
        };
        let inputs = self
            .inputs
            .iter()
            .map(|id| Ok((buffers[id.index].clone(), self.shape(*id)?)))
            .collect::<Result<_>>()?;
        Ok(Forward {
            passes,
            inputs,
            outputs,
            staging,
            uniform,
            uniforms: std::sync::Mutex::new(uniforms),
            positional,
            timing: OnceLock::new(),
            tensor_bytes,
        })
    }

    /// A buffer for every tensor: inputs and outputs their own, external
    /// tensors theirs, intermediates and scratch from pools, each taken at
    /// its first dispatch and given back after its last; and the bytes of
    /// the buffers it made.
    fn allocate(&self, ctx: &GpuContext) -> Result<(Vec<wgpu::Buffer>, u64)> {
        let mut made = 0u64;
        let mut last_use = vec![None; self.slots.len()];
        for (i, step) in self.steps.iter().enumerate() {
            for bind in &step.bindings {
                if let Bind::Tensor(id) | Bind::TensorFrom(id, _) | Bind::TensorTexture(id) = bind {
                    last_use[id.index] = Some(i);
                }
            }
        }
        let mut buffers: Vec<Option<wgpu::Buffer>> = vec![None; self.slots.len()];
        for (i, slot) in self.slots.iter().enumerate() {
            let own = match slot {
                Slot::Input(shape) => Some(shape.bytes()),
                Slot::Intermediate(shape) if self.outputs.iter().any(|o| o.index == i) => {
                    Some(shape.bytes())
                }
                Slot::External(t) => {
                    buffers[i] = Some(t.buffer.clone());
                    None
                }
                _ => None,
            };
            if let Some(bytes) = own {
                ctx.check_binding("tensor", bytes)?;
                buffers[i] = Some(ctx.create_buffer("tensor", bytes, TENSOR_USAGE)?);
                made = made.saturating_add(bytes);
            }
        }
        // Free buffers by kind: tensors of the same (cols, format), or scratch.
        let mut free: Vec<(PoolKey, wgpu::Buffer)> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let ids = step.bindings.iter().filter_map(|b| match b {
                Bind::Tensor(id) | Bind::TensorFrom(id, _) | Bind::TensorTexture(id) => Some(*id),
                Bind::Buffer(_) | Bind::BufferTexture { .. } => None,
            });
            // Each tensor once, though a dispatch may bind it twice (an add
            // of a tensor to itself): freed twice, its buffer would go to
            // two live tensors.
            let mut ids: Vec<TensorId> = ids.collect();
            ids.sort_by_key(|id| id.index);
            ids.dedup();
            for id in &ids {
                if buffers[id.index].is_some() {
                    continue;
                }
                let (key, bytes) = match &self.slots[id.index] {
                    Slot::Intermediate(shape) => {
                        (PoolKey::Tensor(shape.cols(), shape.format()), shape.bytes())
                    }
                    Slot::Scratch(bytes) => (PoolKey::Scratch, *bytes),
                    _ => unreachable!("inputs, outputs and external tensors have buffers"),
                };
                let found = free
                    .iter()
                    .position(|(k, b)| *k == key && b.size() >= bytes);
                buffers[id.index] = Some(match found {
                    Some(at) => free.swap_remove(at).1,
                    None => {
                        ctx.check_binding("tensor", bytes)?;
                        made = made.saturating_add(bytes);
                        ctx.create_buffer("pooled tensor", bytes, TENSOR_USAGE)?
                    }
                });
            }
            for id in ids {
                let pooled = matches!(
                    self.slots[id.index],
                    Slot::Intermediate(_) | Slot::Scratch(_)
                ) && !self.outputs.contains(&id);
                if pooled && last_use[id.index] == Some(i) {
                    let key = match &self.slots[id.index] {
                        Slot::Intermediate(shape) => PoolKey::Tensor(shape.cols(), shape.format()),
                        _ => PoolKey::Scratch,
                    };
                    if let Some(b) = buffers[id.index].clone() {
                        free.push((key, b));
                    }
                }
            }
        }
        let buffers = buffers
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                b.ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "tensor {i} of the forward is declared but no dispatch uses it"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok((buffers, made))
    }
}

/// Which free buffers a pooled tensor may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolKey {
    /// Tensors of these columns and format (their padding is the same).
    Tensor(usize, crate::format::StorageFormat),
    /// Scratch buffers, which their writer fills whole.
    Scratch,
}

/// One bound dispatch.
struct Pass {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
    label: String,
    /// Tensors copied into their textures before the dispatch.
    copies: Vec<(wgpu::Buffer, ChunkTexture)>,
}

impl Pass {
    fn encode_copies(&self, encoder: &mut wgpu::CommandEncoder) {
        for (buffer, texture) in &self.copies {
            crate::gpu::mirror::encode_copy(encoder, buffer, texture);
        }
    }
}

/// A built graph, ready to run again and again.
pub struct Forward {
    passes: Vec<Pass>,
    inputs: Vec<(wgpu::Buffer, TensorShape)>,
    /// Each output's buffer, shape and offset in `staging`.
    outputs: Vec<(wgpu::Buffer, TensorShape, u64)>,
    staging: Option<wgpu::Buffer>,
    /// Every dispatch's uniform (bound by the bind groups).
    uniform: wgpu::Buffer,
    /// The host's copy of `uniform`, patched for each position.
    uniforms: std::sync::Mutex<Vec<u8>>,
    /// The words that follow the position ([`Forward::run_at`]).
    positional: Vec<PositionalWord>,
    /// Timestamp queries and their buffers, made at the first timed run.
    timing: OnceLock<Timing>,
    /// Bytes of the buffers made for its tensors.
    tensor_bytes: u64,
}

/// How long a timed run took.
#[derive(Debug, Clone)]
pub struct ForwardTiming {
    /// From submission to completion, seen by the host.
    pub wall: Duration,
    /// The GPU's timestamps from the first dispatch's start to the last's
    /// end, where the adapter has timestamp queries.
    pub gpu: Option<Duration>,
    /// Each dispatch's GPU time (label, duration), where it has them.
    pub dispatches: Vec<(String, Duration)>,
}

/// A uniform word that follows the position of a run.
#[derive(Debug, Clone, Copy)]
struct PositionalWord {
    /// Its byte in the uniform buffer.
    byte: u64,
    /// Its value as recorded (at position 0).
    recorded: u32,
    /// What one position adds.
    per_position: u32,
}

struct Timing {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Forward {
    /// How many dispatches one run makes.
    pub fn dispatches(&self) -> usize {
        self.passes.len()
    }

    /// Bytes of its tensors' buffers (inputs, outputs, the pooled
    /// intermediates and scratch): the activation memory of a run, external
    /// tensors not counted.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensor_bytes
    }

    /// Writes `inputs` (one per declared input, `[rows, cols]` each), runs
    /// every dispatch in one submission and returns the outputs, read back
    /// together.
    pub fn run<T: HostFloat>(&self, ctx: &GpuContext, inputs: &[&[T]]) -> Result<Vec<Vec<T>>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::InvalidArgument(format!(
                "the forward takes {} inputs, {} were given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        let mut words = Vec::with_capacity(inputs.len());
        for ((_, shape), values) in self.inputs.iter().zip(inputs) {
            words.push(shape.encode(values)?);
        }
        let out = self.run_words(ctx, &words)?;
        Ok(self
            .outputs
            .iter()
            .zip(out)
            .map(|((_, shape, _), w)| shape.decode(&w))
            .collect())
    }

    /// Whether some dispatch follows the position ([`Forward::run_at`]).
    pub fn is_positional(&self) -> bool {
        !self.positional.is_empty()
    }

    /// [`Forward::run`] at `position`: the dispatches that follow the
    /// position (a decode step's rotary offset, the cache row it writes,
    /// the keys it attends to) run as recorded plus `position` steps. One
    /// write of the uniform buffer; no buffer or bind group is made. The
    /// caller keeps `position` within what the graph's tensors hold (a
    /// KV cache's rows): the kernels clamp what lies past them. Runs of one
    /// forward from several threads take turns.
    pub fn run_at<T: HostFloat>(
        &self,
        ctx: &GpuContext,
        inputs: &[&[T]],
        position: usize,
    ) -> Result<Vec<Vec<T>>> {
        let mut uniforms = self.lock_uniforms()?;
        self.write_position(ctx, &mut uniforms, position)?;
        self.run(ctx, inputs)
    }

    /// Writes the uniform words that follow the position for `position`
    /// (for a later [`Forward::time`] or [`Forward::submit`]).
    pub fn set_position(&self, ctx: &GpuContext, position: usize) -> Result<()> {
        let mut uniforms = self.lock_uniforms()?;
        self.write_position(ctx, &mut uniforms, position)
    }

    fn lock_uniforms(&self) -> Result<std::sync::MutexGuard<'_, Vec<u8>>> {
        self.uniforms
            .lock()
            .map_err(|_| Error::InvalidArgument("a forward poisoned by a panic".to_owned()))
    }

    fn write_position(&self, ctx: &GpuContext, uniforms: &mut [u8], position: usize) -> Result<()> {
        if self.positional.is_empty() {
            return Ok(());
        }
        let position = u32::try_from(position)
            .map_err(|_| Error::InvalidArgument(format!("position {position} is past u32")))?;
        for w in &self.positional {
            let value = position
                .checked_mul(w.per_position)
                .and_then(|v| v.checked_add(w.recorded))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("position {position} overflows a kernel's u32"))
                })?;
            let at = w.byte as usize;
            uniforms[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        ctx.queue.write_buffer(&self.uniform, 0, uniforms);
        Ok(())
    }

    /// [`Forward::run`] with inputs and outputs as the tensors' words,
    /// padded rows included.
    pub(crate) fn run_words(&self, ctx: &GpuContext, inputs: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        ctx.scoped("run of a recorded forward", || {
            for ((buffer, _), words) in self.inputs.iter().zip(inputs) {
                ctx.queue
                    .write_buffer(buffer, 0, bytemuck::cast_slice(words));
            }
            let mut encoder = self.encode(ctx);
            if let Some(staging) = &self.staging {
                for (buffer, shape, offset) in &self.outputs {
                    encoder.copy_buffer_to_buffer(buffer, 0, staging, *offset, shape.bytes());
                }
            }
            ctx.submit(encoder);
        })?;
        let Some(staging) = &self.staging else {
            ctx.wait()?;
            return Ok(Vec::new());
        };
        ctx.read_mapped(staging, |words| {
            self.outputs
                .iter()
                .map(|(_, shape, offset)| {
                    let at = (*offset / 4) as usize;
                    words[at..at + (shape.bytes() / 4) as usize].to_vec()
                })
                .collect()
        })
    }

    /// Encodes every dispatch and submits, without writing inputs, reading
    /// outputs or waiting: the host's cost of a replay.
    pub fn submit(&self, ctx: &GpuContext) -> Result<()> {
        ctx.scoped("submission of a recorded forward", || {
            let encoder = self.encode(ctx);
            ctx.submit(encoder);
        })
    }

    /// Every dispatch in one compute pass, split only where a tensor is
    /// copied into a texture between two dispatches.
    fn encode(&self, ctx: &GpuContext) -> wgpu::CommandEncoder {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let mut at = 0;
        while at < self.passes.len() {
            self.passes[at].encode_copies(&mut encoder);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            loop {
                let p = &self.passes[at];
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &p.bind_group, &[]);
                pass.dispatch_workgroups(p.groups.0, p.groups.1, 1);
                at += 1;
                if at == self.passes.len() || !self.passes[at].copies.is_empty() {
                    break;
                }
            }
        }
        encoder
    }

    /// Runs once (inputs as last written) and waits, with GPU timestamps
    /// around each dispatch where the adapter has them (each dispatch in a
    /// pass of its own then), else the wall clock alone.
    pub fn time(&self, ctx: &GpuContext) -> Result<ForwardTiming> {
        if !ctx.capabilities().timestamp_query {
            let start = Instant::now();
            self.submit(ctx)?;
            ctx.wait()?;
            return Ok(ForwardTiming {
                wall: start.elapsed(),
                gpu: None,
                dispatches: Vec::new(),
            });
        }
        let timing = match self.timing.get() {
            Some(t) => t,
            None => {
                let made = self.timing_resources(ctx)?;
                self.timing.get_or_init(|| made)
            }
        };
        let count = 2 * self.passes.len() as u32;
        let start = Instant::now();
        ctx.scoped("timed run of a recorded forward", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            for (i, p) in self.passes.iter().enumerate() {
                p.encode_copies(&mut encoder);
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &timing.queries,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &p.bind_group, &[]);
                pass.dispatch_workgroups(p.groups.0, p.groups.1, 1);
            }
            encoder.resolve_query_set(&timing.queries, 0..count, &timing.resolve, 0);
            encoder.copy_buffer_to_buffer(
                &timing.resolve,
                0,
                &timing.staging,
                0,
                u64::from(count) * 8,
            );
            ctx.submit(encoder);
        })?;
        let ticks: Vec<u64> = ctx.read_mapped(&timing.staging, |words| {
            words
                .chunks_exact(2)
                .map(|p| u64::from(p[0]) | (u64::from(p[1]) << 32))
                .collect()
        })?;
        let wall = start.elapsed();
        let period = f64::from(ctx.queue.get_timestamp_period());
        let span =
            |a: u64, b: u64| Duration::from_secs_f64(b.saturating_sub(a) as f64 * period * 1e-9);
        let dispatches = self
            .passes
            .iter()
            .zip(ticks.chunks_exact(2))
            .map(|(p, t)| (p.label.clone(), span(t[0], t[1])))
            .collect();
        Ok(ForwardTiming {
            wall,
            gpu: Some(span(ticks[0], ticks[ticks.len() - 1])),
            dispatches,
        })
    }

    fn timing_resources(&self, ctx: &GpuContext) -> Result<Timing> {
        let count = 2 * self.passes.len() as u32;
        let bytes = u64::from(count) * 8;
        let queries = ctx.scoped("timestamp queries", || {
            ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("forward timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            })
        })?;
        Ok(Timing {
            queries,
            resolve: ctx.create_buffer(
                "timestamps",
                bytes,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            )?,
            staging: ctx.create_buffer(
                "timestamps read-back",
                bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )?,
        })
    }
}
