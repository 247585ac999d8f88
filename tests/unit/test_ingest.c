/* test_ingest.c - the media module (probe, thumbnail, re-encode) on JPEG and PNG images made by
 * libvips here, and ingest_parse over JSON and multipart bodies carrying them. */
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "check.h"
#include "ingest/ingest.h"
#include "media/image.h"

static const normalize_opts opts = {
    .device = "dev1", .source = "http", .max_image_bytes = 64 * 1024, .now_ms = 1700000000000};

/* An image of w x h with some structure, encoded by libvips; the buffer is malloc memory. */
static uint8_t *make_image(int w, int h, int png, size_t *len)
{
    VipsImage *black = NULL, *grad = NULL;
    void *buf = NULL;
    uint8_t *out = NULL;
    *len = 0;
    if (vips_black(&black, w, h, "bands", 3, NULL) ||
        vips_linear1(black, &grad, 1.0, 128.0, "uchar", TRUE, NULL))
        goto done;
    if (png ? vips_pngsave_buffer(grad, &buf, len, NULL)
            : vips_jpegsave_buffer(grad, &buf, len, "Q", 90, NULL))
        goto done;
    out = malloc(*len);
    memcpy(out, buf, *len);
done:
    g_free(buf);
    if (grad) g_object_unref(grad);
    if (black) g_object_unref(black);
    return out;
}

static void test_probe(void)
{
    size_t jl, pl;
    uint8_t *jpg = make_image(40, 30, 0, &jl), *png = make_image(17, 5, 1, &pl);
    inference_image img;
    er_err err;
    CHECK(jpg != NULL && png != NULL);
    if (!jpg || !png) goto done;
    memset(&img, 0, sizeof img);
    CHECK_EQ_INT(media_probe(jpg, jl, &img, &err), ER_OK);
    CHECK_EQ_STR(img.mime, "image/jpeg");
    CHECK_EQ_INT(img.width, 40);
    CHECK_EQ_INT(img.height, 30);
    CHECK(img.data == NULL); /* untouched */
    memset(&img, 0, sizeof img);
    CHECK_EQ_INT(media_probe(png, pl, &img, &err), ER_OK);
    CHECK_EQ_STR(img.mime, "image/png");
    CHECK_EQ_INT(img.width, 17);
    CHECK_EQ_INT(img.height, 5);

    /* Text, empty, a bare magic number, a JPEG cut inside its header. */
    static const char text[] = "hello, this is not an image at all";
    CHECK_EQ_INT(media_probe((const uint8_t *)text, sizeof text - 1, &img, &err), ER_UNSUPPORTED);
    CHECK(strstr(err.msg, "not a JPEG or PNG") != NULL);
    CHECK_EQ_INT(media_probe(NULL, 0, &img, &err), ER_UNSUPPORTED);
    CHECK_EQ_INT(media_probe(jpg, 3, &img, &err), ER_UNSUPPORTED);
    CHECK_EQ_INT(media_probe(png, 12, &img, &err), ER_UNSUPPORTED);
    CHECK(strstr(err.msg, "not a JPEG or PNG") != NULL);
    /* libvips keeps no error state between calls. */
    CHECK(vips_error_buffer()[0] == '\0');
    /* Still works after failures. */
    CHECK_EQ_INT(media_probe(jpg, jl, &img, &err), ER_OK);

    /* A JPEG truncated after its header: either rejected or decoded without crashing. */
    uint8_t *thumb = NULL;
    size_t tl = 0;
    er_rc rc = media_thumbnail(jpg, jl / 2, 16, &thumb, &tl);
    CHECK(rc == ER_OK || rc == ER_UNSUPPORTED);
    free(thumb);
done:
    free(jpg);
    free(png);
}

static void test_thumbnail(void)
{
    size_t jl, pl;
    uint8_t *jpg = make_image(300, 200, 0, &jl), *png = make_image(50, 120, 1, &pl);
    uint8_t *out = NULL;
    size_t ol = 0;
    inference_image img;
    er_err err;
    if (!jpg || !png) goto done;
    CHECK_EQ_INT(media_thumbnail(jpg, jl, 64, &out, &ol), ER_OK);
    CHECK(out != NULL && ol > 0);
    if (out) {
        CHECK_EQ_INT(media_probe(out, ol, &img, &err), ER_OK);
        CHECK_EQ_STR(img.mime, "image/jpeg");
        CHECK_EQ_INT(img.width, 64);
        CHECK(img.height <= 64 && img.height >= 42);
    }
    free(out); /* malloc memory: a g_free mismatch would show under ASan */
    out = NULL;
    CHECK_EQ_INT(media_thumbnail(png, pl, 64, &out, &ol), ER_OK);
    if (out) {
        CHECK_EQ_INT(media_probe(out, ol, &img, &err), ER_OK);
        CHECK_EQ_STR(img.mime, "image/jpeg"); /* PNG in, JPEG out */
        CHECK_EQ_INT(img.height, 64);
        CHECK(img.width <= 64);
    }
    free(out);
    out = NULL;
    /* Never enlarged. */
    CHECK_EQ_INT(media_thumbnail(png, pl, 1000, &out, &ol), ER_OK);
    if (out && media_probe(out, ol, &img, &err) == ER_OK) {
        CHECK_EQ_INT(img.width, 50);
        CHECK_EQ_INT(img.height, 120);
    }
    free(out);
    out = NULL;
    /* Re-encode at full size, then smaller, at low quality. */
    CHECK_EQ_INT(media_jpeg(png, pl, 0, 50, &out, &ol), ER_OK);
    if (out && media_probe(out, ol, &img, &err) == ER_OK) {
        CHECK_EQ_INT(img.width, 50);
        CHECK_EQ_INT(img.height, 120);
    }
    free(out);
    out = NULL;
    CHECK_EQ_INT(media_jpeg(jpg, jl, 100, 30, &out, &ol), ER_OK);
    if (out && media_probe(out, ol, &img, &err) == ER_OK) CHECK_EQ_INT(img.width, 100);
    free(out);
    out = NULL;
    /* Errors leave *out NULL. */
    CHECK_EQ_INT(media_jpeg(jpg, jl, 0, 0, &out, &ol), ER_INVALID);
    CHECK(out == NULL);
    CHECK_EQ_INT(media_thumbnail((const uint8_t *)"GIF89a....", 10, 64, &out, &ol), ER_UNSUPPORTED);
    CHECK(out == NULL);
    CHECK_EQ_INT(media_thumbnail(jpg, jl, 0, &out, &ol), ER_INVALID);
done:
    free(jpg);
    free(png);
}

static void test_ingest_json(void)
{
    size_t jl;
    uint8_t *jpg = make_image(24, 12, 0, &jl);
    inference *inf = NULL;
    er_err err;
    if (!jpg) return;
    char *b64 = malloc(util_b64_encoded_len(jl) + 1);
    util_b64_encode(jpg, jl, b64);
    size_t cap = strlen(b64) + 256;
    char *doc = malloc(cap);
    int n = snprintf(doc, cap, "{\"c\":{\"ok\":0.5},\"image\":\"data:image/jpeg;base64,%s\"}", b64);
    CHECK_EQ_INT(ingest_parse(NULL, (const uint8_t *)doc, (size_t)n, &opts, &inf, &err), ER_OK);
    if (inf) {
        CHECK_EQ_INT(inf->image.len, jl);
        CHECK(memcmp(inf->image.data, jpg, jl) == 0);
        CHECK_EQ_STR(inf->image.mime, "image/jpeg");
        CHECK_EQ_INT(inf->image.width, 24);
        CHECK_EQ_INT(inf->image.height, 12);
        CHECK_EQ_STR(inf->result_json, "{\"classification\":{\"ok\":0.5}}");
    }
    inference_destroy(inf);
    inf = NULL;
    CHECK_EQ_INT(ingest_parse("Application/JSON; charset=utf-8", (const uint8_t *)doc, (size_t)n,
                              &opts, &inf, &err),
                 ER_OK);
    CHECK(inf != NULL);
    inference_destroy(inf);
    inf = NULL;

    /* base64 of text: decodes, but is no image. */
    n = snprintf(doc, cap, "{\"c\":{\"ok\":0.5},\"image\":\"aGVsbG8gd29ybGQ=\"}");
    CHECK_EQ_INT(
        ingest_parse("application/json", (const uint8_t *)doc, (size_t)n, &opts, &inf, &err),
        ER_UNSUPPORTED);
    CHECK(inf == NULL);
    CHECK(strstr(err.msg, "image is not a JPEG or PNG") != NULL);

    CHECK_EQ_INT(ingest_parse("text/plain", (const uint8_t *)doc, (size_t)n, &opts, &inf, &err),
                 ER_UNSUPPORTED);
    CHECK(strstr(err.msg, "unsupported Content-Type text/plain") != NULL);
    CHECK(inf == NULL);
    CHECK_EQ_INT(
        ingest_parse("application/jsonx", (const uint8_t *)doc, (size_t)n, &opts, &inf, &err),
        ER_UNSUPPORTED);
    CHECK_EQ_INT(ingest_parse(NULL, (const uint8_t *)"{", 1, &opts, &inf, &err), ER_INVALID);
    CHECK(inf == NULL);
    free(doc);
    free(b64);
    free(jpg);
}

/* Builds a multipart body from (headers, data) pairs. */
static size_t build_multipart(uint8_t *out, const char *boundary, int n, const char **headers,
                              const uint8_t **data, const size_t *lens)
{
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        o += (size_t)sprintf((char *)out + o, "--%s\r\n%s\r\n\r\n", boundary, headers[i]);
        memcpy(out + o, data[i], lens[i]);
        o += lens[i];
        o += (size_t)sprintf((char *)out + o, "\r\n");
    }
    o += (size_t)sprintf((char *)out + o, "--%s--\r\n", boundary);
    return o;
}

static void test_ingest_multipart(void)
{
    size_t pl, jl;
    uint8_t *png = make_image(33, 22, 1, &pl), *jpg = make_image(10, 10, 0, &jl);
    inference *inf = NULL;
    er_err err;
    if (!png || !jpg) goto done;
    char *b64 = malloc(util_b64_encoded_len(jl) + 1);
    util_b64_encode(jpg, jl, b64);
    char *json = malloc(strlen(b64) + 128);
    sprintf(json, "{\"result\":{\"classification\":{\"x\":1}},\"image\":\"%s\"}", b64);
    free(b64);
    uint8_t *body = malloc(pl + strlen(json) + 1024);
    const char *hdrs[] = {"Content-Disposition: form-data; name=\"note\"",
                          "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                          "Content-Type: image/png",
                          "Content-Disposition: form-data; name=\"json\"\r\n"
                          "Content-Type: application/json"};
    const uint8_t *data[] = {(const uint8_t *)"hi", png, (const uint8_t *)json};
    size_t lens[] = {2, pl, strlen(json)};
    size_t len = build_multipart(body, "----ei relay 42", 3, hdrs, data, lens);
    const char *ct = "multipart/form-data; boundary=\"----ei relay 42\"";
    CHECK_EQ_INT(ingest_parse(ct, body, len, &opts, &inf, &err), ER_OK);
    if (inf) {
        /* the multipart image replaces the base64 JPEG */
        CHECK_EQ_INT(inf->image.len, pl);
        CHECK(memcmp(inf->image.data, png, pl) == 0);
        CHECK_EQ_STR(inf->image.mime, "image/png");
        CHECK_EQ_INT(inf->image.width, 33);
        CHECK_EQ_INT(inf->image.height, 22);
        CHECK_EQ_INT(inf->kind, INFERENCE_CLASSIFICATION);
    }
    inference_destroy(inf);
    inf = NULL;

    /* By type instead of name; an image over the limit. */
    const char *hdrs2[] = {"Content-Disposition: form-data; name=\"doc\"\r\n"
                           "Content-Type: application/json; charset=utf-8",
                           "Content-Disposition: form-data; name=\"pic\"\r\n"
                           "Content-Type: image/jpeg"};
    const uint8_t *data2[] = {(const uint8_t *)"{\"c\":{\"y\":0.5}}", jpg};
    size_t lens2[] = {15, jl};
    len = build_multipart(body, "b", 2, hdrs2, data2, lens2);
    CHECK_EQ_INT(ingest_parse("multipart/form-data; boundary=b", body, len, &opts, &inf, &err),
                 ER_OK);
    if (inf) {
        CHECK_EQ_STR(inf->image.mime, "image/jpeg");
        CHECK_EQ_STR(inf->top_label, "y");
    }
    inference_destroy(inf);
    inf = NULL;
    normalize_opts small = opts;
    small.max_image_bytes = jl - 1;
    CHECK_EQ_INT(ingest_parse("multipart/form-data; boundary=b", body, len, &small, &inf, &err),
                 ER_TOOBIG);
    CHECK(inf == NULL);

    /* A text file as the image. */
    const uint8_t *data3[] = {(const uint8_t *)"{\"c\":{\"y\":0.5}}",
                              (const uint8_t *)"plain text"};
    size_t lens3[] = {15, 10};
    len = build_multipart(body, "b", 2, hdrs2, data3, lens3);
    CHECK_EQ_INT(ingest_parse("multipart/form-data; boundary=b", body, len, &opts, &inf, &err),
                 ER_UNSUPPORTED);
    CHECK(inf == NULL);
    CHECK(strstr(err.msg, "image is not a JPEG or PNG") != NULL);

    /* No JSON part; a bad JSON part; a missing close; no boundary. */
    len = build_multipart(body, "b", 1, &hdrs2[1], &data2[1], &lens2[1]);
    CHECK_EQ_INT(ingest_parse("multipart/form-data; boundary=b", body, len, &opts, &inf, &err),
                 ER_SHAPE);
    CHECK(strstr(err.msg, "no JSON part") != NULL);
    const uint8_t *data4[] = {(const uint8_t *)"{\"c\":{\"y\":\"no\"}}", jpg};
    size_t lens4[] = {16, jl};
    len = build_multipart(body, "b", 2, hdrs2, data4, lens4);
    CHECK_EQ_INT(ingest_parse("multipart/form-data; boundary=b", body, len, &opts, &inf, &err),
                 ER_SHAPE);
    CHECK(strstr(err.msg, "c.y") != NULL);
    len = build_multipart(body, "b", 2, hdrs2, data2, lens2);
    CHECK_EQ_INT(ingest_parse("multipart/form-data; boundary=b", body, len - 8, &opts, &inf, &err),
                 ER_INVALID);
    CHECK(strstr(err.msg, "malformed multipart") != NULL);
    CHECK_EQ_INT(ingest_parse("multipart/form-data", body, len, &opts, &inf, &err), ER_INVALID);
    CHECK(strstr(err.msg, "boundary") != NULL);
    CHECK(inf == NULL);
    free(body);
    free(json);
done:
    free(png);
    free(jpg);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* this test makes its images with libvips itself; the relay loads it through its module */
    if (media_init(argv[0]) || VIPS_INIT(argv[0])) {
        fprintf(stderr, "media_init failed\n");
        return 1;
    }
    test_probe();
    test_thumbnail();
    test_ingest_json();
    test_ingest_multipart();
    media_shutdown();
    return check_summary();
}
