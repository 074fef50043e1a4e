"""Reading image files into bytes the TFExample decoder accepts."""


import io

from PIL import Image

from datasets import dataset_errors

# Re-encoding quality for images that cannot be stored as they are (CMYK
# JPEGs); high enough not to change what a network sees.
_JPEG_QUALITY = 95

_STORED_AS_IS = {'JPEG': ('RGB', 'L'),
                 'PNG': ('RGB', 'RGBA', 'L', 'LA', 'P')}


def encode_image_file(path):
  """Reads an image file and returns bytes the slim decoder can read.

  JPEG and PNG files are kept byte for byte. Others (CMYK JPEGs, BMP, GIF,
  TIFF, WebP, 16-bit images) are converted to RGB and re-encoded: JPEG for
  JPEG sources, PNG (lossless) otherwise.

  Args:
    path: the image file.

  Returns:
    (encoded bytes, format `jpeg` or `png`, height, width).

  Raises:
    UnreadableImageError: the file is not a complete, decodable image.
  """
  try:
    with Image.open(path) as probe:  # Reads the header only.
      probe.format  # pylint: disable=pointless-statement
    with open(path, 'rb') as f:
      data = f.read()
    image = Image.open(io.BytesIO(data))
    image.load()  # Decodes everything, so truncated files fail here.
  except Exception as e:  # pylint: disable=broad-except
    # PIL raises many types (IOError, SyntaxError, DecompressionBombError...).
    raise dataset_errors.UnreadableImageError('%s: %s' % (path, e))
  width, height = image.size
  if image.mode in _STORED_AS_IS.get(image.format, ()):
    return data, image.format.lower(), height, width
  out = io.BytesIO()
  if image.format == 'JPEG':
    image.convert('RGB').save(out, 'JPEG', quality=_JPEG_QUALITY)
    return out.getvalue(), 'jpeg', height, width
  image.convert('RGBA' if 'A' in image.getbands() else 'RGB').save(out, 'PNG')
  return out.getvalue(), 'png', height, width
