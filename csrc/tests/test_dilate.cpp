// Unit tests of csrc/kernels/dilate.h against a brute-force dilation (run by ctest).
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/dilate.h"
#include "tests/expect.h"

namespace {

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
  test_disk_footprint();
  test_dilate_composite();
  return bgbench_test::report("dilation");
}
