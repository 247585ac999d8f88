/* fuzz_imghdr.c - media/imghdr.c, the JPEG/PNG header parser, and media_probe on arbitrary
 * bytes (an exact-size heap copy, so any over-read is caught). Checks: a success gives a known
 * kind and a size within the formats' limits; a failure is ER_AGAIN or ER_UNSUPPORTED with a
 * message and a zeroed result; every prefix of an accepted input that reaches past its header is
 * accepted alike (the parser reads nothing beyond the first scan / IDAT). media_probe agrees. */
#include <stdlib.h>
#include <string.h>

#include "media/image.h"
#include "media/imghdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    imghdr h, again;
    er_err err = {{0}};
    inference_image img = {0};
    if (!copy) return 0;
    memcpy(copy, data, size);
    er_rc rc = imghdr_parse(copy, size, &h, &err);
    if (rc == ER_OK) {
        if (h.kind != IMGHDR_JPEG && h.kind != IMGHDR_PNG) abort();
        if (h.width == 0 || h.height == 0) abort();
        if (h.kind == IMGHDR_JPEG && (h.width > 65500 || h.height > 65500)) abort();
        if (h.width > 0x7fffffffu || h.height > 0x7fffffffu) abort();
        /* appending bytes changes nothing once the header is whole */
        uint8_t *longer = malloc(size + 16);
        if (longer) {
            memcpy(longer, copy, size);
            memset(longer + size, 0xff, 16);
            if (imghdr_parse(longer, size + 16, &again, NULL) != ER_OK || again.width != h.width ||
                again.height != h.height || again.kind != h.kind)
                abort();
            free(longer);
        }
        er_rc prc = media_probe(copy, size, &img, &err);
        if ((long long)h.width * h.height > 100LL * 1000 * 1000
                ? prc != ER_TOOBIG
                : prc != ER_OK || img.width != (int)h.width)
            abort();
    } else {
        if (rc != ER_AGAIN && rc != ER_UNSUPPORTED) abort();
        if (!err.msg[0] || h.width || h.height || h.kind) abort();
        if (media_probe(copy, size, &img, &err) != ER_UNSUPPORTED) abort();
    }
    free(copy);
    return 0;
}
