"""`shapes`, the embedded default dataset (see generate_shapes.py).

  python download_and_convert_data.py --dataset_name=shapes --dataset_dir=DIR
"""


from datasets import dataset_spec
from datasets import example_codecs
from datasets import generate_shapes

_FILE_PATTERN = 'shapes_%s_*.tfrecord'

# Sizes of a default generation; the manifest written at generation has the
# real counts (sizes are configurable).
SPLITS_TO_SIZES = {
    'train': generate_shapes.DEFAULT_TRAIN_PER_CLASS *
             len(generate_shapes.CLASS_NAMES),
    'validation': generate_shapes.DEFAULT_VALIDATION_PER_CLASS *
                  len(generate_shapes.CLASS_NAMES),
}

_NUM_CLASSES = len(generate_shapes.CLASS_NAMES)

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A colour image of one shape, 64 x 64 by default.',
    'label': 'The shape: %s.' % ', '.join(
        '%d %s' % item for item in enumerate(generate_shapes.CLASS_NAMES)),
}

SPEC = dataset_spec.DatasetSpec(
    name=generate_shapes.DATASET_NAME, file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=_NUM_CLASSES,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS,
    decoder_fn=lambda: example_codecs.classification_decoder('jpeg'))

get_split = dataset_spec.make_get_split(SPEC)
