// bgbench._core: the torch-free pybind11 module the evaluation harness uses to build test
// sets (dilate each image's foreground by a disk, composite a background outside it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <omp.h>

#include <string>
#include <vector>

#include "kernels/dilate.h"

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

// One thread's run of images. On x86-64 it is also compiled for AVX2 and picked at load
// time: twice the vector width for the byte-plane dilation and the select.
template <typename Tin>
inline void build_run(const Tin* images, const float* bg, float* out, int64_t begin, int64_t end,
                      int64_t h, int64_t w, int radius) {
  bgbench::DiskDilation dil(h, w, radius);
  for (int64_t i = begin; i < end; ++i)
    bgbench::dilate_composite(dil, images + i * h * w, bg, out + i * h * w, h, w);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define BGBENCH_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BGBENCH_CLONES
#endif

BGBENCH_CLONES void run_uint8(const void* images, const float* bg, float* out, int64_t begin,
                              int64_t end, int64_t h, int64_t w, int radius) {
  build_run(static_cast<const uint8_t*>(images), bg, out, begin, end, h, w, radius);
}
BGBENCH_CLONES void run_float32(const void* images, const float* bg, float* out, int64_t begin,
                                int64_t end, int64_t h, int64_t w, int radius) {
  build_run(static_cast<const float*>(images), bg, out, begin, end, h, w, radius);
}
BGBENCH_CLONES void run_float64(const void* images, const float* bg, float* out, int64_t begin,
                                int64_t end, int64_t h, int64_t w, int radius) {
  build_run(static_cast<const double*>(images), bg, out, begin, end, h, w, radius);
}

using RunFn = void (*)(const void*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int);

void build(RunFn run, const void* images, const float* bg, float* out, int64_t n, int64_t h,
           int64_t w, int radius, int threads) {
  // Images are independent: each thread takes one contiguous run of them.
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    run(images, bg, out, n * t / nt, n * (t + 1) / nt, h, w, radius);
  }
}

py::array_t<float> build_test_set(const py::array& images, const py::array& background, int radius,
                                  int threads) {
  const Pixel ipix = pixel_type(images, "images");
  const Pixel bpix = pixel_type(background, "background");
  if (images.ndim() != 3)
    throw py::value_error("images must have shape [N, H, W], got " + shape_str(images));
  if (background.ndim() != 2 || background.shape(0) != images.shape(1) ||
      background.shape(1) != images.shape(2))
    throw py::value_error("background must have shape [H, W] = (" +
                          std::to_string(images.shape(1)) + ", " + std::to_string(images.shape(2)) +
                          "), got " + shape_str(background));
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
    const std::vector<float> bg = bpix == Pixel::kUint8 ? cast_background<uint8_t>(bg_ptr, h * w)
                                  : bpix == Pixel::kFloat32
                                      ? cast_background<float>(bg_ptr, h * w)
                                      : cast_background<double>(bg_ptr, h * w);
    const RunFn run = ipix == Pixel::kUint8     ? run_uint8
                      : ipix == Pixel::kFloat32 ? run_float32
                                                : run_float64;
    build(run, img_ptr, bg.data(), out_ptr, n, h, w, radius, nthreads);
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
