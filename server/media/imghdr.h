/* imghdr.h - the size and type of a JPEG or PNG read from its header bytes alone, without a
 * decoder (so an ingest never loads libvips). Pure: no I/O, no allocation, no state.
 *
 * It accepts what libvips' jpegload / pngload accept when they read a header, and refuses the
 * rest with a sentence saying why:
 *   JPEG: SOI, then marker segments (fill bytes 0xFF allowed) up to the first SOS, which must be
 *         whole; exactly one SOF before it, of a kind libjpeg-turbo decodes (baseline, extended,
 *         progressive; Huffman or arithmetic), 8-bit, 1..4 components, width and height > 0
 *         (a DNL height is refused as libjpeg does).
 *   PNG:  the signature, an IHDR chunk first with its CRC, a valid bit depth / colour type pair,
 *         compression and filter 0, interlace 0 or 1, width and height 1..2^31-1; then chunks up
 *         to the first IDAT, each whole; a PLTE before it for palette images. */
#ifndef EI_MEDIA_IMGHDR_H
#define EI_MEDIA_IMGHDR_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

typedef enum { IMGHDR_JPEG = 1, IMGHDR_PNG } imghdr_kind;

typedef struct imghdr {
    imghdr_kind kind;
    uint32_t width, height;
} imghdr;

/* Reads the header of data[0..len). ER_OK: *out filled. ER_AGAIN: a JPEG or PNG cut before its
 * header ends (more bytes could make it one). ER_UNSUPPORTED: neither, or a header that is
 * broken; err (may be NULL) says which. *out is zeroed on failure. */
er_rc imghdr_parse(const uint8_t *data, size_t len, imghdr *out, er_err *err);

/* "image/jpeg" or "image/png". */
const char *imghdr_mime(imghdr_kind kind);

#endif
