"""A user's own images, as written by convert_image_folder.py.

  python download_and_convert_data.py --dataset_name=image_folder \
      --source_dir=IMAGES --dataset_dir=DIR

IMAGES holds one subfolder per class. The class and example counts are only
known after conversion; they are read from the manifests it writes.
"""


from datasets import dataset_spec
from datasets import example_codecs

DATASET_NAME = 'image_folder'

_FILE_PATTERN = 'image_folder_%s_*.tfrecord'

# Unknown until conversion: read from the manifests.
SPLITS_TO_SIZES = {'train': None, 'validation': None}

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'The picture as stored (JPEG or PNG), any size.',
    'label': 'The class index; labels.txt maps it to the subfolder name.',
}

SPEC = dataset_spec.DatasetSpec(
    name=DATASET_NAME, file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=None,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS,
    decoder_fn=lambda: example_codecs.classification_decoder('jpeg'))

get_split = dataset_spec.make_get_split(SPEC)
