"""The Flowers photos as written by download_and_convert_flowers.py.

  python download_and_convert_data.py --dataset_name=flowers --dataset_dir=DIR
"""


from datasets import dataset_spec
from datasets import example_codecs

_FILE_PATTERN = 'flowers_%s_*.tfrecord'

SPLITS_TO_SIZES = {'train': 3320, 'validation': 350}

_NUM_CLASSES = 5

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'uint8 RGB photo; height and width differ per photo.',
    'label': 'Species index 0-4, named in labels.txt.',
}

SPEC = dataset_spec.DatasetSpec(
    name='flowers', file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=_NUM_CLASSES,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS,
    decoder_fn=lambda: example_codecs.classification_decoder('jpeg'))

get_split = dataset_spec.make_get_split(SPEC)
