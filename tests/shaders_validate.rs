// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every shader variant composes, parses and validates with naga, and
//! translates to SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) and GLSL
//! (OpenGL): a broken or unportable shader fails here, without an adapter.
//! Each kernel's declared bindings (`Kernel::spec`) are the ones naga
//! reflects from its WGSL. The override values pipelines set (activations,
//! embedding modes) translate too.

use dtype_policy::gpu::kernels::{Binding, Kernel};
use dtype_policy::gpu::shaders::{StorageVariant, XShare, compose};
use dtype_policy::ops::Activation;
use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn validate(
    kernel: Kernel,
    storage: StorageVariant,
    x_share: XShare,
    constants: &naga::back::PipelineConstants,
) -> Result<(), String> {
    let label = format!("{kernel:?}/{storage:?}/{x_share:?}/{constants:?}");
    let source = compose(kernel, storage, x_share).map_err(|e| e.to_string())?;
    let subgroups = x_share.uses_subgroups();
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| format!("{label}: {}", e.emit_to_string(&source)))?;
    // wgpu grants pack/unpack2x16float on every backend it runs compute on.
    let mut caps = Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    if storage.needs_shader_f16() {
        caps |= Capabilities::SHADER_FLOAT16;
    }
    if storage.needs_shader_f64() {
        caps |= Capabilities::FLOAT64;
    }
    // What wgpu grants with Features::SHADER_INT64 (the wide read probe).
    let int64 = kernel.spec().needs_int64;
    if int64 {
        caps |= Capabilities::SHADER_INT64;
    }
    // What wgpu grants with Features::SUBGROUP.
    if subgroups {
        caps |= Capabilities::SUBGROUP;
    }
    let mut validator = Validator::new(ValidationFlags::all(), caps);
    if subgroups {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    let info = validator
        .validate(&module)
        .map_err(|e| format!("{label}: {}", e.emit_to_string(&source)))?;
    // Overrides take `constants`, the rest their defaults, as a pipeline's would.
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, constants)
            .map_err(|e| format!("{label}: overrides: {e}"))?;
    let module = module.into_owned();
    let info = info.into_owned();

    spv::write_vec(&module, &info, &spv::Options::default(), None)
        .map_err(|e| format!("{label}: SPIR-V: {e}"))?;

    // Metal has no f64: wgpu never offers SHADER_F64 there, so the f64
    // variant is never chosen on Metal.
    if !storage.needs_shader_f64() {
        let mut msl_out = String::new();
        let msl_pipeline = msl::PipelineOptions::default();
        msl::Writer::new(&mut msl_out)
            .write(&module, &info, &msl::Options::default(), &msl_pipeline)
            .map_err(|e| format!("{label}: MSL: {e}"))?;
    }

    let mut hlsl_out = String::new();
    let hlsl_options = hlsl::Options {
        // Wave intrinsics need shader model 6.0, f16 types 6.2.
        // 64-bit integers 6.0.
        shader_model: if storage.needs_shader_f16() {
            hlsl::ShaderModel::V6_2
        } else if subgroups || int64 {
            hlsl::ShaderModel::V6_0
        } else {
            hlsl::ShaderModel::V5_1
        },
        ..Default::default()
    };
    hlsl::Writer::new(&mut hlsl_out, &hlsl_options, &Default::default())
        .write(&module, &info, None)
        .map_err(|e| format!("{label}: HLSL: {e}"))?;

    // GL has no f16 storage and no SHADER_INT64 in wgpu: the native f16
    // variant and the wide read probe never run there.
    if !storage.needs_shader_f16() && !int64 {
        let mut glsl_out = String::new();
        let options = glsl::Options {
            version: glsl::Version::Desktop(430),
            ..Default::default()
        };
        let pipeline = glsl::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: "main".to_owned(),
            multiview: None,
        };
        glsl::Writer::new(
            &mut glsl_out,
            &module,
            &info,
            &options,
            &pipeline,
            Default::default(),
        )
        .and_then(|mut w| w.write())
        .map_err(|e| format!("{label}: GLSL: {e}"))?;
    }
    Ok(())
}

#[test]
fn every_kernel_variant_validates_and_translates_to_every_backend() {
    let mut failures = Vec::new();
    for kernel in Kernel::ALL {
        for storage in StorageVariant::ALL
            .into_iter()
            .filter(|s| kernel.supports(*s))
        {
            for x_share in XShare::ALL {
                if let Err(e) = validate(kernel, storage, x_share, &Default::default()) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The override values pipelines set beyond the defaults, per kernel: every
/// activation of the stand-alone activation and the matrix-vector Dense
/// kernel, every table mode of the embedding gather, by id and by position.
fn overrides_in_use(kernel: Kernel) -> Vec<naga::back::PipelineConstants> {
    let one = |pairs: &[(&str, f64)]| -> naga::back::PipelineConstants {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    match kernel {
        Kernel::Activate | Kernel::DenseMatVec => Activation::ALL
            .iter()
            .map(|a| one(&[("ACTIVATION", f64::from(*a as u32))]))
            .collect(),
        Kernel::Embedding => (0..4)
            .flat_map(|mode| {
                [0.0, 1.0].map(|p| one(&[("MODE", f64::from(mode)), ("POSITIONS", p)]))
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_override_value_in_use_translates_to_every_backend() {
    let mut failures = Vec::new();
    for kernel in [Kernel::Activate, Kernel::DenseMatVec, Kernel::Embedding] {
        // f64 kernels apply linear and relu only.
        let storages = StorageVariant::ALL
            .into_iter()
            .filter(|s| kernel.supports(*s) && *s != StorageVariant::F64);
        for storage in storages {
            for constants in overrides_in_use(kernel) {
                if let Err(e) = validate(kernel, storage, XShare::Plain, &constants) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What naga reflects of one binding: uniform or storage (read-only or
/// not), and the bytes of the uniform struct or of one array element.
fn reflected_bindings(kernel: Kernel, storage: StorageVariant) -> Vec<(u32, Binding)> {
    let source = compose(kernel, storage, XShare::Plain).unwrap();
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    let mut found: Vec<(u32, Binding)> = module
        .global_variables
        .iter()
        .filter_map(|(_, var)| {
            let binding = var.binding.as_ref()?;
            assert_eq!(binding.group, 0, "{kernel:?}: every binding is in group 0");
            let bytes = match &module.types[var.ty].inner {
                naga::TypeInner::Array { stride, .. } => u64::from(*stride),
                _ => u64::from(layouter[var.ty].size),
            };
            let reflected = match var.space {
                naga::AddressSpace::Uniform => Binding::Uniform(bytes),
                naga::AddressSpace::Storage { access } => Binding::Storage {
                    read_only: !access.contains(naga::StorageAccess::STORE),
                    min_bytes: bytes,
                },
                naga::AddressSpace::Handle => match &module.types[var.ty].inner {
                    naga::TypeInner::Image {
                        dim: naga::ImageDimension::D2,
                        arrayed: false,
                        class:
                            naga::ImageClass::Sampled {
                                kind: naga::ScalarKind::Uint,
                                multi: false,
                            },
                    } => Binding::ChunkTexture,
                    other => panic!("{kernel:?}: binding {} is {other:?}", binding.binding),
                },
                other => panic!("{kernel:?}: binding {} in {other:?}", binding.binding),
            };
            Some((binding.binding, reflected))
        })
        .collect();
    found.sort_by_key(|(i, _)| *i);
    found
}

#[test]
fn every_kernels_declared_bindings_are_what_its_wgsl_declares() {
    for kernel in Kernel::ALL {
        let declared = kernel.spec().bindings;
        let variants: Vec<StorageVariant> = StorageVariant::ALL
            .into_iter()
            .filter(|s| kernel.supports(*s))
            .collect();
        // Per binding, the largest element over the kernel's variants: the
        // layout's minimum must be exactly that (smaller, and wgpu refuses
        // the pipeline for some variant; larger, and it refuses buffers
        // that would do).
        let mut largest: Vec<Option<Binding>> = vec![None; declared.len()];
        for &storage in &variants {
            let reflected = reflected_bindings(kernel, storage);
            let indices: Vec<u32> = reflected.iter().map(|(i, _)| *i).collect();
            let expected: Vec<u32> = (0..declared.len() as u32).collect();
            assert_eq!(indices, expected, "{kernel:?}/{storage:?}: binding indices");
            for ((_, got), slot) in reflected.into_iter().zip(&mut largest) {
                *slot = Some(match (*slot, got) {
                    (
                        Some(Binding::Storage {
                            min_bytes: a,
                            read_only,
                        }),
                        Binding::Storage { min_bytes: b, .. },
                    ) => Binding::Storage {
                        read_only,
                        min_bytes: a.max(b),
                    },
                    _ => got,
                });
            }
        }
        let largest: Vec<Binding> = largest.into_iter().map(Option::unwrap).collect();
        assert_eq!(
            largest,
            declared,
            "{kernel:?}: the bindings of shaders/{}.wgsl (left) against Kernel::spec (right)",
            kernel.file()
        );
    }
}
