"""Writes the timm golden files the weight-conversion tests compare with.

Run by hand from the repository root with an environment that has torch and
timm (not a requirement of this project):

    /path/to/torch-env/bin/python tests/golden/make_timm_goldens.py

For each timm model below it builds the model without downloading anything,
fills it with `seeded_timm_weights` (numpy, so the tests rebuild the same weights
without torch), runs it on seeded images and saves the tensor names and
shapes, the image size (the tests redraw the images from the same seed) and
timm's logits and probabilities as tests/golden/timm_<name>.npz (a few kB
each).

For the models in PIPELINE_NAMES it also writes timm_pipeline_<name>.npz:
timm's outputs on a seeded PNG-sized picture prepared as timm prepares
images (the central 56x56 of the 64x64 picture, x / 255, ImageNet's
mean/std), which the tests feed through the scripts as an image file.
"""

import json
import os
import sys

import numpy as np
import timm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seeded_timm_weights  # noqa: E402  pylint: disable=g-import-not-at-top

TIMM_NAMES = ['mobilenetv1_100', 'mobilenetv2_100', 'mobilenetv3_large_100',
              'mobilenetv3_small_100', 'tf_mobilenetv3_large_100',
              'tf_mobilenetv3_small_minimal_100']
IMAGE_SIZE = 64
PIPELINE_NAMES = ['mobilenetv1_100', 'mobilenetv2_100']
# The picture's side and the network's input: the evaluation preprocessing
# keeps the central 87.5 % (56 of 64 pixels), so it resizes nothing.
PICTURE_SIZE = 64
PIPELINE_INPUT_SIZE = 56
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def seeded_model(timm_name):
  """(timm model with the seeded weights, its (name, shape) list)."""
  model = timm.create_model(timm_name, pretrained=False).eval()
  shapes = [(name, list(value.shape))
            for name, value in model.state_dict().items()
            if not name.endswith('num_batches_tracked')]
  state = seeded_timm_weights.seeded_state_dict(shapes)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()},
                        strict=False)
  return model, shapes


def _outputs(model, images):
  """(logits, probabilities) of NHWC float32 `images`."""
  with torch.no_grad():
    logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  return logits, torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def pipeline_golden(timm_name):
  model, shapes = seeded_model(timm_name)
  picture = seeded_timm_weights.seeded_uint8_image(PICTURE_SIZE)
  start = (PICTURE_SIZE - PIPELINE_INPUT_SIZE) // 2
  crop = picture[start:start + PIPELINE_INPUT_SIZE,
                 start:start + PIPELINE_INPUT_SIZE]
  images = ((crop.astype(np.float32) / 255 - IMAGENET_MEAN) /
            IMAGENET_STD)[np.newaxis].astype(np.float32)
  logits, probabilities = _outputs(model, images)
  return dict(shapes=json.dumps(shapes), picture_size=PICTURE_SIZE,
              image_size=PIPELINE_INPUT_SIZE, logits=logits,
              probabilities=probabilities,
              versions=json.dumps({'torch': torch.__version__,
                                   'timm': timm.__version__}))


def golden(timm_name):
  model, shapes = seeded_model(timm_name)
  images = seeded_timm_weights.seeded_images(IMAGE_SIZE)
  with torch.no_grad():
    logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  probabilities = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
  return dict(shapes=json.dumps(shapes), image_size=IMAGE_SIZE,
              logits=logits,
              probabilities=probabilities,
              versions=json.dumps({'torch': torch.__version__,
                                   'timm': timm.__version__}))


def main():
  directory = os.path.dirname(os.path.abspath(__file__))
  for timm_name in TIMM_NAMES:
    path = os.path.join(directory, 'timm_%s.npz' % timm_name)
    np.savez_compressed(path, **golden(timm_name))
    print('wrote', path)
  for timm_name in PIPELINE_NAMES:
    path = os.path.join(directory, 'timm_pipeline_%s.npz' % timm_name)
    np.savez_compressed(path, **pipeline_golden(timm_name))
    print('wrote', path)


if __name__ == '__main__':
  main()
