"""Writes tests/golden/mobilenet_v4_golden.npz: timm's MobileNet V4 outputs.

Run by hand from the repository root, in an environment with torch and
timm (not a project requirement; the tests read the .npz without torch):

    PYTHONPATH=. /path/to/torch-env/bin/python tests/golden/make_mobilenet_v4_golden.py

Each of timm's five `mobilenetv4_*` models is built without downloading
anything, its parameters and batch-norm statistics are replaced by the
seeded arrays of tests/golden/seeded_weights.py, and it classifies a few
seeded images (small, so the file stays small; the images are the slim
networks' [-1, 1] input, and timm gets them as (x01 - mean) / std with
ImageNet's mean and std, as timm's preprocessing gives them). The file records, per
model: the parameter names and shapes (so the tests can regenerate the
same arrays), timm's parameter count at 1000 classes, and the logits and
probabilities; plus the images, the seed and the timm / torch versions.
"""

import argparse
import os

import numpy as np
import timm
import torch

from tests.golden import seeded_weights

MODELS = ('mobilenetv4_conv_small', 'mobilenetv4_conv_medium',
          'mobilenetv4_conv_large', 'mobilenetv4_hybrid_medium',
          'mobilenetv4_hybrid_large')
SEED = 1234
# Two 80x80 images: an odd map size at stride 16 (5x5) and 32 (3x3), so
# the symmetric padding of every strided layer is exercised.
IMAGE_SHAPE = (2, 80, 80, 3)
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'mobilenet_v4_golden.npz')


def _load(model, state):
  result = model.load_state_dict(
      {key: torch.from_numpy(value) for key, value in state.items()},
      strict=False)
  assert all(key.endswith('num_batches_tracked')
             for key in result.missing_keys), result.missing_keys
  assert not result.unexpected_keys, result.unexpected_keys


def _calibrate(model, inputs, seeded):
  """{batch norm: (shift, factor)}, set layer by layer in one forward pass.

  Each batch norm's hook measures its input and moves its statistics
  before it runs, so later layers see already-calibrated earlier ones.
  """
  calibration = {}
  handles = []

  def hook_for(module_name):
    def hook(module, args):
      channels = args[0].transpose(0, 1).reshape(args[0].shape[1], -1)
      shift = np.float32(channels.mean(1).mean().item())
      factor = np.float32(channels.var(1, unbiased=False).mean().item())
      calibration[module_name] = (shift, factor)
      for leaf in ('running_mean', 'running_var'):
        key = '%s.%s' % (module_name, leaf)
        value = seeded_weights.calibrated_statistic(key, seeded[key],
                                                    calibration)
        getattr(module, leaf).copy_(torch.from_numpy(value))
    return hook

  for module_name, module in model.named_modules():
    if isinstance(module, torch.nn.BatchNorm2d):
      handles.append(module.register_forward_pre_hook(hook_for(module_name)))
  with torch.no_grad():
    model(inputs)
  for handle in handles:
    handle.remove()
  return calibration


def _timm_input(images):
  """What timm's V4 models take for the slim networks' [-1, 1] images."""
  mean = np.array([0.485, 0.456, 0.406], dtype=np.float64)
  std = np.array([0.229, 0.224, 0.225], dtype=np.float64)
  return (((images.astype(np.float64) + 1.) / 2. - mean) / std).astype(
      np.float32)


def _run_model(name, images):
  model = timm.create_model(name, pretrained=False, num_classes=1000)
  model.eval()
  state = model.state_dict()
  names = [key for key in state if not key.endswith('num_batches_tracked')]
  shapes = [tuple(state[key].shape) for key in names]
  seeded = seeded_weights.seeded_state_dict(names, shapes, SEED)
  _load(model, seeded)
  inputs = torch.from_numpy(_timm_input(images).transpose(0, 3, 1, 2).copy())
  calibration = _calibrate(model, inputs, seeded)
  # The same arrays the tests build, from the stored calibration.
  _load(model, seeded_weights.seeded_state_dict(names, shapes, SEED,
                                                calibration))
  with torch.no_grad():
    logits = model(inputs)
  ranks, dims = seeded_weights.pack_shapes(shapes)
  norms = sorted(calibration)
  parameters = sum(p.numel() for p in model.parameters())
  return {
      name + '/names': np.array(names),
      name + '/ranks': ranks,
      name + '/dims': dims,
      name + '/parameter_count': np.array(parameters, dtype=np.int64),
      name + '/norms': np.array(norms),
      name + '/norm_shifts': np.array([calibration[n][0] for n in norms],
                                      dtype=np.float32),
      name + '/norm_factors': np.array([calibration[n][1] for n in norms],
                                       dtype=np.float32),
      name + '/logits': logits.numpy().astype(np.float32),
      name + '/probabilities': torch.softmax(logits, -1).numpy().astype(
          np.float32),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output', default=OUTPUT)
  args = parser.parse_args()
  torch.manual_seed(0)
  images = seeded_weights.seeded_images(IMAGE_SHAPE, SEED)
  contents = {'images': images, 'seed': np.array(SEED),
              'timm_version': np.array(timm.__version__),
              'torch_version': np.array(torch.__version__)}
  for name in MODELS:
    contents.update(_run_model(name, images))
    probabilities = contents[name + '/probabilities']
    print('%s: %d parameters, top-1 probabilities %s, logit std %.2f' % (
        name, contents[name + '/parameter_count'],
        np.round(probabilities.max(-1), 3), contents[name + '/logits'].std()))
  np.savez_compressed(args.output, **contents)
  print('wrote %s (%d bytes)' % (args.output, os.path.getsize(args.output)))


if __name__ == '__main__':
  main()
