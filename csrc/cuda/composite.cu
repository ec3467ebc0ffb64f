// CUDA kernels of bgbench::composite and its backward, on the current stream, with no host
// synchronisation. Loads and stores are 16-byte vectors where every pointer is aligned and
// H*W is a multiple of the vector width; math and reductions run in at::opmath_type (float
// for float16/bfloat16).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <array>

#include "ops.h"

namespace bgbench {
namespace {

constexpr int kThreads = 256;
// Vectors per thread in one forward block: a block covers kThreads * kItems * V pixels of one
// sample in every channel, so per-block partial sums stay few.
constexpr int kItems = 4;

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename T, int V>
__device__ __forceinline__ Pack<T, V> load(const T* p) {
  return *reinterpret_cast<const Pack<T, V>*>(p);
}

template <typename T, int V>
__device__ __forceinline__ void store(T* p, const Pack<T, V>& v) {
  *reinterpret_cast<Pack<T, V>*>(p) = v;
}

// Sum over the block; the result is valid in thread 0.
template <typename Acc>
__device__ __forceinline__ Acc block_sum(Acc v, Acc* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? shared[threadIdx.x] : Acc(0);
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();
  return v;
}

// One block per (sample, span): out over the span in every channel, and the block's sums
// of m and of b (b only where `sum_b` applies: per-sample backgrounds, or sample 0).
template <typename T, int V>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ x, const T* __restrict__ m, const T* __restrict__ b,
                   T* __restrict__ out, at::opmath_type<T>* __restrict__ part_m,
                   at::opmath_type<T>* __restrict__ part_b, CompositeShape s, int64_t spans) {
  using Acc = at::opmath_type<T>;
  __shared__ Acc shared[2][kThreads / 32];
  const int64_t span = int64_t{kThreads} * kItems * V;
  const int64_t n = blockIdx.x / spans, p0 = (blockIdx.x % spans) * span;
  const int64_t p1 = p0 + span < s.hw ? p0 + span : s.hw;
  const bool has_b = b != nullptr, sum_b = has_b && (s.nb == s.n || n == 0);
  Acc sm = 0, sb = 0;
  for (int64_t p = p0 + int64_t{threadIdx.x} * V; p < p1; p += int64_t{kThreads} * V) {
    for (int64_t c = 0; c < s.c; ++c) {
      const Pack<T, V> xv = load<T, V>(x + s.x_offset(n, c) + p);
      const Pack<T, V> mv = load<T, V>(m + s.m_offset(n, c) + p);
      Pack<T, V> bv;
      if (has_b) bv = load<T, V>(b + s.b_offset(n, c) + p);
      const bool add_m = s.cm == s.c || c == 0, add_b = sum_b && (s.cb == s.c || c == 0);
      Pack<T, V> ov;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const Acc mk = static_cast<Acc>(mv.v[k]), xk = static_cast<Acc>(xv.v[k]);
        const Acc bk = has_b ? static_cast<Acc>(bv.v[k]) : Acc(0);
        ov.v[k] = static_cast<T>(mk * xk + (Acc(1) - mk) * bk);
        if (add_m) sm += mk;
        if (add_b) sb += bk;
      }
      store<T, V>(out + s.x_offset(n, c) + p, ov);
    }
  }
  sm = block_sum(sm, shared[0]);
  sb = block_sum(sb, shared[1]);
  if (threadIdx.x == 0) {
    part_m[blockIdx.x] = sm;
    part_b[blockIdx.x] = sb;
  }
}

// Adds each sample's span partials in a fixed order (so results are deterministic) and
// divides by the element counts.
template <typename T>
__global__ void finish_means_kernel(const at::opmath_type<T>* __restrict__ part_m,
                                    const at::opmath_type<T>* __restrict__ part_b,
                                    T* __restrict__ mean_m, T* __restrict__ mean_b,
                                    CompositeShape s, int64_t spans) {
  using Acc = at::opmath_type<T>;
  const int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (n >= s.n) return;
  Acc sm = 0, sb = 0;
  const int64_t nb = s.nb == s.n ? n : 0;
  for (int64_t k = 0; k < spans; ++k) {
    sm += part_m[n * spans + k];
    sb += part_b[nb * spans + k];
  }
  mean_m[n] = static_cast<T>(sm / static_cast<Acc>(s.cm * s.hw));
  mean_b[n] = s.nb ? static_cast<T>(sb / static_cast<Acc>(s.cb * s.hw)) : T(0);
}

// Which gradients backward_kernel writes (gb: per-sample backgrounds only). Warp-uniform
// branches on these cost less than compiling every combination.
struct Wanted {
  bool gx, gm, gb;
};

// Grid-stride over (sample, pixel vector). A thread owns its pixels in every channel, so the
// sums over broadcast channels (m or b with one channel) stay in registers: no atomics.
template <typename T, int V>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ m,
                    const T* __restrict__ b, T* __restrict__ gx, T* __restrict__ gm,
                    T* __restrict__ gb, const T* __restrict__ gmm, const T* __restrict__ gmb,
                    CompositeShape s, Wanted want) {
  using Acc = at::opmath_type<T>;
  const int64_t vectors = s.hw / V, total = s.n * vectors;
  const bool has_b = b != nullptr;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t n = idx / vectors, p = (idx % vectors) * V;
    const Acc km = static_cast<Acc>(gmm[n]) / static_cast<Acc>(s.cm * s.hw);
    const Acc kb = want.gb ? static_cast<Acc>(gmb[n]) / static_cast<Acc>(s.cb * s.hw) : Acc(0);
    Acc am[V], ab[V];
#pragma unroll
    for (int k = 0; k < V; ++k) am[k] = km, ab[k] = kb;
    for (int64_t c = 0; c < s.c; ++c) {
      const Pack<T, V> gv = load<T, V>(g + s.x_offset(n, c) + p);
      const Pack<T, V> mv = load<T, V>(m + s.m_offset(n, c) + p);
      Pack<T, V> xv, bv, ov;
      if (want.gm) xv = load<T, V>(x + s.x_offset(n, c) + p);
      if (has_b && (want.gm || want.gb)) bv = load<T, V>(b + s.b_offset(n, c) + p);
      if (want.gx) {
#pragma unroll
        for (int k = 0; k < V; ++k)
          ov.v[k] = static_cast<T>(static_cast<Acc>(gv.v[k]) * static_cast<Acc>(mv.v[k]));
        store<T, V>(gx + s.x_offset(n, c) + p, ov);
      }
      if (want.gm) {
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const Acc bk = has_b ? static_cast<Acc>(bv.v[k]) : Acc(0);
          am[k] += static_cast<Acc>(gv.v[k]) * (static_cast<Acc>(xv.v[k]) - bk);
        }
        if (s.cm == s.c) {  // one m channel per x channel: write now and restart
#pragma unroll
          for (int k = 0; k < V; ++k) ov.v[k] = static_cast<T>(am[k]), am[k] = km;
          store<T, V>(gm + s.m_offset(n, c) + p, ov);
        }
      }
      if (want.gb) {
#pragma unroll
        for (int k = 0; k < V; ++k)
          ab[k] += static_cast<Acc>(gv.v[k]) * (Acc(1) - static_cast<Acc>(mv.v[k]));
        if (s.cb == s.c) {
#pragma unroll
          for (int k = 0; k < V; ++k) ov.v[k] = static_cast<T>(ab[k]), ab[k] = kb;
          store<T, V>(gb + s.b_offset(n, c) + p, ov);
        }
      }
    }
    Pack<T, V> ov;
    if (want.gm && s.cm != s.c) {
#pragma unroll
      for (int k = 0; k < V; ++k) ov.v[k] = static_cast<T>(am[k]);
      store<T, V>(gm + s.m_offset(n, 0) + p, ov);
    }
    if (want.gb && s.cb != s.c) {
#pragma unroll
      for (int k = 0; k < V; ++k) ov.v[k] = static_cast<T>(ab[k]);
      store<T, V>(gb + s.b_offset(n, 0) + p, ov);
    }
  }
}

// Gradient of a background shared by the batch: a thread owns a pixel vector of one b
// channel and sums over samples (and broadcast x channels) in registers.
template <typename T, int V>
__global__ void __launch_bounds__(kThreads)
    shared_b_backward_kernel(const T* __restrict__ g, const T* __restrict__ m, T* __restrict__ gb,
                             const T* __restrict__ gmb, CompositeShape s) {
  using Acc = at::opmath_type<T>;
  const int64_t vectors = s.hw / V, total = s.cb * vectors;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t cb = idx / vectors, p = (idx % vectors) * V;
    Acc a[V] = {}, kb = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      kb += static_cast<Acc>(gmb[n]);
      const int64_t c0 = s.cb == s.c ? cb : 0, c1 = s.cb == s.c ? cb + 1 : s.c;
      for (int64_t c = c0; c < c1; ++c) {
        const Pack<T, V> gv = load<T, V>(g + s.x_offset(n, c) + p);
        const Pack<T, V> mv = load<T, V>(m + s.m_offset(n, c) + p);
#pragma unroll
        for (int k = 0; k < V; ++k)
          a[k] += static_cast<Acc>(gv.v[k]) * (Acc(1) - static_cast<Acc>(mv.v[k]));
      }
    }
    kb /= static_cast<Acc>(s.cb * s.hw);
    Pack<T, V> ov;
#pragma unroll
    for (int k = 0; k < V; ++k) ov.v[k] = static_cast<T>(a[k] + kb);
    store<T, V>(gb + s.b_offset(0, cb) + p, ov);
  }
}

// Vector width in elements for 16-byte accesses, or 1 where some pointer or H*W does not
// allow them.
template <typename T>
int vector_width(const CompositeShape& s, std::initializer_list<const void*> ptrs) {
  constexpr int v = 16 / sizeof(T);
  if (s.hw % v != 0) return 1;
  for (const void* p : ptrs)
    if (p && reinterpret_cast<uintptr_t>(p) % 16 != 0) return 1;
  return v;
}

// Grid-stride kernels get enough blocks to fill the device, and no more.
int64_t grid_for(int64_t work) {
  int device = 0, sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t cap = int64_t{sms} * 16;
  return std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, cap));
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

// The forward into contiguous outputs of the right shapes (checked by the callers).
void forward_cuda_into(const CompositeShape& s, const at::Tensor& x_in, const at::Tensor& m_in,
                       const std::optional<at::Tensor>& b_in, at::Tensor& out, at::Tensor& mean_m,
                       at::Tensor& mean_b) {
  if (s.n == 0) return;
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), m = m_in.contiguous();
  const at::Tensor b = b_in.has_value() ? b_in->contiguous() : at::Tensor();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "bgbench_composite_cuda", [&] {
        using Acc = at::opmath_type<scalar_t>;
        const scalar_t *xp = x.const_data_ptr<scalar_t>(), *mp = m.const_data_ptr<scalar_t>();
        const scalar_t* bp = ptr_or_null<scalar_t>(b);
        scalar_t* op = out.mutable_data_ptr<scalar_t>();
        const int v = vector_width<scalar_t>(s, {xp, mp, bp, op});
        const int64_t span = int64_t{kThreads} * kItems * v;
        const int64_t spans = std::max<int64_t>(1, (s.hw + span - 1) / span);
        at::Tensor part =
            at::empty({2, s.n * spans}, x.options().dtype(c10::CppTypeToScalarType<Acc>::value));
        Acc* pm = part.mutable_data_ptr<Acc>();
        auto launch = [&](auto width) {
          constexpr int V = decltype(width)::value;
          forward_kernel<scalar_t, V><<<s.n * spans, kThreads, 0, stream>>>(
              xp, mp, bp, op, pm, pm + s.n * spans, s, spans);
        };
        if (v == 16 / int(sizeof(scalar_t)))
          launch(std::integral_constant<int, 16 / sizeof(scalar_t)>{});
        else
          launch(std::integral_constant<int, 1>{});
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        finish_means_kernel<scalar_t><<<(s.n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
            pm, pm + s.n * spans, mean_m.mutable_data_ptr<scalar_t>(),
            mean_b.mutable_data_ptr<scalar_t>(), s, spans);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_cuda(const at::Tensor& x,
                                                              const at::Tensor& m,
                                                              const std::optional<at::Tensor>& b) {
  return composite_allocating(x, m, b, &forward_cuda_into, nullptr);
}

void composite_into_cuda(const at::Tensor& x, const at::Tensor& m,
                         const std::optional<at::Tensor>& b, at::Tensor& out, at::Tensor& mean_m,
                         at::Tensor& mean_b) {
  composite_into_checked(x, m, b, out, mean_m, mean_b, &forward_cuda_into);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& grad_mean_m, const at::Tensor& grad_mean_b,
    const at::Tensor& x_in, const at::Tensor& m_in, const std::optional<at::Tensor>& b_in,
    std::array<bool, 3> output_mask) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  BackwardTensors bw =
      prepare_backward(grad_out, grad_mean_m, grad_mean_b, x_in, m_in, b_in, output_mask);
  const CompositeShape& s = bw.s;
  const at::Tensor &g = bw.g, &x = bw.x, &m = bw.m, &b = bw.b;
  const at::Tensor &gmm = bw.grad_mean_m, &gmb = bw.grad_mean_b;
  at::Tensor &gx = bw.gx, &gm = bw.gm, &gb = bw.gb;
  const bool want_gb = bw.want_gb, shared_b = bw.shared_b;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "bgbench_composite_backward_cuda", [&] {
        const scalar_t *gp = g.const_data_ptr<scalar_t>(), *xp = x.const_data_ptr<scalar_t>();
        const scalar_t *mp = m.const_data_ptr<scalar_t>(), *bp = ptr_or_null<scalar_t>(b);
        scalar_t* gxp = output_mask[0] ? gx.mutable_data_ptr<scalar_t>() : nullptr;
        scalar_t* gmp = output_mask[1] ? gm.mutable_data_ptr<scalar_t>() : nullptr;
        scalar_t* gbp = want_gb ? gb.mutable_data_ptr<scalar_t>() : nullptr;
        const Wanted want{gxp != nullptr, gmp != nullptr, gbp != nullptr && !shared_b};
        const int v = vector_width<scalar_t>(s, {gp, xp, mp, bp, gxp, gmp, gbp});
        auto launch = [&](auto width) {
          constexpr int V = decltype(width)::value;
          if (want.gx || want.gm || want.gb) {
            backward_kernel<scalar_t, V><<<grid_for(s.n * s.hw / V), kThreads, 0, stream>>>(
                gp, xp, mp, bp, gxp, gmp, gbp, gmm.const_data_ptr<scalar_t>(),
                gmb.const_data_ptr<scalar_t>(), s, want);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          }
          if (shared_b) {
            shared_b_backward_kernel<scalar_t, V>
                <<<grid_for(s.cb * s.hw / V), kThreads, 0, stream>>>(
                    gp, mp, gbp, gmb.const_data_ptr<scalar_t>(), s);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          }
        };
        if (v == 16 / int(sizeof(scalar_t)))
          launch(std::integral_constant<int, 16 / sizeof(scalar_t)>{});
        else
          launch(std::integral_constant<int, 1>{});
      });
  return {gx, gm, gb};
}

}  // namespace
}  // namespace bgbench

TORCH_LIBRARY_IMPL(bgbench, CUDA, lib) {
  lib.impl("composite", &bgbench::composite_cuda);
  lib.impl("composite_into", &bgbench::composite_into_cuda);
  lib.impl("composite_backward", &bgbench::composite_backward_cuda);
}
