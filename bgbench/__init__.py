"""bgbench: background robustness of image classifiers (Cruz & Cardoso), as software.

Importing this package (and ``bgbench.harness``) never imports torch.
"""

__version__ = "0.1.0"
