#!/usr/bin/python3
"""Independent reader of a TensorBoard event file, for test_tensorboard.cpp.

usage: read_tfevents.py EVENT_FILE

Parses the TFRecord framing and the Event protobuf messages with the struct
module and its own CRC32C (both CRCs of every record are checked), then prints
one line per event:

    file_version <wall_time> <version>
    scalar <wall_time> <step> <value> <tag>

<value> is the float32 simple_value widened to a Python float (repr, exact).
Every record is also parsed by Google's protobuf runtime (Debian's
python3-protobuf) with the message definitions of tensorboard_event.proto,
compiled by protoc into a temporary directory, and must give the same events.
If the `tensorflow` or `tensorboard` package is importable, its reader parses
the file too and must agree. Exit status 0 on success, 1 on any error.
"""

import importlib
import os
import struct
import subprocess
import sys
import tempfile

# ----------------------------------------------------------------- CRC32C

_POLY = 0x82F63B78  # Castagnoli, reflected


def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283
assert crc32c(bytes(32)) == 0x8A9136AA

# ----------------------------------------------------------------- TFRecord


def read_records(path):
    with open(path, "rb") as f:
        blob = f.read()
    pos = 0
    records = []
    while pos < len(blob):
        if len(blob) - pos < 12:
            raise ValueError("truncated record header at offset %d" % pos)
        header = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        if length_crc != masked_crc32c(header):
            raise ValueError("bad length CRC at offset %d" % pos)
        pos += 12
        if len(blob) - pos < length + 4:
            raise ValueError("truncated record data at offset %d" % pos)
        data = blob[pos:pos + length]
        (data_crc,) = struct.unpack("<I", blob[pos + length:pos + length + 4])
        if data_crc != masked_crc32c(data):
            raise ValueError("bad data CRC at offset %d" % pos)
        pos += length + 4
        records.append(data)
    return records


# ----------------------------------------------------------------- protobuf


def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def fields(buf):
    """Yields (field number, wire type, value) of a serialized message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value = buf[pos:pos + n]
            pos += n
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        if pos > len(buf):
            raise ValueError("truncated field %d" % number)
        yield number, wire, value


def decode_event(data):
    """Returns a list of ('file_version', wall, version) or
    ('scalar', wall, step, value, tag) tuples for one Event message."""
    wall_time = 0.0
    step = 0
    version = None
    values = []
    for number, wire, value in fields(data):
        if number == 1 and wire == 1:
            (wall_time,) = struct.unpack("<d", value)
        elif number == 2 and wire == 0:
            step = value - (1 << 64) if value >= (1 << 63) else value
        elif number == 3 and wire == 2:
            version = value.decode("utf-8")
        elif number == 5 and wire == 2:
            for n_s, w_s, v_s in fields(value):  # Summary
                if n_s == 1 and w_s == 2:  # Summary.Value
                    tag = None
                    simple = None
                    for n_v, w_v, v_v in fields(v_s):
                        if n_v == 1 and w_v == 2:
                            tag = v_v.decode("utf-8")
                        elif n_v == 2 and w_v == 5:
                            (simple,) = struct.unpack("<f", v_v)
                    if tag is None or simple is None:
                        raise ValueError("summary value without tag or simple_value")
                    values.append((tag, simple))
    out = []
    if version is not None:
        out.append(("file_version", wall_time, version))
    for tag, simple in values:
        out.append(("scalar", wall_time, step, simple, tag))
    return out


def own_reader(path):
    events = []
    for data in read_records(path):
        events.extend(decode_event(data))
    return events


# ----------------------------------------------------------------- protobuf runtime


def protobuf_reader(path):
    """The events as google.protobuf parses the records with the .proto subset."""
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["protoc", "--proto_path=" + here, "--python_out=" + out, "tensorboard_event.proto"],
                       check=True)
        sys.path.insert(0, out)
        try:
            module = importlib.import_module("tensorboard_event_pb2")
        finally:
            sys.path.remove(out)
    events = []
    for data in read_records(path):
        e = module.Event.FromString(data)
        if e.WhichOneof("what") == "file_version":
            events.append(("file_version", e.wall_time, e.file_version))
        elif e.WhichOneof("what") == "summary":
            for v in e.summary.value:
                if v.WhichOneof("value") != "simple_value":
                    raise ValueError("summary value %r without simple_value" % v.tag)
                events.append(("scalar", e.wall_time, e.step, v.simple_value, v.tag))
    return events


# ----------------------------------------------------------------- optional


def package_reader(path):
    """(name, events) from tensorflow's or tensorboard's reader, or None."""
    protos = None
    name = None
    try:
        import tensorflow as tf  # noqa: F401

        protos = list(tf.compat.v1.train.summary_iterator(path))
        name = "tensorflow"
    except ImportError:
        try:
            from tensorboard.backend.event_processing import event_file_loader

            loader = getattr(event_file_loader, "LegacyEventFileLoader", None)
            if loader is None:
                return None  # only migrating loaders: simple_value not kept
            protos = list(loader(path).Load())
            name = "tensorboard"
        except ImportError:
            return None
    events = []
    for e in protos:
        if e.HasField("file_version"):
            events.append(("file_version", e.wall_time, e.file_version))
        if e.HasField("summary"):
            for v in e.summary.value:
                events.append(("scalar", e.wall_time, e.step, v.simple_value, v.tag))
    return name, events


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 1
    path = argv[1]
    try:
        events = own_reader(path)
    except (OSError, ValueError) as e:
        sys.stderr.write("read_tfevents: %s: %s\n" % (path, e))
        return 1
    try:
        parsed = protobuf_reader(path)
    except Exception as e:  # protoc, import or DecodeError: all mean failure here
        sys.stderr.write("read_tfevents: %s: protobuf runtime: %s\n" % (path, e))
        return 1
    if parsed != events:
        sys.stderr.write("read_tfevents: protobuf runtime disagrees:\n%r\n%r\n" % (parsed, events))
        return 1
    other = package_reader(path)
    if other is not None:
        name, theirs = other
        if theirs != events:
            sys.stderr.write("read_tfevents: %s reader disagrees:\n%r\n%r\n" % (name, theirs, events))
            return 1
        sys.stderr.write("read_tfevents: %s reader agrees\n" % name)
    for e in events:
        if e[0] == "file_version":
            print("file_version %r %s" % (e[1], e[2]))
        else:
            print("scalar %r %d %r %s" % (e[1], e[2], e[3], e[4]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
