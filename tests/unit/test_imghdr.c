/* test_imghdr.c - the JPEG/PNG header parser (media/imghdr.c) against libvips on images libvips
 * makes here (baseline, progressive, grey, CMYK-free JPEGs; PNGs of every colour type, 16-bit,
 * palette, interlaced) and the JPEG fixtures: same size and type; every cut of a header is
 * refused or, when accepted, libvips reads that prefix's header too; every single-byte change in
 * the first 400 bytes the parser accepts, libvips accepts with the same size. Also hand-made
 * broken headers, and media_probe's errors and pixel limit. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "check.h"
#include "media/image.h"
#include "media/imghdr.h"

/* What libvips' header read makes of data: 0 and *w, *h when it reads one. */
static int vips_header(const uint8_t *data, size_t len, int *w, int *h)
{
    const char *loader = vips_foreign_find_load_buffer(data, len);
    VipsImage *im = NULL;
    int rc = -1;
    if (loader && (strcmp(loader, "VipsForeignLoadJpegBuffer") == 0
                       ? !vips_jpegload_buffer((void *)data, len, &im, NULL)
                       : strcmp(loader, "VipsForeignLoadPngBuffer") == 0 &&
                             !vips_pngload_buffer((void *)data, len, &im, NULL))) {
        *w = vips_image_get_width(im);
        *h = vips_image_get_height(im);
        rc = 0;
    }
    if (im) g_object_unref(im);
    vips_error_clear();
    return rc;
}

/* An image w x h of `bands` bands saved by libvips with saver options; malloc memory. */
static uint8_t *make(int w, int h, int bands, int png, const char *opt, int val, size_t *len)
{
    VipsImage *black = NULL, *img = NULL;
    void *buf = NULL;
    uint8_t *out = NULL;
    *len = 0;
    if (vips_black(&black, w, h, "bands", bands, NULL) ||
        vips_linear1(black, &img, 1.0, 100.0, "uchar", TRUE, NULL))
        goto done;
    if (png ? (opt ? vips_pngsave_buffer(img, &buf, len, opt, val, NULL)
                   : vips_pngsave_buffer(img, &buf, len, NULL))
            : (opt ? vips_jpegsave_buffer(img, &buf, len, opt, val, NULL)
                   : vips_jpegsave_buffer(img, &buf, len, NULL)))
        goto done;
    if ((out = malloc(*len))) memcpy(out, buf, *len);
done:
    g_free(buf);
    if (img) g_object_unref(img);
    if (black) g_object_unref(black);
    return out;
}

/* The parser agrees with libvips on data, its every cut and its single-byte changes. */
static void agree(const uint8_t *data, size_t len, const char *what)
{
    imghdr hd;
    int w = 0, h = 0;
    er_err err;
    CHECK_EQ_INT(imghdr_parse(data, len, &hd, &err), ER_OK);
    CHECK_EQ_INT(vips_header(data, len, &w, &h), 0);
    CHECK_EQ_INT(hd.width, w);
    CHECK_EQ_INT(hd.height, h);
    int bad = 0;
    for (size_t n = 0; n < len && n < 2000; n++) {
        er_rc rc = imghdr_parse(data, n, &hd, &err);
        if (rc == ER_OK && (vips_header(data, n, &w, &h) || hd.width != (uint32_t)w)) {
            fprintf(stderr, "%s: cut at %zu of %zu: parser %ux%u, libvips %s\n", what, n, len,
                    hd.width, hd.height, vips_error_buffer());
            bad++;
        }
        if (rc != ER_OK && rc != ER_AGAIN && rc != ER_UNSUPPORTED) bad++;
        if (rc != ER_OK && (hd.width || hd.height || hd.kind)) bad++; /* zeroed on failure */
    }
    uint8_t *copy = malloc(len);
    static const uint8_t values[] = {0x00, 0x01, 0x08, 0xff, 0xc2, 0xda};
    for (size_t i = 0; copy && i < len && i < 400; i++) {
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(copy, data, len);
            copy[i] = values[v];
            if (imghdr_parse(copy, len, &hd, &err) != ER_OK) continue;
            if (vips_header(copy, len, &w, &h) || hd.width != (uint32_t)w ||
                hd.height != (uint32_t)h) {
                fprintf(stderr, "%s: byte %zu = 0x%02x: parser %ux%u, libvips %s\n", what, i,
                        values[v], hd.width, hd.height, vips_error_buffer());
                bad++;
            }
        }
    }
    free(copy);
    if (bad) fprintf(stderr, "%s: %d disagreements\n", what, bad);
    CHECK_EQ_INT(bad, 0);
}

static void test_made(void)
{
    static const struct {
        int w, h, bands, png;
        const char *opt;
        int val;
    } cases[] = {
        {40, 30, 3, 0, NULL, 0},        {17, 5, 1, 0, NULL, 0},
        {64, 48, 3, 0, "interlace", 1}, {300, 2, 3, 0, "optimize_coding", 1},
        {1, 1, 3, 0, "Q", 10},          {17, 5, 3, 1, NULL, 0},
        {9, 7, 1, 1, NULL, 0},          {9, 7, 2, 1, NULL, 0},
        {9, 7, 4, 1, NULL, 0},          {33, 20, 3, 1, "interlace", 1},
        {20, 12, 3, 1, "palette", 1},   {20, 12, 1, 1, "bitdepth", 1},
        {20, 12, 1, 1, "bitdepth", 4},  {5, 600, 3, 1, "compression", 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *img = make(cases[i].w, cases[i].h, cases[i].bands, cases[i].png, cases[i].opt,
                            cases[i].val, &len);
        CHECK(img != NULL);
        if (!img) continue;
        imghdr hd;
        CHECK_EQ_INT(imghdr_parse(img, len, &hd, NULL), ER_OK);
        CHECK_EQ_INT(hd.kind, cases[i].png ? IMGHDR_PNG : IMGHDR_JPEG);
        CHECK_EQ_INT(hd.width, cases[i].w);
        CHECK_EQ_INT(hd.height, cases[i].h);
        char what[64];
        snprintf(what, sizeof what, "case %zu", i);
        agree(img, len, what);
        free(img);
    }
}

static void test_fixtures(void)
{
    const char *dir = getenv("EI_FIXTURES");
    char path[512];
    int n = 0;
    snprintf(path, sizeof path, "%s/images", dir ? dir : EI_FIXTURES_DIR);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strstr(e->d_name, ".jpg")) continue;
        char file[800];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        gchar *buf = NULL;
        gsize len = 0;
        CHECK(g_file_get_contents(file, &buf, &len, NULL));
        if (buf && n < 2) agree((const uint8_t *)buf, len, e->d_name); /* slow: two in full */
        imghdr hd;
        int w = 0, h = 0;
        CHECK_EQ_INT(imghdr_parse((const uint8_t *)buf, len, &hd, NULL), ER_OK);
        CHECK_EQ_INT(vips_header((const uint8_t *)buf, len, &w, &h), 0);
        CHECK_EQ_INT(hd.width, w);
        g_free(buf);
        n++;
    }
    if (d) closedir(d);
    CHECK(n >= 3);
}

static void test_broken(void)
{
    /* SOI, SOF0 of 0 x 16, SOS: libjpeg refuses an empty height (DNL) */
    static const uint8_t dnl[] = {0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 0, 0, 16,   1, 1,
                                  0x11, 0,    0xff, 0xda, 0, 8,  1, 1, 0, 0, 0x3f, 0};
    /* 12-bit; lossless SOF3; two SOFs; scan first; EOI first; a bad length */
    static const uint8_t p12[] = {0xff, 0xd8, 0xff, 0xc0, 0, 11, 12, 0, 8, 0, 8,    1, 1,
                                  0x11, 0,    0xff, 0xda, 0, 8,  1,  1, 0, 0, 0x3f, 0};
    static const uint8_t sof3[] = {0xff, 0xd8, 0xff, 0xc3, 0, 11, 8, 0, 8, 0, 8,    1, 1,
                                   0x11, 0,    0xff, 0xda, 0, 8,  1, 1, 0, 0, 0x3f, 0};
    static const uint8_t twosof[] = {0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8,    1, 1,
                                     0x11, 0,    0xff, 0xc2, 0, 11, 8, 0, 8, 0, 8,    1, 1,
                                     0x11, 0,    0xff, 0xda, 0, 8,  1, 1, 0, 0, 0x3f, 0};
    static const uint8_t sosfirst[] = {0xff, 0xd8, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 0x3f, 0};
    static const uint8_t eoi[] = {0xff, 0xd8, 0xff, 0xd9};
    static const uint8_t badlen[] = {0xff, 0xd8, 0xff, 0xe0, 0, 1};
    static const uint8_t garbage[] = {0xff, 0xd8, 0xff, 0xe0, 0, 2, 0x12, 0x34};
    static const struct {
        const uint8_t *d;
        size_t n;
        er_rc rc;
        const char *msg;
    } cases[] = {
        {dnl, sizeof dnl, ER_UNSUPPORTED, "empty or huge size"},
        {p12, sizeof p12, ER_UNSUPPORTED, "12-bit"},
        {sof3, sizeof sof3, ER_UNSUPPORTED, "SOF3"},
        {twosof, sizeof twosof, ER_UNSUPPORTED, "two SOF"},
        {sosfirst, sizeof sosfirst, ER_UNSUPPORTED, "scan before"},
        {eoi, sizeof eoi, ER_UNSUPPORTED, "marker 0xd9 before its image"},
        {badlen, sizeof badlen, ER_UNSUPPORTED, "segment length"},
        {garbage, sizeof garbage, ER_UNSUPPORTED, "bad marker"},
        {dnl, 14, ER_AGAIN, "cut inside"},
        {(const uint8_t *)"GIF89a", 6, ER_UNSUPPORTED, "neither"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        imghdr hd;
        er_err err = {{0}};
        int w, h;
        CHECK_EQ_INT(imghdr_parse(cases[i].d, cases[i].n, &hd, &err), cases[i].rc);
        if (!strstr(err.msg, cases[i].msg)) fprintf(stderr, "case %zu: %s\n", i, err.msg);
        CHECK(strstr(err.msg, cases[i].msg) != NULL);
        /* libvips refuses them too (the cut one aside: it may read a prefix's header) */
        if (cases[i].rc == ER_UNSUPPORTED) CHECK(vips_header(cases[i].d, cases[i].n, &w, &h) != 0);
    }
    /* the valid base of the broken ones: 8 x 8 baseline */
    static const uint8_t ok[] = {0xff, 0xd8, 0xff, 0xff, 0xc0, 0, 11, 8, 0, 8, 0, 9,    1,
                                 1,    0x11, 0,    0xff, 0xda, 0, 8,  1, 1, 0, 0, 0x3f, 0};
    imghdr hd;
    CHECK_EQ_INT(imghdr_parse(ok, sizeof ok, &hd, NULL), ER_OK);
    CHECK_EQ_INT(hd.width, 9);
    CHECK_EQ_INT(hd.height, 8);
    CHECK_EQ_STR(imghdr_mime(hd.kind), "image/jpeg");
    CHECK_EQ_INT(imghdr_parse(NULL, 0, &hd, NULL), ER_UNSUPPORTED);
}

/* The PNG CRC, written again here so the test does not trust the parser's. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static void test_probe_limits(void)
{
    /* a PNG header claiming 20000 x 20000 (400 MP): refused before any decoding */
    size_t len;
    uint8_t *png = make(4, 4, 3, 1, NULL, 0, &len);
    inference_image img = {0};
    er_err err;
    CHECK(png != NULL);
    if (!png) return;
    png[16] = 0, png[17] = 0, png[18] = 0x4e, png[19] = 0x20; /* width 20000 */
    png[20] = 0, png[21] = 0, png[22] = 0x4e, png[23] = 0x20; /* height 20000 */
    uint32_t crc = crc32_of(png + 12, 17);
    png[29] = crc >> 24, png[30] = crc >> 16 & 255, png[31] = crc >> 8 & 255, png[32] = crc & 255;
    CHECK_EQ_INT(media_probe(png, len, &img, &err), ER_TOOBIG);
    CHECK(strstr(err.msg, "20000x20000 pixels") != NULL);
    png[29] ^= 1; /* a broken CRC */
    CHECK_EQ_INT(media_probe(png, len, &img, &err), ER_UNSUPPORTED);
    CHECK(strstr(err.msg, "image is not a JPEG or PNG (unreadable header") != NULL);
    CHECK(strstr(err.msg, "CRC") != NULL);
    free(png);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (VIPS_INIT(argv[0])) return 1; /* the oracle; the parser itself needs no libvips */
    test_broken();
    test_made();
    test_fixtures();
    test_probe_limits();
    vips_shutdown();
    return check_summary();
}
