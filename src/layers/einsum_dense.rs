// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's EinsumDense, for the equations that are a Dense over the input's
//! last axes: `"abc,cd->abd"` (any number of leading axes),
//! MultiHeadAttention's `"abc,cde->abde"` (outputs split into heads) and
//! `"abcd,cde->abe"` (heads merged). The kernel is the flattened `[k, n]`
//! of the one Dense launch; the input is reshaped to rows of `k` before it
//! and the output to its last axis after it.

use serde_json::Value;

use super::{activation, int8_weight_only, stored_or_quantized};
use crate::error::{Error, Result};
use crate::format::kernel::KernelAxes;
use crate::format::{DenseKernel, WeightFormat};
use crate::io::h5::LayerVariables;
use crate::ops::Activation;

/// A Keras EinsumDense whose equation is a Dense over the last axes.
#[derive(Debug, Clone)]
pub struct EinsumDense {
    /// `equation`.
    pub equation: String,
    /// The contracted axes' sizes (the input's last axes).
    pub contracted: Vec<usize>,
    /// The kernel's output axes' sizes (the output's last axes).
    pub outputs: Vec<usize>,
    /// `activation`.
    pub activation: Activation,
    /// Its `Int8QuantizationConfig` has no activation quantizer.
    pub int8_weight_only: bool,
    /// How Keras lays its variables out.
    pub axes: KernelAxes,
    /// The kernel, flattened to `[k, n]`.
    pub kernel: DenseKernel,
}

/// The axes of a supported equation: leading (the batch's included),
/// contracted and output letters.
struct Letters {
    lead: String,
    contracted: String,
    outputs: String,
}

fn parse(equation: &str) -> Result<Letters> {
    let unsupported = |why: &str| {
        Err(Error::Unsupported(format!(
            "an EinsumDense of equation '{equation}': {why}; the equations read are a Dense over \
             the last axes ('abc,cd->abd'), 'abc,cde->abde' and 'abcd,cde->abe'"
        )))
    };
    let Some((inputs, out)) = equation.split_once("->") else {
        return unsupported("no '->'");
    };
    let Some((lhs, rhs)) = inputs.split_once(',') else {
        return unsupported("not two operands");
    };
    let distinct = |s: &str| {
        s.chars().all(|c| c.is_ascii_lowercase())
            && s.chars().collect::<std::collections::HashSet<_>>().len() == s.len()
    };
    if !distinct(lhs) || !distinct(rhs) || !distinct(out) {
        return unsupported("letters must be distinct lower-case letters (no ellipsis)");
    }
    let contracted: String = lhs
        .chars()
        .filter(|c| rhs.contains(*c) && !out.contains(*c))
        .collect();
    let lead = &lhs[..lhs.len() - contracted.len()];
    if contracted.is_empty()
        || !lhs.ends_with(contracted.as_str())
        || !rhs.starts_with(contracted.as_str())
        || lead.is_empty()
    {
        return unsupported("the contracted axes are not the input's last and the kernel's first");
    }
    let outputs = &rhs[contracted.len()..];
    if outputs.is_empty() || out != format!("{lead}{outputs}") {
        return unsupported("the output is not the input's leading axes and the kernel's last");
    }
    Ok(Letters {
        lead: lead.to_owned(),
        contracted,
        outputs: outputs.to_owned(),
    })
}

impl EinsumDense {
    /// The output shape (without the batch axis) for an input of `x`.
    pub fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        let lead = x.len().checked_sub(self.contracted.len());
        match lead {
            Some(lead) if x[lead..] == self.contracted[..] => {
                let mut y = x[..lead].to_vec();
                y.extend_from_slice(&self.outputs);
                Ok(y)
            }
            _ => Err(Error::Shape(format!(
                "an input of shape {x:?} into an EinsumDense '{}' contracting axes of {:?}",
                self.equation, self.contracted
            ))),
        }
    }
}

/// An EinsumDense from its config, its input's shape (without the batch
/// axis), the weight format its policy gives and its variables.
pub fn einsum_dense(
    config: &Value,
    input: &[usize],
    format: impl Fn(bool) -> Result<WeightFormat>,
    vars: &LayerVariables,
) -> Result<EinsumDense> {
    let equation = config
        .get("equation")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Unsupported("an EinsumDense config without 'equation'".into()))?
        .to_owned();
    let letters = parse(&equation)?;
    // The input has every leading axis but the batch's.
    if input.len() + 1 != letters.lead.len() + letters.contracted.len() {
        return Err(Error::Shape(format!(
            "an input of shape {input:?} into an EinsumDense '{equation}'"
        )));
    }
    let contracted = input[input.len() - letters.contracted.len()..].to_vec();
    let partial: Vec<Option<usize>> = match config.get("output_shape") {
        Some(Value::Number(n)) => vec![n.as_u64().map(|v| v as usize)],
        Some(Value::Array(a)) => a.iter().map(|v| v.as_u64().map(|v| v as usize)).collect(),
        other => {
            return Err(Error::Unsupported(format!(
                "an EinsumDense whose output_shape is {}",
                other.unwrap_or(&Value::Null)
            )));
        }
    };
    let outputs: Option<Vec<usize>> = partial
        .len()
        .checked_sub(letters.outputs.len())
        .and_then(|at| partial[at..].iter().copied().collect());
    let outputs = outputs
        .filter(|o| o.iter().all(|&d| d > 0))
        .ok_or_else(|| {
            Error::Shape(format!(
                "an EinsumDense '{equation}' whose output_shape {partial:?} does not give its \
             kernel's output axes"
            ))
        })?;
    let use_bias = match config.get("bias_axes") {
        None | Some(Value::Null) => false,
        Some(Value::String(b)) if b.is_empty() => false,
        Some(Value::String(b)) if *b == letters.outputs => true,
        Some(other) => {
            return Err(Error::Unsupported(format!(
                "an EinsumDense '{equation}' with bias_axes {other}; a bias over all the \
                 kernel's output axes ('{}') or none is read",
                letters.outputs
            )));
        }
    };
    let lead = letters.lead.len();
    let axes = match (contracted.as_slice(), outputs.as_slice()) {
        ([_], [_]) => KernelAxes::Einsum { lead },
        ([_], &[heads, head_dim]) if lead == 2 => KernelAxes::HeadsOut { heads, head_dim },
        (&[heads, head_dim], [_]) if lead == 2 => KernelAxes::HeadsIn { heads, head_dim },
        _ => {
            return Err(Error::Unsupported(format!(
                "an EinsumDense '{equation}' contracting {} axes into {} with {lead} leading \
                 axes",
                contracted.len(),
                outputs.len()
            )));
        }
    };
    let product = |dims: &[usize]| -> Result<usize> {
        dims.iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::Shape(format!("an EinsumDense '{equation}' of axes {dims:?}")))
    };
    let (k, n) = (product(&contracted)?, product(&outputs)?);
    let weight_only = int8_weight_only(config);
    let kernel = stored_or_quantized(vars, use_bias, format(weight_only)?, (k, n), axes)?;
    Ok(EinsumDense {
        equation,
        contracted,
        outputs,
        activation: activation(config.get("activation"))?,
        int8_weight_only: weight_only,
        axes,
        kernel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equations_split_into_leading_contracted_and_output_axes() {
        let l = parse("abc,cde->abde").unwrap();
        assert_eq!(
            (l.lead.as_str(), l.contracted.as_str(), l.outputs.as_str()),
            ("ab", "c", "de")
        );
        let l = parse("abcd,cde->abe").unwrap();
        assert_eq!(
            (l.lead.as_str(), l.contracted.as_str(), l.outputs.as_str()),
            ("ab", "cd", "e")
        );
        for bad in [
            "ab,bc",
            "ab,cb->ac",
            "abc,cd->adb",
            "ab,bc->abc",
            "a...b,bc->a...c",
            "aa,ab->ab",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
