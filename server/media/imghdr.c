/* imghdr.c - see imghdr.h. Every read is checked against len before it happens. */
#include "media/imghdr.h"

#include <stdbool.h>
#include <string.h>

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The SOF markers libjpeg-turbo decodes: baseline, extended and progressive, Huffman (C0-C2) or
 * arithmetic (C9, CA). Lossless (C3, CB) and hierarchical (C5-C7, CD-CF) ones it refuses. */
static bool sof_supported(uint8_t m)
{
    return m == 0xc0 || m == 0xc1 || m == 0xc2 || m == 0xc9 || m == 0xca;
}

static bool sof_any(uint8_t m)
{
    return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

/* What libjpeg's read_markers makes of a marker before the first scan. */
typedef enum { MK_BAD, MK_ALONE, MK_SKIP, MK_SOF, MK_DHT, MK_DQT, MK_DRI, MK_SOS } mk_kind;

static mk_kind marker_kind(uint8_t m)
{
    if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) return MK_ALONE; /* TEM, RSTn: no length */
    if (sof_any(m)) return MK_SOF;
    if (m == 0xc4) return MK_DHT;
    if (m == 0xdb) return MK_DQT;
    if (m == 0xdd) return MK_DRI;
    if (m == 0xda) return MK_SOS;
    if ((m >= 0xe0 && m <= 0xef) || m == 0xfe || m == 0xcc || m == 0xdc)
        return MK_SKIP; /* APPn, COM, DAC, DNL: read and skipped or kept, never fatal */
    return MK_BAD;      /* SOI again, EOI, JPGn, reserved: libjpeg stops there */
}

/* The JPEG's component ids (from its SOF), for the scan's check. */
typedef struct jpeg_state {
    bool sof;
    uint8_t n_comp, comp_id[4];
} jpeg_state;

/* seg: the segment after its length field; n its bytes (the length minus 2). */
static er_rc parse_sof(const uint8_t *seg, uint32_t n, uint8_t marker, jpeg_state *st, imghdr *out,
                       er_err *err)
{
    if (st->sof) return er_fail(err, ER_UNSUPPORTED, "a JPEG with two SOF segments");
    if (!sof_supported(marker))
        return er_fail(err, ER_UNSUPPORTED, "a JPEG of an unsupported kind (SOF%d)", marker - 0xc0);
    if (n < 6 || n != 6 + 3u * seg[5])
        return er_fail(err, ER_UNSUPPORTED, "a JPEG with a bad SOF segment");
    if (seg[0] != 8) return er_fail(err, ER_UNSUPPORTED, "a %d-bit JPEG (8-bit only)", seg[0]);
    out->height = be16(seg + 1);
    out->width = be16(seg + 3);
    st->n_comp = seg[5];
    if (out->width == 0 || out->height == 0 || out->width > 65500 || out->height > 65500 ||
        st->n_comp < 1 || st->n_comp > 4)
        return er_fail(err, ER_UNSUPPORTED, "a JPEG with an empty or huge size or %d components",
                       st->n_comp);
    for (uint32_t c = 0; c < st->n_comp; c++) {
        uint8_t hv = seg[7 + 3 * c];
        st->comp_id[c] = seg[6 + 3 * c];
        if ((hv >> 4) < 1 || (hv >> 4) > 4 || (hv & 15) < 1 || (hv & 15) > 4 || seg[8 + 3 * c] > 3)
            return er_fail(err, ER_UNSUPPORTED, "a JPEG with bad sampling factors");
    }
    st->sof = true;
    return ER_OK;
}

/* A DHT or DQT segment's tables fill it exactly, as libjpeg's get_dht/get_dqt check. */
static er_rc parse_tables(const uint8_t *seg, uint32_t n, bool huff, er_err *err)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t id = seg[i++];
        uint32_t size;
        if (huff) {
            if ((id & 15) > 3 || (id >> 4) > 1 || n - i < 16) goto bad;
            size = 16;
            for (int k = 0; k < 16; k++)
                size += seg[i + k];
            if (size > 16 + 256) goto bad;
        } else {
            if ((id & 15) > 3 || (id >> 4) > 1) goto bad;
            size = (id >> 4) ? 128 : 64;
        }
        if (n - i < size) goto bad;
        i += size;
    }
    return ER_OK;
bad:
    return er_fail(err, ER_UNSUPPORTED, "a JPEG with a bad %s table", huff ? "Huffman" : "DQT");
}

/* The scan header: 1..4 components of the SOF, each once. */
static er_rc parse_sos(const uint8_t *seg, uint32_t n, const jpeg_state *st, er_err *err)
{
    unsigned seen = 0;
    if (!st->sof) return er_fail(err, ER_UNSUPPORTED, "a JPEG with a scan before its SOF");
    if (n < 1 || seg[0] < 1 || seg[0] > 4 || n != 4u + 2u * seg[0]) goto bad;
    for (uint32_t c = 0; c < seg[0]; c++) {
        uint32_t k = 0;
        while (k < st->n_comp && st->comp_id[k] != seg[1 + 2 * c])
            k++;
        if (k == st->n_comp || (seen >> k & 1)) goto bad;
        seen |= 1u << k;
    }
    return ER_OK;
bad:
    return er_fail(err, ER_UNSUPPORTED, "a JPEG with a bad scan header");
}

static er_rc parse_jpeg(const uint8_t *d, size_t len, imghdr *out, er_err *err)
{
    size_t i = 2; /* after SOI */
    jpeg_state st = {0};
    er_rc rc = ER_OK;
    out->kind = IMGHDR_JPEG;
    for (;;) {
        if (i >= len) goto need_more;
        if (d[i] != 0xff) return er_fail(err, ER_UNSUPPORTED, "a JPEG with a bad marker");
        while (i < len && d[i] == 0xff)
            i++; /* fill bytes */
        if (i >= len) goto need_more;
        uint8_t m = d[i++];
        mk_kind kind = marker_kind(m);
        if (kind == MK_BAD)
            return er_fail(err, ER_UNSUPPORTED, "a JPEG with marker 0x%02x before its image", m);
        if (kind == MK_ALONE) continue;
        if (len - i < 2) goto need_more;
        uint32_t seglen = be16(d + i);
        if (seglen < 2) return er_fail(err, ER_UNSUPPORTED, "a JPEG with a bad segment length");
        if (len - i < seglen) goto need_more;
        const uint8_t *seg = d + i + 2;
        uint32_t n = seglen - 2;
        if (kind == MK_SOF) rc = parse_sof(seg, n, m, &st, out, err);
        if (kind == MK_DHT || kind == MK_DQT) rc = parse_tables(seg, n, kind == MK_DHT, err);
        if (kind == MK_DRI && n != 2)
            rc = er_fail(err, ER_UNSUPPORTED, "a JPEG with a bad DRI segment");
        if (kind == MK_SOS) return parse_sos(seg, n, &st, err);
        if (rc) return rc;
        i += seglen;
    }
need_more:
    return er_fail(err, ER_AGAIN, "a JPEG cut inside its header");
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* Bit depths allowed per colour type (bit n set: depth n), as the PNG specification lists. */
static bool png_depth_ok(uint8_t colour, uint8_t depth)
{
    static const struct {
        uint8_t colour;
        uint32_t depths;
    } ok[] = {{0, 1u << 1 | 1u << 2 | 1u << 4 | 1u << 8 | 1u << 16},
              {2, 1u << 8 | 1u << 16},
              {3, 1u << 1 | 1u << 2 | 1u << 4 | 1u << 8},
              {4, 1u << 8 | 1u << 16},
              {6, 1u << 8 | 1u << 16}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i].colour == colour) return depth <= 16 && (ok[i].depths >> depth & 1);
    return false;
}

static er_rc parse_png(const uint8_t *d, size_t len, imghdr *out, er_err *err)
{
    size_t i = 8; /* after the signature */
    bool plte = false;
    out->kind = IMGHDR_PNG;
    if (len < 8 + 25) goto need_more;
    const uint8_t *h = d + 16; /* IHDR's data */
    if (be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
        return er_fail(err, ER_UNSUPPORTED, "a PNG whose first chunk is not IHDR");
    if (crc32_of(d + 12, 17) != be32(d + 29))
        return er_fail(err, ER_UNSUPPORTED, "a PNG whose IHDR fails its CRC");
    out->width = be32(h);
    out->height = be32(h + 4);
    if (out->width == 0 || out->height == 0 || out->width > 0x7fffffffu ||
        out->height > 0x7fffffffu || !png_depth_ok(h[9], h[8]) || h[10] != 0 || h[11] != 0 ||
        h[12] > 1)
        return er_fail(err, ER_UNSUPPORTED, "a PNG with an invalid IHDR");
    for (i = 33;;) {
        if (len - i < 8) goto need_more;
        uint32_t n = be32(d + i);
        const uint8_t *type = d + i + 4;
        if (n > 0x7fffffffu) return er_fail(err, ER_UNSUPPORTED, "a PNG with a bad chunk length");
        if (len - i - 8 < 4 || len - i - 12 < n) goto need_more;
        if (memcmp(type, "IDAT", 4) == 0) {
            if (h[9] == 3 && !plte)
                return er_fail(err, ER_UNSUPPORTED, "a palette PNG without a palette");
            return ER_OK;
        }
        if (memcmp(type, "IEND", 4) == 0 || memcmp(type, "IHDR", 4) == 0)
            return er_fail(err, ER_UNSUPPORTED, "a PNG with no image data");
        for (int k = 0; k < 4; k++)
            if (!((type[k] >= 'A' && type[k] <= 'Z') || (type[k] >= 'a' && type[k] <= 'z')))
                return er_fail(err, ER_UNSUPPORTED, "a PNG with a bad chunk type");
        if (crc32_of(type, 4 + (size_t)n) != be32(type + 4 + n))
            return er_fail(err, ER_UNSUPPORTED, "a PNG whose %.4s chunk fails its CRC", type);
        if (memcmp(type, "PLTE", 4) == 0) {
            /* 1..256 entries, only where colour is (grey PNGs have none) */
            if (plte || n == 0 || n % 3 || n > 768 || h[9] == 0 || h[9] == 4)
                return er_fail(err, ER_UNSUPPORTED, "a PNG with a bad palette");
            plte = true;
        } else if (!(type[0] & 0x20)) {
            return er_fail(err, ER_UNSUPPORTED, "a PNG with an unknown critical chunk %.4s", type);
        }
        i += 12 + (size_t)n;
    }
need_more:
    return er_fail(err, ER_AGAIN, "a PNG cut inside its header");
}

er_rc imghdr_parse(const uint8_t *data, size_t len, imghdr *out, er_err *err)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    er_rc rc;
    memset(out, 0, sizeof *out);
    if (data && len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        rc = parse_jpeg(data, len, out, err);
    else if (data && len >= 8 && memcmp(data, png_sig, 8) == 0)
        rc = parse_png(data, len, out, err);
    else
        rc = er_fail(err, ER_UNSUPPORTED, "neither a JPEG nor a PNG");
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

const char *imghdr_mime(imghdr_kind kind)
{
    return kind == IMGHDR_PNG ? "image/png" : "image/jpeg";
}
