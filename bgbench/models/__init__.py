"""The networks of the method: classifier f, mask generator f_m, background generator f_b, AG-CNN.

Every classifier maps float32 ``[N, 1, 32, 32]`` pixels in [0, 1] to logits ``[N, 10]`` and
exports to ONNX (opset 18, dynamic batch).
"""

from bgbench.models.agcnn import AGCNN, crop_to_mask, largest_component
from bgbench.models.background import TiledBackgroundGenerator
from bgbench.models.classifier import INPUT_SIZE, NUM_CLASSES, VGGClassifier, count_parameters
from bgbench.models.unet import MaskUNet

__all__ = ["AGCNN", "INPUT_SIZE", "NUM_CLASSES", "MaskUNet", "TiledBackgroundGenerator",
           "VGGClassifier", "count_parameters", "crop_to_mask", "largest_component"]
