// Unit tests of csrc/kernels/composite.h against naive per-element formulas (run by ctest).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/composite.h"

namespace {

int failures = 0;

#define EXPECT(cond, ...)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      ++failures;                                                      \
      std::fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                               \
      std::fprintf(stderr, "\n");                                      \
    }                                                                  \
  } while (0)

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
            bgbench::composite_backward_span<double>(
                s, g.data(), x.data(), m.data(), bp, gx.data(), gm.data(),
                nb && !shared ? gb.data() : nullptr, i, p0, p1, gmm[i] / (cm * hw),
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
          bgbench::composite_backward_shared_b_span<double>(s, g.data(), m.data(), gb.data(), 0,
                                                            hw, kb / (cb * hw));
        }
        std::vector<double> want_gm(gm.size(), 0), want_gb(gb.size(), 0);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < hw; ++p) {
              const int64_t xi = s.x_offset(i, ch) + p, mi = s.m_offset(i, ch) + p;
              const double bv = nb ? b[s.b_offset(i, ch) + p] : 0.0;
              const double want = m[mi] * x[xi] + (1 - m[mi]) * bv;
              EXPECT(close(out[xi], want), "out cm=%ld nb=%ld cb=%ld", long(cm), long(nb), long(cb));
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
            EXPECT(close(gb[k], want_gb[k]), "gb[%zu] cm=%ld nb=%ld cb=%ld", k, long(cm),
                   long(nb), long(cb));
      }
}

void test_disk_footprint() {
  // skimage.morphology.disk(2) has rows of 1, 3, 5, 3, 1 pixels.
  const std::vector<int> want{0, 1, 2, 1, 0};
  EXPECT(bgbench::disk_half_widths(2) == want, "disk(2) half-widths");
  EXPECT(bgbench::disk_half_widths(0) == std::vector<int>{0}, "disk(0) half-widths");
  EXPECT(bgbench::disk_half_widths(3)[0] == 0 && bgbench::disk_half_widths(3)[1] == 2,
         "disk(3) half-widths");
}

// Dilation and compositing against a brute-force dilation, for widths on either side of
// the vector length and radii 0 to 4.
void test_dilate_composite() {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> pixel(0, 255), coin(0, 19);
  for (int64_t h : {1, 5, 32})
    for (int64_t w : {1, 7, 32, 70})
      for (int r = 0; r <= 4; ++r) {
        std::vector<uint8_t> img(h * w);
        for (auto& v : img) v = coin(rng) == 0 ? static_cast<uint8_t>(pixel(rng)) : 0;
        std::vector<float> bg(h * w), out(h * w);
        for (auto& v : bg) v = static_cast<float>(coin(rng) % 2);
        bgbench::DiskDilation dil(h, w, r);
        bgbench::dilate_composite(dil, img.data(), bg.data(), out.data(), h, w);
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) {
            bool fg = false;
            for (int64_t dy = -r; dy <= r; ++dy)
              for (int64_t dx = -r; dx <= r; ++dx) {
                const int64_t yy = y + dy, xx = x + dx;
                if (dy * dy + dx * dx <= r * r && yy >= 0 && yy < h && xx >= 0 && xx < w)
                  fg = fg || img[yy * w + xx] > 0;
              }
            const float want = fg ? static_cast<float>(img[y * w + x]) / 255.0f : bg[y * w + x];
            EXPECT(out[y * w + x] == want, "h=%ld w=%ld r=%d at (%ld, %ld): %g vs %g", long(h),
                   long(w), r, long(y), long(x), out[y * w + x], want);
          }
      }
}

}  // namespace

int main() {
  test_composite_broadcasting();
  test_disk_footprint();
  test_dilate_composite();
  if (failures) std::fprintf(stderr, "%d failures\n", failures);
  else std::printf("all kernel header tests passed\n");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
