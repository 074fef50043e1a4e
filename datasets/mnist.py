"""MNIST as written by download_and_convert_mnist.py.

  python download_and_convert_data.py --dataset_name=mnist --dataset_dir=DIR
"""


from datasets import dataset_spec
from datasets import example_codecs

_FILE_PATTERN = 'mnist_%s*.tfrecord'

SPLITS_TO_SIZES = {'train': 60000, 'test': 10000}

_NUM_CLASSES = 10

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'uint8 handwritten digit, 28x28, one channel.',
    'label': 'The digit shown, 0-9.',
}

SPEC = dataset_spec.DatasetSpec(
    name='mnist', file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=_NUM_CLASSES,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS,
    decoder_fn=lambda: example_codecs.classification_decoder(
        'png', channels=1, shape=[28, 28, 1]))

get_split = dataset_spec.make_get_split(SPEC)
