// Building a test set, as the torch-free numpy core (csrc/core.cpp) does it: each image's
// foreground (pixels > 0) is dilated by a disk and a background replaces every pixel outside
// it, bit for bit as bgbench.backgrounds.apply_reference. Nothing here knows about Python;
// callers own parallelism and validation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace bgbench {

// Half-width of skimage.morphology.disk(r) on each row offset dy in [-r, r]: the footprint
// is every (dy, dx) with dy*dy + dx*dx <= r*r.
inline std::vector<int> disk_half_widths(int r) {
  std::vector<int> half(2 * r + 1);
  for (int dy = -r; dy <= r; ++dy) {
    int w = 0;
    while ((w + 1) * (w + 1) + dy * dy <= r * r) ++w;
    half[dy + r] = w;
  }
  return half;
}

// Dilation on byte planes. Each image row sits between r zero bytes on either side and r
// zero rows pad the top and bottom, so every step is one flat loop of ORs over the whole
// image that the compiler vectorises, with no edge cases: rows are first dilated
// horizontally by each half-width, then each row ORs the rows dy above and below it at the
// disk's half-width for dy.
class DiskDilation {
 public:
  DiskDilation(int64_t h, int64_t w, int r)
      : h_(h),
        w_(w),
        r_(r),
        stride_(w + 2 * r),
        half_(disk_half_widths(r)),
        plane_size_((h + 2 * r) * stride_),
        planes_(static_cast<size_t>((r + 2) * plane_size_), 0) {}

  // Row y of the foreground found by the last dilate(): 1 inside, 0 outside, w bytes.
  const uint8_t* mask_row(int64_t y) const { return plane(r_ + 1) + y * stride_; }

  // Foreground of one [h, w] image: pixels > 0 (as numpy's `images > 0`), dilated by the
  // disk; pixels outside the image count as background.
  template <typename Tin>
  void dilate(const Tin* img) {
    for (int64_t y = 0; y < h_; ++y) {
      uint8_t* row = plane(0) + y * stride_;
      const Tin* src = img + y * w_;
      for (int64_t x = 0; x < w_; ++x) row[x] = src[x] > Tin(0);
    }
    // Spans from the first to the last image pixel; pad bytes inside it may turn non-zero
    // in planes k >= 1, but only plane 0 (whose pads stay zero) is ever read shifted.
    const int64_t len = (h_ - 1) * stride_ + w_;
    const uint8_t* src = plane(0);
    for (int k = 1; k <= r_; ++k) {
      const uint8_t* prev = plane(k - 1);
      uint8_t* dst = plane(k);
      for (int64_t j = 0; j < len; ++j) dst[j] = prev[j] | src[j - k] | src[j + k];
    }
    uint8_t* out = plane(r_ + 1);
    std::copy_n(plane(half_[r_]), len, out);
    for (int dy = 1; dy <= r_; ++dy) {
      const uint8_t* above = plane(half_[r_ - dy]) - dy * stride_;
      const uint8_t* below = plane(half_[r_ + dy]) + dy * stride_;
      for (int64_t j = 0; j < len; ++j) out[j] |= above[j] | below[j];
    }
  }

 private:
  // Plane k at image pixel (0, 0); its rows are stride_ apart.
  uint8_t* plane(int k) { return planes_.data() + k * plane_size_ + r_ * stride_ + r_; }
  const uint8_t* plane(int k) const { return planes_.data() + k * plane_size_ + r_ * stride_ + r_; }

  int64_t h_, w_;
  int r_;
  int64_t stride_;
  std::vector<int> half_;
  int64_t plane_size_;
  std::vector<uint8_t> planes_;
};

// An image pixel as float32, as bgbench.backgrounds.to_float does: uint8 is x / 255 (IEEE
// division, bit for bit numpy's), float is cast.
inline float image_to_float(uint8_t v) { return static_cast<float>(v) / 255.0f; }
inline float image_to_float(float v) { return v; }
inline float image_to_float(double v) { return static_cast<float>(v); }

// One image of the test set: out = image pixel inside the dilated foreground, bg outside.
template <typename Tin>
void dilate_composite(DiskDilation& dil, const Tin* img, const float* bg, float* out, int64_t h,
                      int64_t w) {
  dil.dilate(img);
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* mask = dil.mask_row(y);
    const Tin* src = img + y * w;
    const float* bgr = bg + y * w;
    float* dst = out + y * w;
    // A branch-free bit select (every pixel converted, used or not) is what GCC vectorises;
    // a float ?: keeps the division behind a branch.
    for (int64_t x = 0; x < w; ++x) {
      const float v = image_to_float(src[x]);
      uint32_t vi, bi;
      std::memcpy(&vi, &v, sizeof vi);
      std::memcpy(&bi, bgr + x, sizeof bi);
      const uint32_t keep = 0u - mask[x];
      const uint32_t r = (vi & keep) | (bi & ~keep);
      std::memcpy(dst + x, &r, sizeof r);
    }
  }
}

}  // namespace bgbench
