// CPU kernels of bgbench::composite and its backward: at::parallel_for over (sample, span)
// tasks running the vectorisable loops of kernels/composite.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <array>
#include <cstdint>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "ops.h"

namespace bgbench {
namespace {

// Pixels per task within one sample: large enough to stream, small enough that a large
// image still splits across threads. Partial sums are kept per task and added in a fixed
// order, so results do not depend on the thread count.
constexpr int64_t kSpan = 8192;
// Elements a thread should get at least, so small batches do not pay for thread wake-ups.
constexpr int64_t kGrainElements = 32768;

// Outputs are first touched by these kernels. For large ones, ask Linux for transparent huge
// pages: one page fault per 2 MiB instead of per 4 KiB. At [64,3,256,256] the 4 KiB faults
// of the fresh output took about as long as the forward's own memory traffic.
void advise_huge_pages(const at::Tensor& t) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t start = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t begin = (start + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (start + t.nbytes()) & ~(kHuge - 1);
  // Advice only: where it is refused, the kernel runs as it would have anyway.
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

int64_t grain_for(int64_t task_elements) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, task_elements));
}

// The forward into contiguous outputs of the right shapes (checked by the callers).
void forward_cpu_into(const CompositeShape& s, const at::Tensor& x_in, const at::Tensor& m_in,
                      const std::optional<at::Tensor>& b_in, at::Tensor& out, at::Tensor& mean_m,
                      at::Tensor& mean_b) {
  const at::Tensor x = x_in.contiguous(), m = m_in.contiguous();
  const at::Tensor b = b_in.has_value() ? b_in->contiguous() : at::Tensor();
  const int64_t spans = (s.hw + kSpan - 1) / kSpan;
  const int64_t tasks = s.n * spans;
  std::vector<double> part_m(tasks), part_b(tasks);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bgbench_composite_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* mp = m.const_data_ptr<scalar_t>();
    const scalar_t* bp = s.has_b() ? b.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, tasks, grain_for(std::min(s.hw, kSpan) * s.c), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t i = t / spans, p0 = (t % spans) * kSpan;
        double sm = 0, sb = 0;
        composite_forward_span<scalar_t, double>(
            s, xp, mp, bp, op, i, p0, std::min(s.hw, p0 + kSpan), s.nb == s.n || i == 0, sm, sb);
        part_m[t] = sm;
        part_b[t] = sb;
      }
    });
    scalar_t* mm = mean_m.mutable_data_ptr<scalar_t>();
    scalar_t* mb = mean_b.mutable_data_ptr<scalar_t>();
    double shared_b = 0;
    for (int64_t i = 0; i < s.n; ++i) {
      double sm = 0, sb = 0;
      for (int64_t k = 0; k < spans; ++k) {
        sm += part_m[i * spans + k];
        sb += part_b[i * spans + k];
      }
      mm[i] = static_cast<scalar_t>(sm / static_cast<double>(s.cm * s.hw));
      if (i == 0) shared_b = sb;
      mb[i] = s.has_b() ? static_cast<scalar_t>((s.nb == s.n ? sb : shared_b) /
                                                static_cast<double>(s.cb * s.hw))
                        : scalar_t(0);
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_cpu(const at::Tensor& x,
                                                             const at::Tensor& m,
                                                             const std::optional<at::Tensor>& b) {
  return composite_allocating(x, m, b, &forward_cpu_into, &advise_huge_pages);
}

void composite_into_cpu(const at::Tensor& x, const at::Tensor& m,
                        const std::optional<at::Tensor>& b, at::Tensor& out, at::Tensor& mean_m,
                        at::Tensor& mean_b) {
  composite_into_checked(x, m, b, out, mean_m, mean_b, &forward_cpu_into);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& grad_mean_m, const at::Tensor& grad_mean_b,
    const at::Tensor& x_in, const at::Tensor& m_in, const std::optional<at::Tensor>& b_in,
    std::array<bool, 3> output_mask) {
  BackwardTensors bw =
      prepare_backward(grad_out, grad_mean_m, grad_mean_b, x_in, m_in, b_in, output_mask);
  for (const at::Tensor* t : {&bw.gx, &bw.gm, &bw.gb}) advise_huge_pages(*t);
  const CompositeShape& s = bw.s;
  const at::Tensor &g = bw.g, &x = bw.x, &m = bw.m, &b = bw.b;
  const at::Tensor &gmm = bw.grad_mean_m, &gmb = bw.grad_mean_b;
  at::Tensor &gx = bw.gx, &gm = bw.gm, &gb = bw.gb;
  // A background shared by the batch sums its gradient over samples: a pass of its own.
  const bool want_gb = bw.want_gb, shared_b = bw.shared_b;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bgbench_composite_backward_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* mp = m.const_data_ptr<scalar_t>();
    const scalar_t* bp = s.has_b() ? b.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gmmp = gmm.const_data_ptr<scalar_t>();
    const scalar_t* gmbp = gmb.const_data_ptr<scalar_t>();
    scalar_t* gxp = output_mask[0] ? gx.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gmp = output_mask[1] ? gm.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gbp = want_gb ? gb.mutable_data_ptr<scalar_t>() : nullptr;
    const double m_count = static_cast<double>(s.cm * s.hw);
    const double b_count = static_cast<double>(s.cb * s.hw);
    if (gxp || gmp || (gbp && !shared_b)) {
      const int64_t spans = (s.hw + kSpan - 1) / kSpan;
      at::parallel_for(0, s.n * spans, grain_for(std::min(s.hw, kSpan) * s.c),
                       [&](int64_t t0, int64_t t1) {
                         for (int64_t t = t0; t < t1; ++t) {
                           const int64_t i = t / spans, p0 = (t % spans) * kSpan;
                           composite_backward_span<scalar_t>(
                               s, gp, xp, mp, bp, gxp, gmp, shared_b ? nullptr : gbp, i, p0,
                               std::min(s.hw, p0 + kSpan), static_cast<scalar_t>(gmmp[i] / m_count),
                               static_cast<scalar_t>(gbp && !shared_b ? gmbp[i] / b_count : 0));
                         }
                       });
    }
    if (shared_b) {
      double kb = 0;
      for (int64_t i = 0; i < s.n; ++i) kb += gmbp[i];
      // Every task loops over the whole batch, so spans are smaller to keep threads busy.
      constexpr int64_t kSharedSpan = 1024;
      const int64_t spans = (s.hw + kSharedSpan - 1) / kSharedSpan;
      at::parallel_for(0, spans, grain_for(std::min(s.hw, kSharedSpan) * s.n * s.c),
                       [&](int64_t t0, int64_t t1) {
                         for (int64_t t = t0; t < t1; ++t)
                           composite_backward_shared_b_span<scalar_t>(
                               s, gp, mp, gbp, t * kSharedSpan,
                               std::min(s.hw, (t + 1) * kSharedSpan),
                               static_cast<scalar_t>(kb / b_count));
                       });
    }
  });
  return {gx, gm, gb};
}

}  // namespace
}  // namespace bgbench

TORCH_LIBRARY_IMPL(bgbench, CPU, lib) {
  lib.impl("composite", &bgbench::composite_cpu);
  lib.impl("composite_into", &bgbench::composite_into_cpu);
  lib.impl("composite_backward", &bgbench::composite_backward_cpu);
}
