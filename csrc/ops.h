// Shared by the CPU and CUDA registrations: input validation for bgbench::composite.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

#include "kernels/composite.h"

namespace bgbench {

// Checks x [N, C, H, W], m [N, 1|C, H, W] and b [1|N, 1|C, H, W] (dtype, device, shape) with
// TORCH_CHECK errors that name the argument, and returns the broadcast sizes.
CompositeShape check_composite(const at::Tensor& x, const at::Tensor& m,
                               const std::optional<at::Tensor>& b);

// Checks composite_into's outputs: out [N, C, H, W] and mean_m, mean_b [N], contiguous, on x's
// device with x's dtype, sharing no memory with the inputs or each other.
void check_composite_into(const at::Tensor& x, const at::Tensor& m,
                          const std::optional<at::Tensor>& b, const at::Tensor& out,
                          const at::Tensor& mean_m, const at::Tensor& mean_b);

// check_composite, plus grad_out [N, C, H, W] and the two mean gradients [N].
CompositeShape check_composite_backward(const at::Tensor& grad_out, const at::Tensor& grad_mean_m,
                                        const at::Tensor& grad_mean_b, const at::Tensor& x,
                                        const at::Tensor& m, const std::optional<at::Tensor>& b);

}  // namespace bgbench
