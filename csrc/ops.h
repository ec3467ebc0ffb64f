// Shared by the CPU and CUDA registrations: input validation for bgbench::composite, and the
// parts of each op that do not depend on the device (allocating outputs, preparing the
// backward's tensors), so a backend writes only its kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

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

// A backend's forward into outputs of the right shapes (checked or freshly allocated).
using ForwardInto = void (*)(const CompositeShape& s, const at::Tensor& x, const at::Tensor& m,
                             const std::optional<at::Tensor>& b, at::Tensor& out,
                             at::Tensor& mean_m, at::Tensor& mean_b);

// bgbench::composite: checks the inputs, allocates the outputs and runs `forward` into them.
// `fresh_output` (or null) sees the image-sized output before anything is written to it.
std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_allocating(
    const at::Tensor& x, const at::Tensor& m, const std::optional<at::Tensor>& b,
    ForwardInto forward, void (*fresh_output)(const at::Tensor&));

// bgbench::composite_into: checks the inputs and the given outputs, then runs `forward`.
void composite_into_checked(const at::Tensor& x, const at::Tensor& m,
                            const std::optional<at::Tensor>& b, at::Tensor& out, at::Tensor& mean_m,
                            at::Tensor& mean_b, ForwardInto forward);

// The backward's inputs, checked and made contiguous, and its gradient outputs: those not
// asked for (or gb without a b) are distinct empty tensors, as outputs must not alias.
struct BackwardTensors {
  CompositeShape s;
  at::Tensor g, x, m, b, grad_mean_m, grad_mean_b;
  at::Tensor gx, gm, gb;
  bool want_gb;   // gb is asked for and there is a b
  bool shared_b;  // ... and b is shared by the batch: its gradient sums over samples
};
BackwardTensors prepare_backward(const at::Tensor& grad_out, const at::Tensor& grad_mean_m,
                                 const at::Tensor& grad_mean_b, const at::Tensor& x,
                                 const at::Tensor& m, const std::optional<at::Tensor>& b,
                                 std::array<bool, 3> output_mask);

}  // namespace bgbench
