"""The PyTorch side of the benchmark: runs in an interpreter that has torch.

    python benchmarks/pytorch_tasks.py TASK SPEC.json RESULT.json

`benchmarks/pytorch_column.py` starts it once per measurement, in the
interpreter `--pytorch_python` names (which need not have TensorFlow), and
reads RESULT.json back. Tasks:

* `environment`: versions of torch, torchvision and timm, the CPU
  capability PyTorch dispatches to and its oneDNN version;
* `train`: images/s of training steps of the network PyTorch users would
  pick (`models.PYTORCH_EQUIVALENTS`): forward, cross-entropy, backward and
  an RMSProp update on a synthetic batch, as `workloads.train` does for
  ours and Keras;
* `infer`: batch-1 latency and batch-N images/s in `torch.inference_mode`.

`spec['layout']` is `nchw` or `channels_last` (the model and its input are
converted). This module imports nothing of TensorFlow or of the project
beyond `benchmarks.models`, which is plain Python.
"""

import collections
import json
import os
import platform
import resource
import sys
import time

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from benchmarks import models  # noqa: E402

NUM_CLASSES = 1001
SEED = 0
# The same RMSProp as the TensorFlow side (train_image_classifier.py's
# default); TensorFlow's `decay` is PyTorch's `alpha`.
RMSPROP = dict(lr=0.01, alpha=0.9, momentum=0.9, eps=1.0)


def _peak_rss_mib():
  # Linux reports ru_maxrss in kB.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def environment(_):
  """Versions and CPU support of this interpreter's PyTorch."""
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  import timm  # pylint: disable=g-import-not-at-top
  onednn = [line.strip(' -') for line in torch.__config__.show().splitlines()
            if 'MKL-DNN' in line or 'oneDNN' in line]
  return {'python': platform.python_version(), 'torch': torch.__version__,
          'torchvision': torchvision.__version__, 'timm': timm.__version__,
          'cpu_capability': torch.backends.cpu.get_cpu_capability(),
          'mkldnn_available': bool(torch.backends.mkldnn.is_available()),
          'onednn': onednn[0] if onednn else 'not built in',
          'threads': torch.get_num_threads()}


def build_model(model_name, num_classes=NUM_CLASSES):
  """The PyTorch equivalent of a nets_factory name, random weights."""
  if model_name not in models.PYTORCH_EQUIVALENTS:
    raise ValueError('No PyTorch equivalent of %r is known; models with one: '
                     '%s.' % (model_name,
                              ', '.join(sorted(models.PYTORCH_EQUIVALENTS))))
  library, name, kwargs = models.PYTORCH_EQUIVALENTS[model_name]
  if library == 'timm':
    import timm  # pylint: disable=g-import-not-at-top
    return timm.create_model(name, pretrained=False, num_classes=num_classes,
                             **kwargs)
  import torchvision  # pylint: disable=g-import-not-at-top
  return getattr(torchvision.models, name)(weights=None,
                                           num_classes=num_classes, **kwargs)


def _prepare(spec, batch_size):
  """Threads, the model and a random batch in the spec's layout."""
  import torch  # pylint: disable=g-import-not-at-top
  settings = spec['settings']
  torch.set_num_threads(settings['intra_op_threads'])
  torch.set_num_interop_threads(settings['inter_op_threads'])
  torch.manual_seed(SEED)
  model = build_model(spec['model_name'])
  size = spec['image_size']
  images = torch.rand(batch_size, 3, size, size) * 2.0 - 1.0
  if spec['layout'] == 'channels_last':
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
  elif spec['layout'] != 'nchw':
    raise ValueError('layout must be nchw or channels_last, got %r.' %
                     spec['layout'])
  return torch, model, images


def profile_ops(torch, step, top=10):
  """Runs `step` once under the profiler; self CPU time per op, in ms."""
  with torch.profiler.profile(
      activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    step()
  totals = collections.Counter()
  for event in prof.key_averages():
    totals[event.key] += event.self_cpu_time_total
  return {'total_ms': sum(totals.values()) / 1000.0,
          'ops': [[op, us / 1000.0] for op, us in totals.most_common(top)]}


def train(spec):
  """Images/s of training steps; the result keys of `workloads.train`."""
  start = time.time()
  batch_size = spec['train_batch_size']
  torch, model, images = _prepare(spec, batch_size)
  labels = torch.randint(0, NUM_CLASSES, (batch_size,))
  model.train()
  optimizer = torch.optim.RMSprop(model.parameters(), **RMSPROP)
  loss_fn = torch.nn.CrossEntropyLoss()

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()

  build_s = time.time() - start
  start = time.time()
  step()
  first_step_s = time.time() - start
  for _ in range(spec['warmup_steps']):
    step()
  step_times = []
  cpu_start = _cpu_seconds()
  for _ in range(spec['train_steps']):
    start = time.perf_counter()
    step()
    step_times.append(time.perf_counter() - start)
  cpu_s = _cpu_seconds() - cpu_start
  count = batch_size * len(step_times)
  result = {'images_per_sec': count / sum(step_times),
            'images_per_cpu_sec': count / cpu_s, 'cpu_s': cpu_s,
            'step_times_s': step_times, 'first_step_s': first_step_s,
            'build_s': build_s, 'peak_rss_mib': _peak_rss_mib()}
  if spec.get('profile'):
    result['profile'] = profile_ops(torch, step)
  return result


def infer(spec):
  """Batch-1 latency and batch-N images/s; the keys of `inference.infer`."""
  torch, model, batch = _prepare(spec, spec['infer_batch_size'])
  model.eval()
  single = batch[:1].clone(memory_format=torch.preserve_format)
  latencies_ms = []
  with torch.inference_mode():
    for _ in range(1 + spec['warmup_iters']):
      model(single)
    for _ in range(spec['latency_iters']):
      start = time.perf_counter()
      model(single)
      latencies_ms.append((time.perf_counter() - start) * 1000.0)
    peak_b1 = _peak_rss_mib()
    model(batch)
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    for _ in range(spec['throughput_iters']):
      model(batch)
    elapsed = time.perf_counter() - start
    cpu_s = _cpu_seconds() - cpu_start
    latencies_ms.sort()
    count = batch.shape[0] * spec['throughput_iters']
    result = {'latency_ms': latencies_ms[len(latencies_ms) // 2],
              'latency_ms_p90': latencies_ms[
                  min(len(latencies_ms) - 1, int(0.9 * len(latencies_ms)))],
              'images_per_sec': count / elapsed,
              'images_per_cpu_sec': count / cpu_s, 'cpu_s': cpu_s,
              'peak_rss_b1_mib': peak_b1, 'peak_rss_mib': _peak_rss_mib()}
    if spec.get('profile'):
      result['profile'] = profile_ops(torch, lambda: model(batch))
  return result


TASKS = {'environment': environment, 'train': train, 'infer': infer}


def main(argv):
  if len(argv) != 4 or argv[1] not in TASKS:
    sys.stderr.write('usage: pytorch_tasks.py {%s} SPEC.json RESULT.json\n' %
                     ','.join(sorted(TASKS)))
    return 2
  with open(argv[2]) as f:
    spec = json.load(f)
  result = TASKS[argv[1]](spec)
  with open(argv[3], 'w') as f:
    json.dump(result, f)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
