// The assertion the C++ tests share: a failed EXPECT prints where and why and counts, so one
// run reports every failure; main() returns the count's verdict through report().
#pragma once

#include <cstdio>
#include <cstdlib>

namespace bgbench_test {

inline int failures = 0;

inline int report(const char* what) {
  if (failures)
    std::fprintf(stderr, "%d failures\n", failures);
  else
    std::printf("all %s tests passed\n", what);
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

}  // namespace bgbench_test

#define EXPECT(cond, ...)                                             \
  do {                                                                \
    if (!(cond)) {                                                    \
      ++bgbench_test::failures;                                       \
      std::fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                              \
      std::fprintf(stderr, "\n");                                     \
    }                                                                 \
  } while (0)
