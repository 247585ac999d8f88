/* test_preprocess.c - media/preprocess against the real Edge Impulse Linux runner: every case of
 * tests/fixtures/eim-features/manifest.txt (test images x resize modes x 1 and 3 channels x a
 * square and a non-square model, recorded by record.py there) must give byte for byte the
 * features the runner sent its model, and the result image the runner would attach. Then the
 * errors (not an image, truncated, channels 2, mode none with the wrong size, bad sizes), the
 * result image rule and the mode names, and every case again from two threads at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "check.h"
#include "fixture.h"
#include "media/image.h"
#include "media/preprocess.h"

#define MAX_CASES 512
#define DIR "eim-features"

typedef struct pp_case {
    char name[128], image[64], mode[16], result[192];
    int w, h, channels, shrink;
    uint8_t *img, *features, *jpeg; /* fixture bytes; jpeg NULL when result is "input" */
    size_t img_len, features_len, jpeg_len;
} pp_case;

static pp_case cases[MAX_CASES];
static int n_cases;

static void load_cases(void)
{
    size_t len = 0;
    char *manifest = fixture_read(DIR, "manifest.txt", &len), *save = NULL;
    for (char *line = manifest ? strtok_r(manifest, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        pp_case *c = &cases[n_cases];
        char path[256];
        if (line[0] == '#') continue;
        if (n_cases == MAX_CASES ||
            sscanf(line, "%127s %63s %d %d %d %15s %d %191s", c->name, c->image, &c->w, &c->h,
                   &c->channels, c->mode, &c->shrink, c->result) != 8) {
            fprintf(stderr, "manifest line not understood: %s\n", line);
            check_failed++;
            continue;
        }
        snprintf(path, sizeof path, "%s.u32", c->name);
        c->img = (uint8_t *)fixture_read(DIR "/images", c->image, &c->img_len);
        c->features = (uint8_t *)fixture_read(DIR "/features", path, &c->features_len);
        if (strcmp(c->result, "input") != 0)
            c->jpeg = (uint8_t *)fixture_read(DIR, c->result, &c->jpeg_len);
        n_cases++;
    }
    free(manifest);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One case: 0 when the features and the result image are the runner's, else prints why. */
static int run_case(const pp_case *c, bool verbose)
{
    preprocess_out out;
    preprocess_mode mode;
    er_err err = {{0}};
    int bad = 0;
    if (preprocess_mode_parse(c->mode, &mode) ||
        preprocess_frame(c->img, c->img_len, c->w, c->h, c->channels, mode, true, &out, &err)) {
        if (verbose) fprintf(stderr, "%s: preprocess failed: %s\n", c->name, err.msg);
        return 1;
    }
    if (out.n_features * 4 != c->features_len) {
        if (verbose)
            fprintf(stderr, "%s: %zu features, the runner sent %zu\n", c->name, out.n_features,
                    c->features_len / 4);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < out.n_features; i++) {
        uint32_t want = le32(c->features + 4 * i);
        if (out.features[i] != want) {
            if (verbose)
                fprintf(stderr, "%s: feature %zu (x %zu, y %zu) is 0x%06x, the runner's 0x%06x\n",
                        c->name, i, i % (size_t)c->w, i / (size_t)c->w, out.features[i], want);
            bad = 1;
        }
    }
    const uint8_t *want_jpeg = c->jpeg ? c->jpeg : c->img;
    size_t want_len = c->jpeg ? c->jpeg_len : c->img_len;
    if (out.jpeg_len != want_len || memcmp(out.jpeg, want_jpeg, want_len) != 0 ||
        out.jpeg_w != c->w || out.jpeg_h != c->h) {
        if (verbose)
            fprintf(stderr,
                    "%s: result image (%zu bytes, %dx%d) is not the runner's (%s, %zu "
                    "bytes)\n",
                    c->name, out.jpeg_len, out.jpeg_w, out.jpeg_h, c->result, want_len);
        bad = 1;
    }
    preprocess_out_free(&out);
    return bad;
}

static void test_runner_cases(void)
{
    int same = 0, kinds[9] = {0};
    load_cases();
    CHECK(n_cases >= 150);
    for (int i = 0; i < n_cases; i++) {
        if (run_case(&cases[i], true) == 0) same++;
        if (cases[i].shrink >= 1 && cases[i].shrink <= 8) kinds[cases[i].shrink]++;
    }
    printf("%d of %d runner cases identical (features and result image); JPEG shrink-on-load "
           "1: %d, 2: %d, 4: %d, 8: %d cases\n",
           same, n_cases, kinds[1], kinds[2], kinds[4], kinds[8]);
    CHECK_EQ_INT(same, n_cases);
    /* every shrink-on-load factor is covered */
    CHECK(kinds[1] > 0 && kinds[2] > 0 && kinds[4] > 0 && kinds[8] > 0);
}

/* Every case but the CMYK ones (libvips parses its 1 MB CMYK profile for each: slow, and
 * nothing a camera sends). */
static void *thread_main(void *arg)
{
    intptr_t bad = 0;
    for (int i = 0; i < n_cases; i++)
        if (strncmp(cases[i].image, "cmyk-", 5) != 0) bad += run_case(&cases[i], false);
    return (void *)bad;
}

/* Thread-safe: two threads over the cases at once give the same answers. */
static void test_threads(void)
{
    pthread_t th[2];
    void *bad[2] = {0};
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_main, NULL), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], &bad[i]);
        CHECK_EQ_INT((intptr_t)bad[i], 0);
    }
}

static const pp_case *find_case(const char *name)
{
    for (int i = 0; i < n_cases; i++)
        if (strcmp(cases[i].name, name) == 0) return &cases[i];
    fprintf(stderr, "no case %s\n", name);
    check_failed++;
    return NULL;
}

/* er and an all-zero out after a failure; libvips keeps no error. */
static void expect_error(const uint8_t *img, size_t len, int w, int h, int ch, preprocess_mode m,
                         er_rc want, const char *what)
{
    preprocess_out out;
    er_err err = {{0}};
    memset(&out, 0xab, sizeof out);
    er_rc rc = preprocess_frame(img, len, w, h, ch, m, true, &out, &err);
    if (rc != want) fprintf(stderr, "%s: %s (%s)\n", what, er_rc_name(rc), err.msg);
    CHECK_EQ_INT(rc, want);
    CHECK(err.msg[0] != '\0');
    CHECK(out.features == NULL && out.jpeg == NULL && out.n_features == 0 && out.jpeg_len == 0);
    CHECK(vips_error_buffer()[0] == '\0');
}

static void test_errors(void)
{
    const pp_case *cam = find_case("cam-640x480.32x32.c3.fit-shortest");
    const pp_case *exact = find_case("exact-32x32.32x32.c3.none");
    static const uint8_t text[] = "this is not an image at all";
    if (!cam || !exact) return;
    expect_error(text, sizeof text - 1, 32, 32, 3, PREPROCESS_SQUASH, ER_INVALID, "text");
    expect_error(NULL, 0, 32, 32, 3, PREPROCESS_SQUASH, ER_INVALID, "no bytes");
    expect_error(cam->img, 3, 32, 32, 3, PREPROCESS_SQUASH, ER_INVALID, "JPEG magic only");
    /* the header reads, the pixels end early: the runner's sharp fails it too (failOn warning) */
    for (int m = PREPROCESS_FIT_SHORTEST; m <= PREPROCESS_SQUASH; m++)
        expect_error(cam->img, cam->img_len / 2, 32, 32, 3, (preprocess_mode)m, ER_INVALID,
                     "truncated JPEG");
    expect_error(exact->img, exact->img_len - 40, 32, 32, 1, PREPROCESS_NONE, ER_INVALID,
                 "truncated, no resize");
    expect_error(cam->img, cam->img_len, 32, 32, 2, PREPROCESS_SQUASH, ER_INVALID, "2 channels");
    expect_error(cam->img, cam->img_len, 32, 32, 4, PREPROCESS_SQUASH, ER_INVALID, "4 channels");
    expect_error(cam->img, cam->img_len, 0, 32, 3, PREPROCESS_SQUASH, ER_INVALID, "width 0");
    expect_error(cam->img, cam->img_len, 32, 5000, 3, PREPROCESS_SQUASH, ER_INVALID, "height");
    expect_error(cam->img, cam->img_len, 32, 32, 3, (preprocess_mode)7, ER_INVALID, "mode 7");
    /* mode none takes the frame as it is: another size is refused, not sent */
    expect_error(cam->img, cam->img_len, 32, 32, 3, PREPROCESS_NONE, ER_SHAPE, "none, 640x480");
    expect_error(exact->img, exact->img_len, 32, 31, 1, PREPROCESS_NONE, ER_SHAPE, "none, 32x32");
    /* and a good frame still works after all of these */
    CHECK_EQ_INT(run_case(cam, true), 0);
}

/* The result image: absent unless asked; the input itself for an RGB model when the JPEG is
 * already the model's size (in every mode); else a JPEG of the model's size, gray for 1 channel. */
static void test_result_image(void)
{
    const pp_case *exact = find_case("exact-48x32.48x32.c3.squash");
    preprocess_out out;
    er_err err = {{0}};
    inference_image img;
    if (!exact) return;
    CHECK_EQ_INT(preprocess_frame(exact->img, exact->img_len, 48, 32, 3, PREPROCESS_SQUASH, false,
                                  &out, &err),
                 ER_OK);
    CHECK(out.jpeg == NULL && out.jpeg_len == 0 && out.n_features == 48 * 32);
    preprocess_out_free(&out);
    for (int m = PREPROCESS_NONE; m <= PREPROCESS_SQUASH; m++) {
        CHECK_EQ_INT(preprocess_frame(exact->img, exact->img_len, 48, 32, 3, (preprocess_mode)m,
                                      true, &out, &err),
                     ER_OK);
        CHECK(out.jpeg_len == exact->img_len && memcmp(out.jpeg, exact->img, out.jpeg_len) == 0);
        preprocess_out_free(&out);
    }
    /* 1 channel, same size: re-encoded, gray */
    CHECK_EQ_INT(
        preprocess_frame(exact->img, exact->img_len, 48, 32, 1, PREPROCESS_NONE, true, &out, &err),
        ER_OK);
    CHECK(out.jpeg_len != exact->img_len || memcmp(out.jpeg, exact->img, out.jpeg_len) != 0);
    VipsImage *im = NULL;
    CHECK_EQ_INT(vips_jpegload_buffer(out.jpeg, out.jpeg_len, &im, NULL), 0);
    if (im) {
        CHECK_EQ_INT(vips_image_get_bands(im), 1);
        CHECK_EQ_INT(vips_image_get_width(im), 48);
        g_object_unref(im);
    }
    preprocess_out_free(&out);
    /* another size: a 48x32 RGB JPEG */
    CHECK_EQ_INT(preprocess_frame(cases[0].img, cases[0].img_len, 48, 32, 3, PREPROCESS_FIT_LONGEST,
                                  true, &out, &err),
                 ER_OK);
    CHECK_EQ_INT(media_probe(out.jpeg, out.jpeg_len, &img, &err), ER_OK);
    CHECK_EQ_STR(img.mime, "image/jpeg");
    CHECK(img.width == 48 && img.height == 32 && out.jpeg_w == 48 && out.jpeg_h == 32);
    preprocess_out_free(&out);
    preprocess_out_free(NULL);
}

static void test_mode_names(void)
{
    static const char *names[] = {"none", "fit-shortest", "fit-longest", "squash"};
    preprocess_mode m;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(preprocess_mode_parse(names[i], &m), ER_OK);
        CHECK_EQ_INT(m, i);
        CHECK_EQ_STR(preprocess_mode_name(m), names[i]);
    }
    CHECK_EQ_INT(preprocess_mode_parse("fit_shortest", &m), ER_INVALID);
    CHECK_EQ_INT(preprocess_mode_parse("", &m), ER_INVALID);
    CHECK_EQ_INT(preprocess_mode_parse(NULL, &m), ER_INVALID);
    CHECK_EQ_STR(preprocess_mode_name((preprocess_mode)9), "?");
}

int main(int argc, char **argv)
{
    (void)argc;
    /* this test reads results with libvips itself; the relay loads it through its module */
    if (media_init(argv[0]) || VIPS_INIT(argv[0])) {
        fprintf(stderr, "media_init failed\n");
        return 1;
    }
    test_runner_cases();
    test_errors();
    test_result_image();
    test_mode_names();
    test_threads();
    for (int i = 0; i < n_cases; i++) {
        free(cases[i].img);
        free(cases[i].features);
        free(cases[i].jpeg);
    }
    media_shutdown();
    return check_summary();
}
