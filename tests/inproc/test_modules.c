/* test_modules.c - the relay without its modules (core/module.h): EI_MODULE_DIR points
 * at an empty directory, so every call that needs libvips or GStreamer fails with ER_IO and a
 * message naming the missing file, never a crash, while the header probe still works; and
 * module_load on a file that is not a module, a module without the asked symbol, and a module of
 * another interface version (the real ones, from the build tree). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "camera/camera.h"
#include "check.h"
#include "core/module.h"
#include "media/image.h"
#include "media/preprocess.h"
#include "media/synth.h"

/* A 9x8 baseline JPEG header: enough for the probe, not for a decoder. */
static const uint8_t jpeg_head[] = {0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 8, 0, 9,    1, 1,
                                    0x11, 0,    0xff, 0xda, 0, 8,  1, 1, 0, 0, 0x3f, 0};

static void test_missing(const char *empty)
{
    setenv("EI_MODULE_DIR", empty, 1);
    inference_image img = {0};
    er_err err = {{0}};
    CHECK_EQ_INT(media_probe(jpeg_head, sizeof jpeg_head, &img, &err), ER_OK);
    CHECK_EQ_INT(img.width, 9);

    uint8_t *out = (uint8_t *)"untouched";
    size_t out_len = 1;
    CHECK_EQ_INT(media_thumbnail(jpeg_head, sizeof jpeg_head, 16, &out, &out_len), ER_IO);
    CHECK(out == NULL && out_len == 0);
    const char *why = media_unavailable();
    CHECK(why && strstr(why, "ei-relay-vips.so is not installed") && strstr(why, empty));
    CHECK_EQ_INT(synth_jpeg(16, 16, NULL, 0, 1, 80, &out, &out_len), ER_IO);

    preprocess_out pre;
    CHECK_EQ_INT(preprocess_frame(jpeg_head, sizeof jpeg_head, 8, 8, 3, PREPROCESS_SQUASH, false,
                                  &pre, &err),
                 ER_IO);
    CHECK(strstr(err.msg, "ei-relay-vips.so") != NULL);
    CHECK(pre.features == NULL && pre.jpeg == NULL);

    camera_opts co = {.pipeline = "videotestsrc ! jpegenc"};
    camera *cam = (camera *)&co;
    CHECK_EQ_INT(camera_create(&co, &cam, &err), ER_IO);
    CHECK(cam == NULL);
    CHECK(strstr(err.msg, "camera: ei-relay-gst.so is not installed") != NULL);
    camera_destroy(NULL);
    unsetenv("EI_MODULE_DIR");
}

static void test_broken(const char *dir, const char *build)
{
    char path[600];
    const void *api = (const void *)1;
    er_err err = {{0}};
    snprintf(path, sizeof path, "%s/ei-relay-vips.so", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("not an ELF file\n", f);
        fclose(f);
    }
    setenv("EI_MODULE_DIR", dir, 1);
    CHECK_EQ_INT(module_load("ei-relay-vips.so", "ei_relay_vips_api", 1, &api, &err), ER_IO);
    CHECK(api == NULL);
    CHECK(strstr(err.msg, "cannot load ") && strstr(err.msg, path));
    unlink(path);
    if (!build) return;
    /* the real modules: one asked for the other's symbol, one for an interface it is not */
    setenv("EI_MODULE_DIR", build, 1);
    CHECK_EQ_INT(module_load("ei-relay-gst.so", "ei_relay_vips_api", 1, &api, &err), ER_IO);
    CHECK(strstr(err.msg, "is not an ei-relay module (no ei_relay_vips_api)") != NULL);
    CHECK_EQ_INT(module_load("ei-relay-gst.so", "ei_relay_gst_api", 999, &api, &err), ER_IO);
    CHECK(strstr(err.msg, "another ei-relay version (interface 999 wanted)") != NULL);
    CHECK_EQ_INT(module_load("ei-relay-gst.so", "ei_relay_gst_api", 1, &api, &err), ER_OK);
    CHECK(api != NULL);
    unsetenv("EI_MODULE_DIR");
}

int main(int argc, char **argv)
{
    const char *build = getenv("EI_MODULE_DIR"); /* ctest points it at the build tree */
    char dir[] = "/tmp/ei-modules-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *keep = build ? strdup(build) : NULL;
    CHECK_EQ_INT(media_init(argc > 0 ? argv[0] : "test"), ER_OK);
    test_missing(dir);
    test_broken(dir, keep);
    media_shutdown();
    free(keep);
    CHECK(rmdir(dir) == 0);
    return check_summary();
}
