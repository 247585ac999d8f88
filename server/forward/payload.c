/* payload.c - see payload.h. The inference is borrowed; a re-encoded image is swapped into a
 * shallow copy, so the caller's row is never modified. */
#include "forward/payload.h"

#include <stdlib.h>
#include <string.h>

#include "media/image.h"
#include "model/message.h"

/* Renders inf with image (may be NULL) into out. */
static er_rc render(const inference *inf, const uint8_t *img, size_t img_len, bool omitted,
                    const payload_opts *o, util_buf *out)
{
    inference copy = *inf; /* shallow: only image.data/len differ, nothing is freed */
    copy.image.data = (uint8_t *)img;
    copy.image.len = img ? img_len : 0;
    message_opts mo = {
        .include_image = img != NULL, .s3_bucket = o->s3_bucket, .image_omitted = omitted};
    out->len = 0;
    if (out->data) out->data[0] = '\0';
    return message_inference_json(&copy, &mo, out);
}

/* The base64 of n bytes plus the message around it: the rest is known without the image. */
static size_t with_image_len(size_t base_len, size_t img_len)
{
    return base_len + util_b64_encoded_len(img_len) + sizeof ",\"image\":\"\"" - 1;
}

/* The first re-encoding (quality 80, 60, 40 at full size, then again at half the size, ...)
 * whose message fits in max; *out is malloc'ed. ER_TOOBIG if none does. */
static er_rc shrink(const inference_image *im, size_t base, size_t max, uint8_t **out,
                    size_t *out_len, payload_info *info)
{
    static const int qualities[] = {80, 60, 40};
    er_rc rc = ER_TOOBIG;
    int longer = im->width > im->height ? im->width : im->height;
    int px = longer > 0 ? longer : 4096;
    *out = NULL;
    for (int round = 0; round < 8 && px >= 16 && rc == ER_TOOBIG; round++, px /= 2) {
        for (size_t q = 0; q < sizeof qualities / sizeof qualities[0]; q++) {
            uint8_t *enc = NULL;
            size_t enc_len = 0;
            if ((rc = media_jpeg(im->data, im->len, round == 0 ? 0 : px, qualities[q], &enc,
                                 &enc_len)))
                goto fail; /* libvips cannot read it: no image can be sent */
            if (with_image_len(base, enc_len) <= max) {
                *out = enc;
                *out_len = enc_len;
                info->shrunk = true;
                info->quality = qualities[q];
                info->max_px = round == 0 ? 0 : px;
                break;
            }
            free(enc);
            rc = ER_TOOBIG;
        }
    }
fail:
    return rc;
}

er_rc payload_inference(const inference *inf, const payload_opts *o, util_buf *out,
                        payload_info *info)
{
    er_rc rc;
    payload_info local = {0};
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    size_t max = o->max_bytes ? o->max_bytes : PAYLOAD_MAX_BYTES;
    const inference_image *im = &inf->image;
    const uint8_t *img = NULL;
    size_t img_len = 0;

    /* the message without image first: its size decides what room an image has */
    if ((rc = render(inf, NULL, 0, false, o, out))) goto fail;
    size_t base = out->len;
    if (o->include_image && im->data && im->len > 0) {
        if (strcmp(im->mime, "image/jpeg") == 0) {
            img = im->data;
            img_len = im->len;
        } else if (media_jpeg(im->data, im->len, 0, 90, &enc, &enc_len) == ER_OK) {
            img = enc; /* PNG: the contract's image field is a JPEG */
            img_len = enc_len;
        }
        if (img && with_image_len(base, img_len) > max) {
            free(enc);
            enc = NULL;
            img = shrink(im, base, max, &enc, &enc_len, &local) == ER_OK ? enc : NULL;
            img_len = enc_len;
        }
        if (img) {
            if ((rc = render(inf, img, img_len, false, o, out))) goto fail;
            if (out->len > max) img = NULL; /* the estimate was short: go without */
        }
        if (!img) {
            local.omitted = true;
            local.shrunk = false;
            if ((rc = render(inf, NULL, 0, true, o, out))) goto fail;
        }
    }
    rc = out->len > max ? ER_TOOBIG : ER_OK;
fail:
    free(enc);
    if (info) *info = local;
    return rc;
}
