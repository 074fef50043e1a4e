"""benchmarks/vww_annotation_memory.py on a small COCO-shaped file."""

import json

from benchmarks import vww_annotation_memory as memory
from datasets import convert_visualwakewords as vww


def test_synthetic_file_is_coco_shaped_and_measured(monkeypatch, tmp_path,
                                                    capsys):
  monkeypatch.setattr(memory, 'NUM_IMAGES', 40)
  monkeypatch.setattr(memory, 'NUM_ANNOTATIONS', 300)
  path = str(tmp_path / 'instances_train2014.json')
  memory.write_synthetic_coco(path)
  with open(path) as f:
    raw = json.load(f)
  assert len(raw['images']) == 40 and len(raw['annotations']) == 300
  assert all('segmentation' in a for a in raw['annotations'])
  assert [c['name'] for c in raw['categories']][0] == 'person'
  memory.measure(path, str(tmp_path))
  line = capsys.readouterr().out
  assert line.startswith('40 images (') and 'peak RSS' in line
  with open(vww.vww_annotation_path(str(tmp_path), 'train')) as f:
    written = json.load(f)
  assert written['images'] == raw['images']
