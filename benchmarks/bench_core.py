"""asv: building a test set of 10,000 MNIST-size images, compiled core vs numpy + scikit-image.

Torch-free: runs where only numpy, scikit-image and the core are installed.
"""

from bgbench.backgrounds import DILATION_RADIUS, apply_reference, background
from bgbench.bench.core import mnist_like


class BuildTestSetCore:
    """``bgbench._core.build_test_set`` (torch-free, OpenMP) by thread count."""

    params = [1, 2]
    param_names = ["threads"]

    def setup(self, threads):
        try:
            from bgbench import _core
        except ImportError:
            raise NotImplementedError("bgbench._core is not built") from None
        self.build = _core.build_test_set
        self.images, self.bg = mnist_like(10_000), background("random")

    def time_build_test_set(self, threads):
        self.build(self.images, self.bg, DILATION_RADIUS, threads)


class BuildTestSetReference:
    """``bgbench.backgrounds.apply_reference`` (scipy binary dilation, numpy where)."""

    def setup(self):
        self.images, self.bg = mnist_like(10_000), background("random")

    def time_apply_reference(self):
        apply_reference(self.images, self.bg)
