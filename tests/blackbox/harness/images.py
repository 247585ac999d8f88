# images.py - valid test images made in memory: PNGs (gradient or noise) and baseline JPEGs
# written directly in the DCT domain (any size, up to a byte target), plus the size readers the
# tests compare the relay's answers with. Python 3 standard library only.
import random
import struct
import zlib


def make_png(width=64, height=48, noise=False, seed=1, gray=False):
    """A valid 8-bit PNG (RGB or gray) of a gradient, or noise when noise=True."""
    rnd = random.Random(seed)
    ch = 1 if gray else 3
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        if noise:
            rows += bytes(rnd.getrandbits(8) for _ in range(width * ch))
        else:
            for x in range(width):
                if gray:
                    rows.append((x * 255 // max(1, width - 1)) & 0xFF)
                else:
                    rows += bytes(((x * 4) & 0xFF, (y * 4) & 0xFF, 128))

    def chunk(typ, data):
        return struct.pack(">I", len(data)) + typ + data + \
            struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if gray else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + \
        chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b"")


class _BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, code, length):
        self.acc = (self.acc << length) | (code & ((1 << length) - 1))
        self.n += length
        while self.n >= 8:
            self.n -= 8
            b = (self.acc >> self.n) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)  # byte stuffing
        self.acc &= (1 << self.n) - 1 if self.n else 0

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1 bits
        return bytes(self.out)


def _huff_codes(bits, vals):
    """Canonical Huffman codes from the DHT form: bits[i] = number of codes of length i+1."""
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


# Our own (valid, not the Annex K) Huffman tables, sent in the DHT segment: every DC category
# 0..11 gets a 4-bit code and every AC symbol (run 0..15, size 1..10, plus EOB and ZRL) an
# 8-bit code; neither table uses the all-ones code, as the standard requires.
_DC_VALS = list(range(12))
_DC_BITS = [0, 0, 0, 12] + [0] * 12
_AC_VALS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]
_AC_BITS = [0] * 7 + [len(_AC_VALS)] + [0] * 8
_DC_CODES = _huff_codes(_DC_BITS, _DC_VALS)
_AC_CODES = _huff_codes(_AC_BITS, _AC_VALS)


def _magnitude(v):
    """JPEG (size, bits) of a coefficient value."""
    a = abs(v)
    size = a.bit_length()
    bits = v if v >= 0 else v + (1 << size) - 1
    return size, bits


def make_jpeg(width=64, height=48, noise=0, seed=1, gray_level=128):
    """A valid baseline grayscale JPEG written directly in the DCT domain. Each 8x8 block has a
    DC level near gray_level; noise (0..63) random AC coefficients per block make the image
    (and the file) bigger. Decoders (libjpeg, libvips) read it as a normal image."""
    rnd = random.Random(seed)
    out = bytearray(b"\xff\xd8")
    # APP0 JFIF
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    out += b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
    # DQT: table 0, all ones (coefficients are written already quantized)
    dqt = b"\x00" + bytes([1] * 64)
    out += b"\xff\xdb" + struct.pack(">H", len(dqt) + 2) + dqt
    # SOF0: 8-bit, height, width, 1 component (id 1, sampling 1x1, quant table 0)
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    out += b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
    # DHT: DC table 0 and AC table 0
    dht = b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS) + \
        b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALS)
    out += b"\xff\xc4" + struct.pack(">H", len(dht) + 2) + dht
    # SOS: 1 component, tables 0/0, spectral 0..63, approx 0
    sos = b"\x01\x01\x00\x00\x3f\x00"
    out += b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos
    bw = _BitWriter()
    prev_dc = 0
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    noise = max(0, min(63, noise))
    for _ in range(blocks):
        # DC of the level-shifted block: 8 * (pixel - 128) for a flat block
        level = gray_level + (rnd.randint(-40, 40) if noise else 0)
        dc = 8 * (max(0, min(255, level)) - 128)
        diff = dc - prev_dc
        prev_dc = dc
        size, bits = _magnitude(diff)
        code, ln = _DC_CODES[size]
        bw.put(code, ln)
        if size:
            bw.put(bits, size)
        # AC: the first `noise` zigzag positions get random nonzero values
        for _k in range(noise):
            v = rnd.choice((-1, 1)) * rnd.randint(1, 15)
            size, bits = _magnitude(v)
            code, ln = _AC_CODES[size]  # run 0
            bw.put(code, ln)
            bw.put(bits, size)
        if noise < 63:
            code, ln = _AC_CODES[0x00]  # EOB
            bw.put(code, ln)
    out += bw.flush()
    out += b"\xff\xd9"
    return bytes(out)


def make_jpeg_of_size(target_bytes, seed=1):
    """A JPEG of roughly target_bytes (within ~10 %), noise blocks. Returns (bytes, w, h)."""
    per_block = (63 * (8 + 3.5) + 6) / 8.0  # bits per noisy block / 8
    blocks = max(1, int(target_bytes / per_block))
    wb = max(1, int(blocks ** 0.5))
    hb = max(1, (blocks + wb - 1) // wb)
    w, h = wb * 8, hb * 8
    return make_jpeg(w, h, noise=63, seed=seed), w, h


def jpeg_dims(data):
    """(width, height) from the first SOFn marker of a JPEG, or None."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker == 0xDA:
            return None
        i += 2 + seg_len
    return None


def png_dims(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])

