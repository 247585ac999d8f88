/* vips_preprocess.c - (in the libvips module, see media/vips_api.h) a camera frame to an Edge
 * Impulse model's features, as the Edge Impulse Linux runner makes them: its
 * ImageClassifier.resizeImage calls sharp 0.32.6 with resize({width: W, height: H, fit,
 * fastShrinkOnLoad: false}), then removeAlpha() and raw RGB (3 channels) or toColourspace('b-w')
 * and raw (1 channel). This file runs the same libvips operations in the same order with the same
 * arguments as sharp's pipeline does for those calls, so on the same libvips the features are byte
 * for byte the runner's (tests/fixtures/eim-features/ holds features recorded from the real runner,
 * and tests/unit/test_preprocess.c compares every case).
 *
 * Ownership: the frame bytes are borrowed for the call. Every intermediate image lives in one
 * VipsObject's local array (struct chain), so a single unref frees them on every path; what is
 * returned is copied into malloc memory. The libvips error buffer is cleared before returning. */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "media/vips/vips_internal.h"

#define PP_SLOTS 24 /* intermediate images of one call; the steps below make at most 14 */

/* The caller's preprocess_out_free, for the module's own failures. */
static void out_free(preprocess_out *out)
{
    free(out->features);
    free(out->jpeg);
    memset(out, 0, sizeof *out);
}

/* ------------------------------------------------------------------ the chain of images */

/* The images of one call. cur is the newest; an operation writes its output to slot(c) and
 * adopt() makes that the new cur. All are unref'd with ctx. */
typedef struct chain {
    VipsObject *ctx;
    VipsImage **t;
    int n;
    VipsImage *cur;
} chain;

static VipsImage **slot(chain *c)
{
    return &c->t[c->n];
}

/* vips_rc is the return of the operation that just wrote slot(c): 0 adopts its output. */
static int adopt(chain *c, int vips_rc)
{
    if (vips_rc || !c->t[c->n] || c->n + 1 >= PP_SLOTS) return -1;
    c->cur = c->t[c->n++];
    return 0;
}

static bool is16(VipsInterpretation in)
{
    return in == VIPS_INTERPRETATION_RGB16 || in == VIPS_INTERPRETATION_GREY16;
}

/* ------------------------------------------------------------------------ sharp's steps */

/* sharp's ResolveShrink for a fixed width and height: the shrink of each axis; cover (crop)
 * takes the smaller for both, contain (embed) the larger, fill each its own; never so much that
 * an axis would vanish. */
static void resolve_shrink(int w, int h, int W, int H, preprocess_mode mode, double *hs, double *vs)
{
    *hs = (double)w / W;
    *vs = (double)h / H;
    if (mode == PREPROCESS_FIT_SHORTEST) *hs = *vs = fmin(*hs, *vs);
    if (mode == PREPROCESS_FIT_LONGEST) *hs = *vs = fmax(*hs, *vs);
    *hs = fmin(*hs, w);
    *vs = fmin(*vs, h);
}

/* sharp's JPEG shrink-on-load for the common shrink s with fastShrinkOnLoad false: the largest
 * factor that leaves at least two for the Lanczos3 resize, halved when (int)s equals it (sharp's
 * guard against libjpeg rounding; with these thresholds it cannot hold, kept as sharp has it). */
static int jpeg_shrink(double s)
{
    static const int factors[] = {8, 4, 2};
    for (size_t i = 0; i < sizeof factors / sizeof factors[0]; i++)
        if (s >= 2.0 * factors[i]) return (int)s == factors[i] ? factors[i] / 2 : factors[i];
    return 1;
}

/* Decodes lazily; like sharp's default failOn 'warning', a decoder warning (a truncated or
 * corrupt JPEG) fails the frame when the pixels are read. */
static int load(chain *c, const uint8_t *img, size_t len, bool jpeg, int shrink)
{
    return adopt(
        c, jpeg ? vips_jpegload_buffer((void *)img, len, slot(c), "shrink", shrink, "fail_on",
                                       VIPS_FAIL_ON_WARNING, "access", VIPS_ACCESS_SEQUENTIAL, NULL)
                : vips_pngload_buffer((void *)img, len, slot(c), "fail_on", VIPS_FAIL_ON_WARNING,
                                      "access", VIPS_ACCESS_SEQUENTIAL, NULL));
}

/* To sRGB with the embedded ICC profile (an unusable profile is ignored, as sharp only warns),
 * or from CMYK with libvips' CMYK profile; before any resizing, as sharp does. */
static int import_profile(chain *c)
{
    VipsInterpretation in = vips_image_get_interpretation(c->cur);
    const char *profile = in == VIPS_INTERPRETATION_RGB16 ? "p3" : "srgb";
    if (vips_image_get_typeof(c->cur, VIPS_META_ICC_NAME) && in != VIPS_INTERPRETATION_LABS &&
        in != VIPS_INTERPRETATION_GREY16) {
        if (adopt(c, vips_icc_transform(c->cur, slot(c), profile, "embedded", TRUE, "depth",
                                        is16(in) ? 16 : 8, "intent", VIPS_INTENT_PERCEPTUAL, NULL)))
            vips_error_clear();
        return 0;
    }
    if (in != VIPS_INTERPRETATION_CMYK) return 0;
    return adopt(c, vips_icc_transform(c->cur, slot(c), profile, "input_profile", "cmyk", "intent",
                                       VIPS_INTENT_PERCEPTUAL, NULL));
}

/* Letterbox: embed centred on black (opaque when the image has alpha: sharp's background
 * {0,0,0,alpha 1}, with its 8-bit alpha scaled by 256 for 16-bit images). */
static int letterbox(chain *c, int W, int H)
{
    int w = c->cur->Xsize, h = c->cur->Ysize, rc;
    double bg[4] = {0, 0, 0, 0};
    int n = c->cur->Bands > 2 ? 3 : 1;
    if (vips_image_hasalpha(c->cur))
        bg[n++] = is16(vips_image_get_interpretation(c->cur)) ? 255.0 * 256 : 255.0;
    VipsArrayDouble *background = vips_array_double_new(bg, n);
    rc = vips_embed(c->cur, slot(c), (W - w) / 2, (H - h) / 2, w > W ? w : W, h > H ? h : H,
                    "extend", VIPS_EXTEND_BACKGROUND, "background", background, NULL);
    vips_area_unref(VIPS_AREA(background));
    return adopt(c, rc);
}

/* Resize by (1/hs, 1/vs) with Lanczos3 (alpha premultiplied around it), then crop the centre
 * (cover) or letterbox (contain) to W x H; squash's resize already gives W x H. */
static int fit(chain *c, int W, int H, preprocess_mode mode)
{
    double hs, vs;
    int w, h;
    VipsBandFormat format = vips_image_get_format(c->cur);
    resolve_shrink(c->cur->Xsize, c->cur->Ysize, W, H, mode, &hs, &vs);
    bool resize = hs != 1.0 || vs != 1.0;
    bool premultiply = resize && vips_image_hasalpha(c->cur);
    if (premultiply && (adopt(c, vips_premultiply(c->cur, slot(c), NULL)) ||
                        adopt(c, vips_cast(c->cur, slot(c), format, NULL))))
        return -1;
    if (resize && adopt(c, vips_resize(c->cur, slot(c), 1.0 / hs, "vscale", 1.0 / vs, "kernel",
                                       VIPS_KERNEL_LANCZOS3, NULL)))
        return -1;
    w = c->cur->Xsize;
    h = c->cur->Ysize;
    if ((w != W || h != H) && mode == PREPROCESS_FIT_LONGEST && letterbox(c, W, H)) return -1;
    if ((w != W || h != H) && mode == PREPROCESS_FIT_SHORTEST) {
        int cw = W < w ? W : w, ch = H < h ? H : h;
        if (adopt(c, vips_extract_area(c->cur, slot(c), (w - cw + 1) / 2, (h - ch + 1) / 2, cw, ch,
                                       NULL)))
            return -1;
    }
    if (premultiply && (adopt(c, vips_unpremultiply(c->cur, slot(c), NULL)) ||
                        adopt(c, vips_cast(c->cur, slot(c), format, NULL))))
        return -1;
    return 0;
}

/* 3 channels: alpha dropped, then sRGB; 1 channel: libvips' B_W colourspace (its own luminance,
 * not 0.299/0.587/0.114). 16-bit images are cast to ushort first, as sharp does. */
static int to_channels(chain *c, int channels)
{
    VipsInterpretation want = channels == 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    if (channels == 3 && vips_image_hasalpha(c->cur) &&
        adopt(c, vips_extract_band(c->cur, slot(c), 0, "n", c->cur->Bands - 1, NULL)))
        return -1;
    if (is16(vips_image_get_interpretation(c->cur)) &&
        adopt(c, vips_cast(c->cur, slot(c), VIPS_FORMAT_USHORT, NULL)))
        return -1;
    VipsInterpretation in = vips_image_get_interpretation(c->cur);
    if (in != want && adopt(c, vips_colourspace(c->cur, slot(c), want, "source_space", in, NULL)))
        return -1;
    return 0;
}

/* The decoded, finished image in memory (the pixels are computed here, once: a sequential
 * loader cannot be read twice, and both the features and the result image come from it). */
static int compute(chain *c)
{
    c->t[c->n] = vips_image_copy_memory(c->cur);
    return adopt(c, 0);
}

/* sharp's raw output: band 0 of a B_W image, uchar; then one packed int per pixel. */
static er_rc pack(chain *c, int channels, preprocess_out *out, er_err *err)
{
    er_rc rc = ER_OK;
    size_t size = 0, n = (size_t)c->cur->Xsize * c->cur->Ysize;
    uint8_t *px = NULL;
    if ((channels == 1 && c->cur->Bands > 1 &&
         adopt(c, vips_extract_band(c->cur, slot(c), 0, NULL))) ||
        (vips_image_get_format(c->cur) != VIPS_FORMAT_UCHAR &&
         adopt(c, vips_cast(c->cur, slot(c), VIPS_FORMAT_UCHAR, NULL))) ||
        c->cur->Bands != channels) {
        rc = er_fail(err, ER_INVALID, "cannot make %d channel(s) of the frame's %d bands: %.120s",
                     channels, c->cur->Bands, vips_error_buffer());
        goto fail;
    }
    px = vips_image_write_to_memory(c->cur, &size);
    out->features = malloc(n * sizeof *out->features);
    if (!px || !out->features || size != n * channels) {
        rc = er_fail(err, ER_NOMEM, "no memory for %zu features", n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = px + i * channels;
        out->features[i] = channels == 3 ? (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]
                                         : (uint32_t)p[0] * 0x010101u;
    }
    out->n_features = n;
fail:
    g_free(px);
    return rc;
}

/* The result image: the frame itself when it is a JPEG of the model's size and the model is RGB
 * (the runner's camera path checks exactly that), else sharp's jpeg({quality: 90}) with its
 * other defaults: no metadata, baseline, 4:2:0 chroma, optimised Huffman coding. */
static er_rc result_jpeg(VipsImage *im, const uint8_t *img, size_t len, bool as_is,
                         preprocess_out *out, er_err *err)
{
    er_rc rc = ER_OK;
    void *buf = NULL;
    if (!as_is && vips_jpegsave_buffer(im, &buf, &len, "Q", 90, "strip", TRUE, "interlace", FALSE,
                                       "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_ON, "trellis_quant",
                                       FALSE, "quant_table", 0, "overshoot_deringing", FALSE,
                                       "optimize_scans", FALSE, "optimize_coding", TRUE, NULL)) {
        rc = er_fail(err, ER_NOMEM, "cannot encode the result image: %.120s", vips_error_buffer());
        goto fail;
    }
    if (!(out->jpeg = malloc(len ? len : 1))) {
        rc = er_fail(err, ER_NOMEM, "no memory for the result image");
        goto fail;
    }
    memcpy(out->jpeg, as_is ? img : buf, len);
    out->jpeg_len = len;
    out->jpeg_w = im->Xsize;
    out->jpeg_h = im->Ysize;
fail:
    g_free(buf);
    return rc;
}

/* ------------------------------------------------------------------------------ the call */

er_rc vips__preprocess(const uint8_t *img, size_t len, int W, int H, int channels,
                       preprocess_mode mode, bool want_jpeg, preprocess_out *out, er_err *err)
{
    er_rc rc = ER_OK;
    inference_image probe = {0};
    chain c = {0};
    VipsImage *result;
    bool jpeg, same_size;
    double hs, vs;
    int shrink = 1;

    memset(out, 0, sizeof *out);
    if ((rc = vips__host->probe(img, len, &probe, err))) {
        if (rc == ER_UNSUPPORTED) rc = ER_INVALID;
        goto fail;
    }
    jpeg = strcmp(probe.mime, "image/jpeg") == 0;
    same_size = probe.width == W && probe.height == H;
    if (mode == PREPROCESS_NONE && !same_size) {
        rc = er_fail(err, ER_SHAPE,
                     "the frame is %dx%d but the model takes %dx%d and its resize mode is none",
                     probe.width, probe.height, W, H);
        goto fail;
    }
    if (jpeg && !same_size && mode != PREPROCESS_NONE) {
        resolve_shrink(probe.width, probe.height, W, H, mode, &hs, &vs);
        shrink = jpeg_shrink(fmin(hs, vs));
    }
    c.ctx = VIPS_OBJECT(vips_image_new());
    c.t = (VipsImage **)vips_object_local_array(c.ctx, PP_SLOTS);
    if (load(&c, img, len, jpeg, shrink) || import_profile(&c) ||
        (!same_size && mode != PREPROCESS_NONE && fit(&c, W, H, mode)) ||
        to_channels(&c, channels) || compute(&c)) {
        rc = er_fail(err, ER_INVALID, "cannot preprocess the %dx%d frame: %.160s", probe.width,
                     probe.height, vips_error_buffer());
        goto fail;
    }
    result = c.cur;
    if (result->Xsize != W || result->Ysize != H) {
        rc = er_fail(err, ER_INTERNAL, "preprocessing the %dx%d frame gave %dx%d, not %dx%d",
                     probe.width, probe.height, result->Xsize, result->Ysize, W, H);
        goto fail;
    }
    if ((rc = pack(&c, channels, out, err)) ||
        (want_jpeg &&
         (rc = result_jpeg(result, img, len, channels == 3 && jpeg && same_size, out, err))))
        goto fail;
fail:
    if (rc) out_free(out);
    if (c.ctx) g_object_unref(c.ctx);
    vips_error_clear();
    return rc;
}
