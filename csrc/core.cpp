// bgbench._core: the torch-free pybind11 module the evaluation harness uses to build test
// sets (dilate each image's foreground by a disk, composite a background outside it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <omp.h>

#include <string>
#include <vector>

#include "kernels/composite.h"

namespace py = pybind11;

namespace {

enum class Pixel { kUint8, kFloat32, kFloat64 };

Pixel pixel_type(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<uint8_t>())) return Pixel::kUint8;
  if (a.dtype().is(py::dtype::of<float>())) return Pixel::kFloat32;
  if (a.dtype().is(py::dtype::of<double>())) return Pixel::kFloat64;
  throw py::type_error(std::string(name) + " must be uint8, float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

template <typename T>
std::vector<float> cast_background(const void* raw, int64_t size) {
  const T* src = static_cast<const T*>(raw);
  return std::vector<float>(src, src + size);
}

template <typename Tin>
void build(const void* raw, const float* bg, float* out, int64_t n, int64_t h, int64_t w,
           int radius, int threads) {
  const Tin* images = static_cast<const Tin*>(raw);
  // Images are independent: static chunks keep each thread on a contiguous run of them.
#pragma omp parallel num_threads(threads)
  {
    bgbench::DiskDilation dil(h, w, radius);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i)
      bgbench::dilate_composite(dil, images + i * h * w, bg, out + i * h * w, h, w);
  }
}

py::array_t<float> build_test_set(const py::array& images, const py::array& background,
                                  int radius, int threads) {
  const Pixel ipix = pixel_type(images, "images");
  const Pixel bpix = pixel_type(background, "background");
  if (images.ndim() != 3)
    throw py::value_error("images must have shape [N, H, W], got " + shape_str(images));
  if (background.ndim() != 2 || background.shape(0) != images.shape(1) ||
      background.shape(1) != images.shape(2))
    throw py::value_error("background must have shape [H, W] = (" +
                          std::to_string(images.shape(1)) + ", " +
                          std::to_string(images.shape(2)) + "), got " + shape_str(background));
  if (!(images.flags() & py::array::c_style))
    throw py::value_error("images must be C-contiguous (use np.ascontiguousarray)");
  if (!(background.flags() & py::array::c_style))
    throw py::value_error("background must be C-contiguous (use np.ascontiguousarray)");
  if (radius < 0) throw py::value_error("radius must be >= 0, got " + std::to_string(radius));
  if (threads < 0) throw py::value_error("threads must be >= 0, got " + std::to_string(threads));

  const int64_t n = images.shape(0), h = images.shape(1), w = images.shape(2);
  py::array_t<float> out({n, int64_t{1}, h, w});
  float* out_ptr = out.mutable_data();
  const void* img_ptr = images.data();
  const void* bg_ptr = background.data();
  const int nthreads = threads == 0 ? omp_get_max_threads() : threads;
  {
    py::gil_scoped_release release;
    // The background is cast, never rescaled (as the reference's bg.astype(np.float32)).
    const std::vector<float> bg = bpix == Pixel::kUint8   ? cast_background<uint8_t>(bg_ptr, h * w)
                                  : bpix == Pixel::kFloat32 ? cast_background<float>(bg_ptr, h * w)
                                                            : cast_background<double>(bg_ptr, h * w);
    if (ipix == Pixel::kUint8)
      build<uint8_t>(img_ptr, bg.data(), out_ptr, n, h, w, radius, nthreads);
    else if (ipix == Pixel::kFloat32)
      build<float>(img_ptr, bg.data(), out_ptr, n, h, w, radius, nthreads);
    else
      build<double>(img_ptr, bg.data(), out_ptr, n, h, w, radius, nthreads);
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
  mod.doc() = "bgbench's torch-free compiled core (test-set construction for the harness).";
  mod.def("build_test_set", &build_test_set, py::arg("images"), py::arg("background"),
          py::arg("radius") = 2, py::arg("threads") = 0,
          R"doc(Composite one background behind every image, outside its dilated foreground.

images: uint8, float32 or float64 [N, H, W], C-contiguous; background: the same dtypes,
[H, W]. The foreground is the pixels > 0 dilated by skimage.morphology.disk(radius)
(outside the image counts as background). Inside it the output is the image pixel (uint8
as x / 255, float cast to float32), outside it the background cast to float32: exactly
bgbench.backgrounds.apply_reference. Returns float32 [N, 1, H, W]. threads=0 uses
OpenMP's default (all cores). Releases the GIL while it works.)doc");
}
