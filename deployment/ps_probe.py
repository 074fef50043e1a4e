"""Whether a parameter server answers, not only accepts connections.

A TensorFlow server speaks gRPC over HTTP/2, and an HTTP/2 server sends
its SETTINGS frame as soon as a client has sent the connection preface.
A ps whose process is frozen (SIGSTOP, swapped out, hung host) or a port
held by something that is not a gRPC server still completes the TCP
handshake (the kernel does it), but never sends that frame. So a probe
that connects, sends the preface and waits for a SETTINGS frame tells a
live ps from one that is down *or* does not answer, without any RPC (the
ps runs nothing for it).
"""


import socket
import struct
import time

# The HTTP/2 client connection preface (RFC 7540, 3.5) and an empty
# SETTINGS frame: length 0, type 0x4, flags 0, stream 0.
_PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
_EMPTY_SETTINGS = struct.pack('>I', 0)[1:] + b'\x04\x00' + struct.pack('>I', 0)
_FRAME_HEADER_BYTES = 9
_SETTINGS_TYPE = 4


def probe(address, timeout_secs=1.0):
  """Checks that the gRPC server at `address` answers.

  Args:
    address: 'host:port' (IPv6 hosts in brackets).
    timeout_secs: the most time the connection and the answer may take,
      each.

  Returns:
    None when it answers, else a short reason: 'connection refused',
    'no answer within 1 s', ...
  """
  host, _, port = address.rpartition(':')
  try:
    connection = socket.create_connection((host.strip('[]'), int(port)),
                                          timeout=timeout_secs)
  except ValueError:
    return 'bad address'
  except socket.timeout:
    return 'no connection within %g s' % timeout_secs
  except (OSError, socket.error) as e:
    return 'no connection (%s)' % (getattr(e, 'strerror', None) or e)
  try:
    connection.sendall(_PREFACE + _EMPTY_SETTINGS)
    header = b''
    deadline = time.time() + timeout_secs
    while len(header) < _FRAME_HEADER_BYTES:
      left = deadline - time.time()
      if left <= 0:
        raise socket.timeout()
      connection.settimeout(left)
      chunk = connection.recv(_FRAME_HEADER_BYTES - len(header))
      if not chunk:
        return 'connection closed without an answer'
      header += chunk
  except socket.timeout:
    return 'connected, but no answer within %g s' % timeout_secs
  except (OSError, socket.error) as e:
    return 'connection failed (%s)' % (getattr(e, 'strerror', None) or e)
  finally:
    connection.close()
  if bytearray(header)[3] != _SETTINGS_TYPE:
    return 'connected, but the answer is not from a gRPC server'
  return None


def unanswering_hosts(addresses, timeout_secs=1.0):
  """The addresses among `addresses` that do not answer `probe`."""
  return [a for a in addresses if probe(a, timeout_secs) is not None]
