/* fuzz_preprocess.c - media/preprocess on arbitrary frames. Byte 0: bit 0 = 3 channels (else 1),
 * bits 1-2 = the resize mode, bit 3 = want the result image; bytes 1 and 2: the model's width and
 * height (each % 64 + 1); the rest is the frame. Frames whose header claims over a megapixel are
 * skipped (a valid huge JPEG is slow, not a bug). Checks: a success gives W*H features of the
 * right form and, when asked, a JPEG of W x H; a failure leaves nothing and says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/image.h"
#include "media/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    preprocess_out out;
    er_err err = {{0}};
    inference_image probe;
    if (!started) {
        if (media_init("fuzz_preprocess")) abort();
        started = 1;
    }
    if (size < 3) return 0;
    int channels = data[0] & 1 ? 3 : 1, W = data[1] % 64 + 1, H = data[2] % 64 + 1;
    preprocess_mode mode = (preprocess_mode)((data[0] >> 1) & 3);
    bool want_jpeg = data[0] & 8;
    /* A heap copy of exactly the frame, so any over-read is caught. */
    size_t len = size - 3;
    uint8_t *img = malloc(len ? len : 1);
    if (!img) return 0;
    memcpy(img, data + 3, len);
    if (media_probe(img, len, &probe, NULL) == ER_OK &&
        (long long)probe.width * probe.height > 1000 * 1000)
        goto done;
    er_rc rc = preprocess_frame(img, len, W, H, channels, mode, want_jpeg, &out, &err);
    if (rc) {
        if (out.features || out.jpeg || out.n_features || !err.msg[0]) abort();
        goto done;
    }
    if (out.n_features != (size_t)W * H) abort();
    for (size_t i = 0; i < out.n_features; i++) {
        uint32_t v = out.features[i];
        if (v > 0xffffff || (channels == 1 && v != (v & 0xff) * 0x010101u)) abort();
    }
    if (want_jpeg != (out.jpeg != NULL)) abort();
    if (out.jpeg && (media_probe(out.jpeg, out.jpeg_len, &probe, NULL) != ER_OK ||
                     probe.width != W || probe.height != H || out.jpeg_w != W || out.jpeg_h != H))
        abort();
    preprocess_out_free(&out);
done:
    free(img);
    return 0;
}
