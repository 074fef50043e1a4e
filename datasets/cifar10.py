"""CIFAR-10 as written by download_and_convert_cifar10.py.

  python download_and_convert_data.py --dataset_name=cifar10 --dataset_dir=DIR
"""


from datasets import dataset_spec
from datasets import example_codecs

# Also matches the single file per split of slim's own converter
# (cifar10_train.tfrecord).
_FILE_PATTERN = 'cifar10_%s*.tfrecord'

SPLITS_TO_SIZES = {'train': 50000, 'test': 10000}

_NUM_CLASSES = 10

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'uint8 RGB picture, 32x32.',
    'label': 'Class index 0-9 (labels.txt: airplane ... truck).',
}

SPEC = dataset_spec.DatasetSpec(
    name='cifar10', file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=_NUM_CLASSES,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS,
    decoder_fn=lambda: example_codecs.classification_decoder(
        'png', shape=[32, 32, 3]))

get_split = dataset_spec.make_get_split(SPEC)
