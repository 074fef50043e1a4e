"""A model file as C/C++ source, for targets without a file system.

What `xxd -i model.tflite` gives the TensorFlow Lite Micro guides, plus the
alignment the flatbuffer needs when read in place and `const` so it stays in
flash: an array `<name>` of the bytes and an int `<name>_len` holding their
count.
"""

import re

# TFLite Micro reads the flatbuffer in place; 16 covers its widest fields.
DEFAULT_ALIGNMENT = 16
_BYTES_PER_LINE = 12  # as xxd -i


def variable_name(path):
  """xxd's rule: the file name with every character outside [A-Za-z0-9_]
  replaced by `_`, and a leading digit prefixed with `_`."""
  name = re.sub(r'[^A-Za-z0-9_]', '_', path.rsplit('/', 1)[-1])
  return '_' + name if name[:1].isdigit() else name


def to_c_source(data, name, alignment=DEFAULT_ALIGNMENT, source=None):
  """The text of a C/C++ file defining `name` and `name_len`.

  Args:
    data: the bytes (e.g. a .tflite model).
    name: a C identifier.
    alignment: the array's alignment in bytes (a power of two).
    source: what the bytes came from, named in a comment.

  Returns:
    The source text; it compiles as C11 and as C++11.

  Raises:
    ValueError: `name` is not a C identifier or `alignment` not a power of 2.
  """
  if not re.match(r'[A-Za-z_][A-Za-z0-9_]*\Z', name or ''):
    raise ValueError('%r is not a C identifier.' % (name,))
  if alignment < 1 or alignment & (alignment - 1):
    raise ValueError('The alignment %r is not a power of two.' % (alignment,))
  lines = ['// %d bytes%s, written by export_tflite.py.' % (
      len(data), ' of ' + source if source else ''), '']
  # alignas is a keyword in C++11 and a macro of <stdalign.h> in C11.
  lines += ['#ifndef __cplusplus', '#include <stdalign.h>', '#endif', '']
  # Declared extern first: a C++ namespace-scope const is otherwise local to
  # its file, and the application links against these names.
  lines += ['extern const unsigned char %s[];' % name,
            'extern const unsigned int %s_len;' % name, '']
  lines.append('alignas(%d) const unsigned char %s[] = {' % (alignment, name))
  for start in range(0, len(data), _BYTES_PER_LINE):
    chunk = data[start:start + _BYTES_PER_LINE]
    lines.append('  ' + ', '.join('0x%02x' % b for b in bytearray(chunk)) +
                 ',')
  lines.append('};')
  lines.append('const unsigned int %s_len = %d;' % (name, len(data)))
  return '\n'.join(lines) + '\n'
