// Unit tests of csrc/kernels/composite.h against naive per-element formulas (run by ctest).
#include <cmath>
#include <random>
#include <vector>

#include "kernels/composite.h"
#include "tests/expect.h"

namespace {

std::vector<double> random_vector(std::mt19937& rng, int64_t size) {
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  std::vector<double> v(size);
  for (double& e : v) e = dist(rng);
  return v;
}

bool close(double a, double b) { return std::abs(a - b) <= 1e-12 * (1 + std::abs(b)); }

// Forward and backward of every broadcast case, with spans that split the images unevenly,
// against the formula element by element.
void test_composite_broadcasting() {
  std::mt19937 rng(0);
  const int64_t n = 3, c = 3, hw = 1100, span = 512;
  for (int64_t cm : {int64_t{1}, c})
    for (int64_t nb : {int64_t{0}, int64_t{1}, n})
      for (int64_t cb : {int64_t{1}, c}) {
        const bgbench::CompositeShape s{n, c, hw, cm, nb, nb ? cb : 0};
        const auto x = random_vector(rng, n * c * hw), m = random_vector(rng, n * cm * hw);
        const auto b = random_vector(rng, std::max<int64_t>(nb, 1) * cb * hw);
        const auto g = random_vector(rng, n * c * hw);
        const auto gmm = random_vector(rng, n), gmb = random_vector(rng, n);
        const double* bp = nb ? b.data() : nullptr;
        std::vector<double> out(n * c * hw), gx(n * c * hw), gm(n * cm * hw, -1);
        std::vector<double> gb(b.size(), -1);
        const bool shared = nb == 1 && n > 1;
        for (int64_t i = 0; i < n; ++i) {
          double sm = 0, sb = 0;
          for (int64_t p0 = 0; p0 < hw; p0 += span) {
            const int64_t p1 = std::min(hw, p0 + span);
            bgbench::composite_forward_span<double, double>(s, x.data(), m.data(), bp, out.data(),
                                                            i, p0, p1, true, sm, sb);
            bgbench::composite_backward_span<double>(s, g.data(), x.data(), m.data(), bp, gx.data(),
                                                     gm.data(), nb && !shared ? gb.data() : nullptr,
                                                     i, p0, p1, gmm[i] / (cm * hw),
                                                     nb ? gmb[i] / (cb * hw) : 0.0);
          }
          double want_sm = 0, want_sb = 0;
          for (int64_t k = 0; k < cm * hw; ++k) want_sm += m[i * cm * hw + k];
          if (nb)
            for (int64_t k = 0; k < cb * hw; ++k) want_sb += b[(nb == 1 ? 0 : i) * cb * hw + k];
          EXPECT(close(sm, want_sm), "sum of m, sample %ld: %g vs %g", long(i), sm, want_sm);
          EXPECT(close(sb, want_sb), "sum of b, sample %ld: %g vs %g", long(i), sb, want_sb);
        }
        if (shared) {
          double kb = 0;
          for (double v : gmb) kb += v;
          bgbench::composite_backward_shared_b_span<double>(s, g.data(), m.data(), gb.data(), 0, hw,
                                                            kb / (cb * hw));
        }
        std::vector<double> want_gm(gm.size(), 0), want_gb(gb.size(), 0);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < hw; ++p) {
              const int64_t xi = s.x_offset(i, ch) + p, mi = s.m_offset(i, ch) + p;
              const double bv = nb ? b[s.b_offset(i, ch) + p] : 0.0;
              const double want = m[mi] * x[xi] + (1 - m[mi]) * bv;
              EXPECT(close(out[xi], want), "out cm=%ld nb=%ld cb=%ld", long(cm), long(nb),
                     long(cb));
              EXPECT(close(gx[xi], g[xi] * m[mi]), "gx cm=%ld nb=%ld", long(cm), long(nb));
              want_gm[mi] += g[xi] * (x[xi] - bv);
              if (nb) want_gb[s.b_offset(i, ch) + p] += g[xi] * (1 - m[mi]);
            }
        for (int64_t i = 0; i < n; ++i)
          for (int64_t k = 0; k < cm * hw; ++k) want_gm[i * cm * hw + k] += gmm[i] / (cm * hw);
        if (nb)
          for (int64_t i = 0; i < n; ++i)
            for (int64_t k = 0; k < cb * hw; ++k)
              want_gb[(nb == 1 ? 0 : i) * cb * hw + k] += gmb[i] / (cb * hw);
        for (size_t k = 0; k < gm.size(); ++k)
          EXPECT(close(gm[k], want_gm[k]), "gm[%zu] cm=%ld nb=%ld cb=%ld", k, long(cm), long(nb),
                 long(cb));
        if (nb)
          for (size_t k = 0; k < gb.size(); ++k)
            EXPECT(close(gb[k], want_gb[k]), "gb[%zu] cm=%ld nb=%ld cb=%ld", k, long(cm), long(nb),
                   long(cb));
      }
}

}  // namespace

int main() {
  test_composite_broadcasting();
  return bgbench_test::report("composite kernel");
}
