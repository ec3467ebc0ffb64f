// Schemas of the bgbench ops, the input checks both backends share, the autograd kernel,
// and the Python module init that lets `import bgbench._C` load (and so register) them.
// Python.h before any standard header: it sets feature macros those headers read.
#include <Python.h>

#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <sstream>

#include "ops.h"

namespace bgbench {

namespace {

std::string sizes_str(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void check_like_x(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK(t.device() == x.device(), op, ": ", name, " must be on x's device ", x.device(),
              ", got ", t.device());
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": ", name, " must have x's dtype ",
              x.scalar_type(), ", got ", t.scalar_type());
  TORCH_CHECK(t.layout() == at::kStrided, op, ": ", name, " must be a strided (dense) tensor");
}

CompositeShape check_inputs(const char* op, const at::Tensor& x, const at::Tensor& m,
                            const std::optional<at::Tensor>& b) {
  TORCH_CHECK(x.layout() == at::kStrided, op, ": x must be a strided (dense) tensor");
  TORCH_CHECK(x.dim() == 4, op, ": x must have shape [N, C, H, W], got ", sizes_str(x));
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ",
              x.scalar_type());
  if (x.device().is_cpu())
    TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                ": on CPU x must be float32 or float64, got ", x.scalar_type());
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  check_like_x(op, "m", m, x);
  TORCH_CHECK(m.dim() == 4 && m.size(0) == n && (m.size(1) == 1 || m.size(1) == c) &&
                  m.size(2) == h && m.size(3) == w,
              op, ": m must have shape [N, 1 or C, H, W] = [", n, ", 1 or ", c, ", ", h, ", ", w,
              "], got ", sizes_str(m));
  CompositeShape s{n, c, h * w, m.size(1), 0, 0};
  if (b.has_value()) {
    check_like_x(op, "b", *b, x);
    TORCH_CHECK(b->dim() == 4 && (b->size(0) == 1 || b->size(0) == n) &&
                    (b->size(1) == 1 || b->size(1) == c) && b->size(2) == h && b->size(3) == w,
                op, ": b must have shape [1 or N, 1 or C, H, W] = [1 or ", n, ", 1 or ", c, ", ", h,
                ", ", w, "], got ", sizes_str(*b));
    s.nb = b->size(0);
    s.cb = b->size(1);
  }
  return s;
}

}  // namespace

CompositeShape check_composite(const at::Tensor& x, const at::Tensor& m,
                               const std::optional<at::Tensor>& b) {
  return check_inputs("bgbench::composite", x, m, b);
}

void check_composite_into(const at::Tensor& x, const at::Tensor& m,
                          const std::optional<at::Tensor>& b, const at::Tensor& out,
                          const at::Tensor& mean_m, const at::Tensor& mean_b) {
  const char* op = "bgbench::composite_into";
  const int64_t n = x.size(0);
  check_like_x(op, "out", out, x);
  TORCH_CHECK(out.sizes() == x.sizes() && out.is_contiguous(), op,
              ": out must be a contiguous tensor of x's shape ", sizes_str(x), ", got ",
              sizes_str(out), out.is_contiguous() ? "" : " (not contiguous)");
  for (const auto& [name, t] :
       {std::pair<const char*, const at::Tensor&>{"mean_m", mean_m}, {"mean_b", mean_b}}) {
    check_like_x(op, name, t, x);
    TORCH_CHECK(t.dim() == 1 && t.size(0) == n && t.is_contiguous(), op, ": ", name,
                " must be a contiguous tensor of shape [N] = [", n, "], got ", sizes_str(t));
  }
  // The kernels read their inputs through restrict pointers: outputs must not share memory
  // with them, or with each other.
  for (const at::Tensor* o : {&out, &mean_m, &mean_b}) {
    at::assert_no_internal_overlap(*o);
    at::assert_no_overlap(*o, x);
    at::assert_no_overlap(*o, m);
    if (b.has_value()) at::assert_no_overlap(*o, *b);
  }
  at::assert_no_overlap(mean_m, mean_b);
  at::assert_no_overlap(out, mean_m);
  at::assert_no_overlap(out, mean_b);
}

CompositeShape check_composite_backward(const at::Tensor& grad_out, const at::Tensor& grad_mean_m,
                                        const at::Tensor& grad_mean_b, const at::Tensor& x,
                                        const at::Tensor& m, const std::optional<at::Tensor>& b) {
  const char* op = "bgbench::composite_backward";
  const CompositeShape s = check_inputs(op, x, m, b);
  check_like_x(op, "grad_out", grad_out, x);
  TORCH_CHECK(grad_out.sizes() == x.sizes(), op, ": grad_out must have x's shape ", sizes_str(x),
              ", got ", sizes_str(grad_out));
  check_like_x(op, "grad_mean_m", grad_mean_m, x);
  TORCH_CHECK(grad_mean_m.dim() == 1 && grad_mean_m.size(0) == s.n, op,
              ": grad_mean_m must have shape [N] = [", s.n, "], got ", sizes_str(grad_mean_m));
  check_like_x(op, "grad_mean_b", grad_mean_b, x);
  TORCH_CHECK(grad_mean_b.dim() == 1 && grad_mean_b.size(0) == s.n, op,
              ": grad_mean_b must have shape [N] = [", s.n, "], got ", sizes_str(grad_mean_b));
  return s;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_allocating(
    const at::Tensor& x, const at::Tensor& m, const std::optional<at::Tensor>& b,
    ForwardInto forward, void (*fresh_output)(const at::Tensor&)) {
  const CompositeShape s = check_composite(x, m, b);
  at::Tensor out = at::empty(x.sizes(), x.options());
  if (fresh_output) fresh_output(out);
  at::Tensor mean_m = at::empty({s.n}, x.options()), mean_b = at::empty({s.n}, x.options());
  forward(s, x, m, b, out, mean_m, mean_b);
  return {out, mean_m, mean_b};
}

void composite_into_checked(const at::Tensor& x, const at::Tensor& m,
                            const std::optional<at::Tensor>& b, at::Tensor& out, at::Tensor& mean_m,
                            at::Tensor& mean_b, ForwardInto forward) {
  const CompositeShape s = check_composite(x, m, b);
  check_composite_into(x, m, b, out, mean_m, mean_b);
  forward(s, x, m, b, out, mean_m, mean_b);
}

BackwardTensors prepare_backward(const at::Tensor& grad_out, const at::Tensor& grad_mean_m,
                                 const at::Tensor& grad_mean_b, const at::Tensor& x,
                                 const at::Tensor& m, const std::optional<at::Tensor>& b,
                                 std::array<bool, 3> output_mask) {
  BackwardTensors t;
  t.s = check_composite_backward(grad_out, grad_mean_m, grad_mean_b, x, m, b);
  t.g = grad_out.contiguous();
  t.x = x.contiguous();
  t.m = m.contiguous();
  t.b = b.has_value() ? b->contiguous() : at::Tensor();
  t.grad_mean_m = grad_mean_m.contiguous();
  t.grad_mean_b = grad_mean_b.contiguous();
  t.want_gb = output_mask[2] && t.s.has_b();
  t.shared_b = t.want_gb && t.s.nb != t.s.n;
  t.gx = at::empty(output_mask[0] ? t.x.sizes() : at::IntArrayRef{0}, x.options());
  t.gm = at::empty(output_mask[1] ? t.m.sizes() : at::IntArrayRef{0}, x.options());
  t.gb = at::empty(t.want_gb ? t.b.sizes() : at::IntArrayRef{0}, x.options());
  return t;
}

namespace {

using Triple = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Autograd in C++ rather than torch.library.register_autograd: the Python path cost more
// per call than the whole fused forward+backward at the training shape [128,1,32,32].
class CompositeFunction : public torch::autograd::Function<CompositeFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& m,
                               const std::optional<at::Tensor>& b) {
    static const auto op = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("bgbench::composite", "")
                               .typed<Triple(const at::Tensor&, const at::Tensor&,
                                             const std::optional<at::Tensor>&)>();
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [out, mean_m, mean_b] = op.call(x, m, b);
    ctx->save_for_backward({x, m, b.value_or(at::Tensor())});
    if (!b.has_value()) ctx->mark_non_differentiable({mean_b});
    return {out, mean_m, mean_b};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("bgbench::composite_backward", "")
            .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                          std::array<bool, 3>)>();
    const variable_list saved = ctx->get_saved_variables();
    const std::optional<at::Tensor> b =
        saved[2].defined() ? std::optional<at::Tensor>(saved[2]) : std::nullopt;
    // Edges exist only for tensors given, so b's flag is asked only when there is a b.
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   b.has_value() && ctx->needs_input_grad(2)};
    if (!(mask[0] || mask[1] || mask[2])) return {at::Tensor(), at::Tensor(), at::Tensor()};
    auto [gx, gm, gb] = op.call(grads[0], grads[1], grads[2], saved[0], saved[1], b, mask);
    return {mask[0] ? gx : at::Tensor(), mask[1] ? gm : at::Tensor(), mask[2] ? gb : at::Tensor()};
  }
};

// composite_into writes into given tensors, which autograd cannot track: refuse inputs that
// need a gradient rather than give results that silently have none.
void composite_into_autograd(const at::Tensor& x, const at::Tensor& m,
                             const std::optional<at::Tensor>& b, at::Tensor& out,
                             at::Tensor& mean_m, at::Tensor& mean_b) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("bgbench::composite_into", "")
          .typed<void(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                      at::Tensor&, at::Tensor&, at::Tensor&)>();
  const bool needs_grad =
      x.requires_grad() || m.requires_grad() || (b.has_value() && b->requires_grad());
  TORCH_CHECK(!(at::GradMode::is_enabled() && needs_grad),
              "bgbench::composite_into: writing into given outputs does not support autograd, "
              "and an input requires grad; call composite without out=, or run under "
              "torch.no_grad()");
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  op.call(x, m, b, out, mean_m, mean_b);
  for (const at::Tensor* t : {&out, &mean_m, &mean_b}) torch::autograd::impl::bump_version(*t);
}

Triple composite_autograd(const at::Tensor& x, const at::Tensor& m,
                          const std::optional<at::Tensor>& b) {
  const variable_list r = CompositeFunction::apply(x, m, b);
  return {r[0], r[1], r[2]};
}

}  // namespace
}  // namespace bgbench

TORCH_LIBRARY(bgbench, lib) {
  // Fake (meta) kernels are registered from Python by this module.
  lib.set_python_module("bgbench.ops");
  lib.def("composite(Tensor x, Tensor m, Tensor? b) -> (Tensor, Tensor, Tensor)",
          {at::Tag::pt2_compliant_tag});
  // composite, written into given outputs: no allocation (and no page faults on fresh
  // memory) in a loop that reuses them. No autograd. It returns nothing, as torch.compile
  // can only functionalize custom ops whose outputs alias no input.
  lib.def(
      "composite_into(Tensor x, Tensor m, Tensor? b, Tensor(a!) out, Tensor(b!) mean_m, "
      "Tensor(c!) mean_b) -> ()",
      {at::Tag::pt2_compliant_tag});
  // output_mask says which of (gx, gm, gb) to compute; the others come back as empty
  // tensors, so autograd does no work for inputs that need no gradient.
  lib.def(
      "composite_backward(Tensor grad_out, Tensor grad_mean_m, Tensor grad_mean_b, Tensor x, "
      "Tensor m, Tensor? b, bool[3] output_mask=[True, True, True]) -> (Tensor, Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
}

TORCH_LIBRARY_IMPL(bgbench, Autograd, lib) {
  lib.impl("composite", &bgbench::composite_autograd);
  lib.impl("composite_into", &bgbench::composite_into_autograd);
}

// The ops register when this shared object loads; the module itself is empty.
extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "bgbench's torch ops (torch.ops.bgbench)",
                            -1, nullptr};
  return PyModule_Create(&def);
}
