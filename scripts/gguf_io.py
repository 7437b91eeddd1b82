"""GGUF v3 reading and writing for scripts/train_model.py (numpy only).

Only what the training script needs: every metadata key kept as (type, value) so a file can
be written back with its vocabulary untouched, and F32/F16 tensors. Every offset is checked
against the file's size. The layout follows the GGUF specification (ggml docs/gguf.md):
header, metadata, tensor infos, padding to general.alignment, tensor data.
"""
import struct

import numpy as np

# metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
           U64: "<Q", I64: "<q", F64: "<d"}
# tensor types this module reads and writes
GGML_F32, GGML_F16 = 0, 1
_TENSOR_DTYPE = {GGML_F32: np.float32, GGML_F16: np.float16}


class GGUFError(Exception):
    pass


class _Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, n):
        if n < 0 or self.o + n > len(self.d):
            raise GGUFError(f"truncated at offset {self.o} (need {n} bytes, file has {len(self.d)})")
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.scalar("<Q")
        return bytes(self.take(n))

    def value(self, t):
        if t in _SCALAR:
            return self.scalar(_SCALAR[t])
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.scalar("<I"), self.scalar("<Q")
            if et == ARRAY:
                raise GGUFError("nested arrays are not supported")
            if et in _SCALAR:
                size = struct.calcsize(_SCALAR[et])
                if n * size > len(self.d) - self.o:
                    raise GGUFError(f"array of {n} elements runs past the end of the file")
                return (et, list(struct.unpack(f"<{n}{_SCALAR[et][1]}", self.take(n * size))))
            if et != STRING:
                raise GGUFError(f"unknown array element type {et}")
            return (et, [self.string() for _ in range(n)])
        raise GGUFError(f"unknown metadata type {t}")


class GGUF:
    """kv: dict key (str) -> (type, value); tensors: dict name -> np.ndarray (numpy shape =
    reversed GGUF dims, so a (out, in) weight has GGUF dims [in, out])."""

    def __init__(self):
        self.kv = {}
        self.tensors = {}

    def get(self, key, default=None):
        e = self.kv.get(key)
        if e is None:
            return default
        v = e[1]
        return v.decode("utf-8") if isinstance(v, bytes) else v


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(memoryview(data))
    if bytes(r.take(4)) != b"GGUF":
        raise GGUFError(f"{path}: not a GGUF file")
    version = r.scalar("<I")
    if version not in (2, 3):
        raise GGUFError(f"{path}: GGUF version {version} (2 or 3 supported)")
    n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
    g = GGUF()
    for _ in range(n_kv):
        key = r.string().decode("utf-8")
        t = r.scalar("<I")
        g.kv[key] = (t, r.value(t))
    infos = []
    for _ in range(n_tensors):
        name = r.string().decode("utf-8")
        nd = r.scalar("<I")
        if nd > 4:
            raise GGUFError(f"{path}: tensor {name} has {nd} dimensions")
        dims = [r.scalar("<Q") for _ in range(nd)]
        tt, off = r.scalar("<I"), r.scalar("<Q")
        infos.append((name, dims, tt, off))
    align = g.get("general.alignment", 32)
    base = (r.o + align - 1) // align * align
    for name, dims, tt, off in infos:
        if tt not in _TENSOR_DTYPE:
            raise GGUFError(f"{path}: tensor {name} has type {tt}; only F32 and F16 are read here")
        n = int(np.prod(dims)) if dims else 1
        nbytes = n * np.dtype(_TENSOR_DTYPE[tt]).itemsize
        if base + off + nbytes > len(data):
            raise GGUFError(f"{path}: tensor {name} runs past the end of the file")
        a = np.frombuffer(data, dtype=_TENSOR_DTYPE[tt], count=n, offset=base + off)
        g.tensors[name] = a.reshape(list(reversed(dims))).astype(np.float32)
    return g


def _pack_value(t, v):
    if t in _SCALAR:
        return struct.pack(_SCALAR[t], v)
    if t == STRING:
        b = v.encode("utf-8") if isinstance(v, str) else v
        return struct.pack("<Q", len(b)) + b
    if t == ARRAY:
        et, items = v
        out = [struct.pack("<IQ", et, len(items))]
        if et in _SCALAR:
            out.append(struct.pack(f"<{len(items)}{_SCALAR[et][1]}", *items))
        else:
            out.extend(_pack_value(et, x) for x in items)
        return b"".join(out)
    raise GGUFError(f"cannot write metadata type {t}")


def write(path, kv, tensors, align=32):
    """kv: dict key -> (type, value), written in its order; tensors: list of (name, array), F32."""
    head = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kv))]
    for key, (t, v) in kv.items():
        head.append(_pack_value(STRING, key) + struct.pack("<I", t) + _pack_value(t, v))
    off, blobs = 0, []
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype=np.float32)
        dims = list(reversed(a.shape))
        head.append(_pack_value(STRING, name) + struct.pack("<I", len(dims)) +
                    b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", GGML_F32, off))
        blob = a.tobytes()
        pad = (-len(blob)) % align
        blobs.append(blob + b"\0" * pad)
        off += len(blob) + pad
    h = b"".join(head)
    h += b"\0" * ((-len(h)) % align)
    with open(path, "wb") as f:
        f.write(h)
        for b in blobs:
            f.write(b)
