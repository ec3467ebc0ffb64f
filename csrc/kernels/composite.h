// The fused compositing kernels (out = m*x + (1-m)*b, the means of m and b, and their
// gradients) as plain templated loops, shared by the torch CPU kernel (csrc/cpu/composite.cpp),
// the CUDA kernels' index helpers and the C++ tests. Nothing here knows about torch or Python;
// callers own parallelism and validation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

// Index helpers are shared with the CUDA kernels.
#if defined(__CUDACC__)
#define BGBENCH_HOST_DEVICE __host__ __device__
#else
#define BGBENCH_HOST_DEVICE
#endif

namespace bgbench {

// Sizes of one composite call: x is [N, C, HW], m is [N, Cm, HW] with Cm in {1, C}, b is
// [Nb, Cb, HW] with Nb in {1, N} and Cb in {1, C}, or absent (nb == 0).
struct CompositeShape {
  int64_t n, c, hw, cm, nb, cb;

  BGBENCH_HOST_DEVICE bool has_b() const { return nb > 0; }
  BGBENCH_HOST_DEVICE int64_t x_offset(int64_t i, int64_t ch) const { return (i * c + ch) * hw; }
  BGBENCH_HOST_DEVICE int64_t m_offset(int64_t i, int64_t ch) const {
    return (i * cm + (cm == 1 ? 0 : ch)) * hw;
  }
  BGBENCH_HOST_DEVICE int64_t b_offset(int64_t i, int64_t ch) const {
    return ((nb == 1 ? 0 : i) * cb + (cb == 1 ? 0 : ch)) * hw;
  }
};

// Spans are summed in blocks of this many elements in T (so the loop vectorises) and the
// block sums are added in the wider Acc: float32 error stays at block scale, not image scale.
constexpr int64_t kSumBlock = 512;

template <class F>
inline void with_bool(bool v, F&& f) {
  if (v)
    f(std::true_type{});
  else
    f(std::false_type{});
}

// out = m*x + (1-m)*b over one row span; also sums m and b over it.
template <typename T, typename Acc, bool HasB>
inline void forward_row(const T* __restrict x, const T* __restrict m, const T* __restrict b,
                        T* __restrict out, int64_t len, Acc& sum_m, Acc& sum_b) {
  for (int64_t start = 0; start < len; start += kSumBlock) {
    const int64_t end = std::min(len, start + kSumBlock);
    T sm = 0, sb = 0;
#pragma omp simd reduction(+ : sm, sb)
    for (int64_t i = start; i < end; ++i) {
      const T mi = m[i];
      if constexpr (HasB) {
        const T bi = b[i];
        out[i] = mi * x[i] + (T(1) - mi) * bi;
        sb += bi;
      } else {
        out[i] = mi * x[i];
      }
      sm += mi;
    }
    sum_m += Acc(sm);
    sum_b += Acc(sb);
  }
}

// Forward for sample i over pixels [p0, p1) of every channel. Adds to sum_m the sum of
// m[i] over that span, and to sum_b that of b's sample for i when sum_background is set
// (a shared background is summed once, by the caller's choice of sample).
template <typename T, typename Acc>
void composite_forward_span(const CompositeShape& s, const T* x, const T* m, const T* b, T* out,
                            int64_t i, int64_t p0, int64_t p1, bool sum_background, Acc& sum_m,
                            Acc& sum_b) {
  const int64_t len = p1 - p0;
  with_bool(s.has_b(), [&](auto has_b) {
    for (int64_t ch = 0; ch < s.c; ++ch) {
      Acc sm = 0, sb = 0;
      const int64_t xo = s.x_offset(i, ch) + p0;
      forward_row<T, Acc, decltype(has_b)::value>(x + xo, m + s.m_offset(i, ch) + p0,
                                                  has_b ? b + s.b_offset(i, ch) + p0 : nullptr,
                                                  out + xo, len, sm, sb);
      // A broadcast input is read once per channel but counted once.
      if (s.cm == s.c || ch == 0) sum_m += sm;
      if (sum_background && (s.cb == s.c || ch == 0)) sum_b += sb;
    }
  });
}

// One row of the backward. gm and gb either start at the mean's gradient (km, kb) here
// (FirstM, FirstB: the first channel to reach that output) or add to what an earlier channel
// wrote (a mask or background broadcast over channels), so no pass only fills them.
template <typename T, bool HasB, bool GX, bool GM, bool GB, bool FirstM, bool FirstB>
inline void backward_row(const T* __restrict g, const T* __restrict x, const T* __restrict m,
                         const T* __restrict b, T* __restrict gx, T* __restrict gm,
                         T* __restrict gb, int64_t len, T km, T kb) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T gi = g[i], mi = m[i];
    if constexpr (GX) gx[i] = gi * mi;
    if constexpr (GM) gm[i] = (FirstM ? km : gm[i]) + gi * (HasB ? x[i] - b[i] : x[i]);
    if constexpr (GB) gb[i] = (FirstB ? kb : gb[i]) + gi * (T(1) - mi);
  }
}

// backward_row with the output choices and first-channel flags made compile-time.
template <typename T, bool HasB>
inline void backward_row_dispatch(const T* g, const T* x, const T* m, const T* b, T* gx, T* gm,
                                  T* gb, int64_t len, T km, T kb, bool first_m, bool first_b) {
  with_bool(gx != nullptr, [&](auto want_gx) {
    with_bool(gm != nullptr && first_m, [&](auto fm) {
      with_bool(gb != nullptr && first_b, [&](auto fb) {
        // A first-channel flag is only ever set for an output that is written.
        if (gm != nullptr && gb != nullptr)
          backward_row<T, HasB, decltype(want_gx)::value, true, true, decltype(fm)::value,
                       decltype(fb)::value>(g, x, m, b, gx, gm, gb, len, km, kb);
        else if (gm != nullptr)
          backward_row<T, HasB, decltype(want_gx)::value, true, false, decltype(fm)::value, false>(
              g, x, m, b, gx, gm, gb, len, km, kb);
        else if (gb != nullptr)
          backward_row<T, HasB, decltype(want_gx)::value, false, true, false, decltype(fb)::value>(
              g, x, m, b, gx, gm, gb, len, km, kb);
        else
          backward_row<T, HasB, decltype(want_gx)::value, false, false, false, false>(
              g, x, m, b, gx, gm, gb, len, km, kb);
      });
    });
  });
}

// Backward for sample i over pixels [p0, p1): gx = g*m, gm = sum over broadcast channels of
// g*(x-b) plus km (d mean_m / d m), gb likewise with g*(1-m) plus kb. Null outputs are
// skipped; gb must be null when the background is shared across the batch (nb == 1 < n):
// that sum over samples is composite_backward_shared_b_span's job.
template <typename T>
void composite_backward_span(const CompositeShape& s, const T* g, const T* x, const T* m,
                             const T* b, T* gx, T* gm, T* gb, int64_t i, int64_t p0, int64_t p1,
                             T km, T kb) {
  const int64_t len = p1 - p0;
  with_bool(s.has_b(), [&](auto has_b) {
    for (int64_t ch = 0; ch < s.c; ++ch) {
      const int64_t xo = s.x_offset(i, ch) + p0, mo = s.m_offset(i, ch) + p0;
      const int64_t bo = s.b_offset(i, ch) + p0;
      backward_row_dispatch<T, decltype(has_b)::value>(
          g + xo, x + xo, m + mo, has_b ? b + bo : nullptr, gx ? gx + xo : nullptr,
          gm ? gm + mo : nullptr, gb ? gb + bo : nullptr, len, km, kb, s.cm == s.c || ch == 0,
          s.cb == s.c || ch == 0);
    }
  });
}

// Gradient of a background shared by the whole batch (nb == 1) over pixels [p0, p1):
// gb = sum over samples and broadcast channels of g*(1-m), plus kb = sum_i grad_mean_b[i]
// / (cb*hw).
template <typename T>
void composite_backward_shared_b_span(const CompositeShape& s, const T* g, const T* m, T* gb,
                                      int64_t p0, int64_t p1, T kb) {
  const int64_t len = p1 - p0;
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t ch = 0; ch < s.c; ++ch)
      backward_row_dispatch<T, false>(g + s.x_offset(i, ch) + p0, nullptr,
                                      m + s.m_offset(i, ch) + p0, nullptr, nullptr, nullptr,
                                      gb + s.b_offset(0, ch) + p0, len, T(0), kb, false,
                                      i == 0 && (s.cb == s.c || ch == 0));
}

}  // namespace bgbench
