"""slim's `dataset_utils` names, gathered from the modules that hold them.

Code written against slim imports this module; the project's own code
imports the modules below directly:

* `example_codecs`: tf.train.Example features, builders and decoders;
* `label_files`: `labels.txt`;
* `downloads`: downloads and checksums;
* `safe_unpack`: tar extraction and unpickling of untrusted files;
* `image_files`: image files to storable bytes;
* `core.atomic_files`: crash-safe single files;
* `sharded_writer`: crash-safe sharded TFRecords and their manifests;
* `tfrecord_checks`: naming the damaged shard;
* `dataset_errors`: the exceptions.
"""


# pylint: disable=unused-import
from core.atomic_files import atomic_write
from core.atomic_files import commit_file
from core.atomic_files import remove_stale_temporaries
from datasets.dataset_errors import ChecksumError
from datasets.dataset_errors import CONVERT_COMMAND
from datasets.dataset_errors import CorruptShardError
from datasets.dataset_errors import DatasetError
from datasets.dataset_errors import DatasetNotFoundError
from datasets.dataset_errors import UnreadableImageError
from datasets.dataset_errors import UnsafeArchiveError
from datasets.dataset_errors import UnsafePickleError
from datasets.downloads import download
from datasets.downloads import download_and_uncompress_tarball
from datasets.downloads import file_digest
from datasets.downloads import maybe_download
from datasets.downloads import parse_checksum
from datasets.downloads import verify_checksum
from datasets.example_codecs import bytes_feature
from datasets.example_codecs import bytes_list_feature
from datasets.example_codecs import classification_decoder
from datasets.example_codecs import classification_keys_to_features
from datasets.example_codecs import float_feature
from datasets.example_codecs import float_list_feature
from datasets.example_codecs import image_to_tfexample
from datasets.example_codecs import imagenet_to_tfexample
from datasets.example_codecs import int64_feature
from datasets.image_files import encode_image_file
from datasets.label_files import has_labels
from datasets.label_files import LABELS_FILENAME
from datasets.label_files import read_label_file
from datasets.label_files import write_label_file
from datasets.safe_unpack import check_tar_member
from datasets.safe_unpack import open_tar_checked
from datasets.safe_unpack import safe_extract
from datasets.safe_unpack import safe_pickle_load
from datasets.sharded_writer import default_shard_name
from datasets.sharded_writer import manifest_path
from datasets.sharded_writer import MANIFEST_FORMAT
from datasets.sharded_writer import open_sharded_output_tfrecords
from datasets.sharded_writer import read_manifest
from datasets.sharded_writer import split_is_complete
from datasets.sharded_writer import write_split
from datasets.tfrecord_checks import check_tfrecord_file
from datasets.tfrecord_checks import check_tfrecord_framing
from datasets.tfrecord_checks import find_corrupt_shard
from datasets.tfrecord_checks import masked_crc32c
# pylint: enable=unused-import
