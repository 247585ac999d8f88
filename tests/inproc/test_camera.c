/* test_camera.c - server/camera with real GStreamer pipelines (videotestsrc, jpegenc, the
 * module's appsink): frames arrive as valid JPEGs of the asked size with increasing seqs, a
 * static scene (pattern=red) gives byte-identical frames, the end of the stream is ER_CLOSED,
 * a pipeline that fails to start or while running is ER_IO with GStreamer's message, a
 * description that does not parse or names an unknown element is ER_CONFIG with a clear
 * message (the package to install, checked in a child process whose GStreamer has no plugins),
 * output that is not JPEG names its caps, frames over max_frame are ER_TOOBIG and counted,
 * camera_wake ends a wait at once, a slow consumer gets the newest frame and the others are
 * dropped and counted, restart carries seq on, and device mode without a camera says so. */
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

#include "camera/camera.h"
#include "check.h"
#include "core/util.h"
#include "media/image.h"

#define WAIT_MS 10000 /* a frame of a running test pipeline comes far sooner than this */

static camera *create(const char *pipeline, size_t max_frame)
{
    camera_opts o = {.pipeline = pipeline, .max_frame = max_frame};
    camera *c = NULL;
    er_err err = {{0}};
    er_rc rc = camera_create(&o, &c, &err);
    if (rc) fprintf(stderr, "camera_create(%s): %s: %s\n", pipeline, er_rc_name(rc), err.msg);
    CHECK_EQ_INT(rc, ER_OK);
    return c;
}

/* The width and height of a baseline or progressive JPEG's frame header; false if data is not
 * a JPEG from SOI to EOI with one. */
static bool jpeg_size(const unsigned char *d, size_t n, int *w, int *h)
{
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8 || d[n - 2] != 0xFF || d[n - 1] != 0xD9) return false;
    size_t i = 2;
    while (i + 9 < n && d[i] == 0xFF) {
        unsigned m = d[i + 1], len = (unsigned)d[i + 2] << 8 | d[i + 3];
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
            *h = d[i + 5] << 8 | d[i + 6];
            *w = d[i + 7] << 8 | d[i + 8];
            return true;
        }
        i += 2 + len;
    }
    return false;
}

/* The decoded colour at the frame's centre (libvips decodes the whole JPEG). */
static bool centre_rgb(const camera_frame *f, double rgb[3])
{
    VipsImage *img = vips_image_new_from_buffer(f->data, f->len, "", NULL);
    double *v = NULL;
    int nv = 0;
    bool ok =
        img && vips_getpoint(img, &v, &nv, img->Xsize / 2, img->Ysize / 2, NULL) == 0 && nv >= 3;
    for (int i = 0; ok && i < 3; i++)
        rgb[i] = v[i];
    g_free(v);
    if (img) g_object_unref(img);
    return ok;
}

/* Bounded poll of the counters (the pipeline runs on its own threads). */
static bool wait_frames(camera *c, uint64_t n)
{
    int64_t end = util_mono_ms() + WAIT_MS;
    camera_stats st;
    for (;;) {
        camera_stats_get(c, &st);
        if (st.frames >= n || util_mono_ms() > end) return st.frames >= n;
        nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
    }
}

/* Frames until the end: valid JPEGs of the caps' size, seqs increasing to the last, every frame
 * either returned or counted as dropped. */
static void test_frames_and_eos(void)
{
    camera *c = create(
        "videotestsrc num-buffers=6 ! video/x-raw,width=320,height=240,framerate=30/1 ! jpegenc",
        0);
    if (!c) return;
    CHECK(strstr(camera_describe(c), "videotestsrc num-buffers=6") != NULL);
    CHECK(strstr(camera_describe(c), "appsink") != NULL);
    camera_frame f;
    er_err err;
    er_rc rc;
    uint64_t last = 0, got = 0;
    while ((rc = camera_next(c, WAIT_MS, &f, &err)) == ER_OK) {
        int w = 0, h = 0;
        CHECK(f.seq > last);
        CHECK(jpeg_size(f.data, f.len, &w, &h));
        CHECK_EQ_INT(w, 320);
        CHECK_EQ_INT(h, 240);
        double rgb[3];
        CHECK(centre_rgb(&f, rgb));
        last = f.seq;
        got++;
        camera_frame_free(&f);
        CHECK(f.data == NULL);
    }
    CHECK_EQ_INT(rc, ER_CLOSED);
    CHECK(strstr(err.msg, "EOS") != NULL);
    CHECK(f.data == NULL && f.len == 0);
    CHECK_EQ_INT(last, 6); /* the last frame is delivered before the end */
    camera_stats st;
    camera_stats_get(c, &st);
    CHECK_EQ_INT(st.frames, 6);
    CHECK_EQ_INT(st.delivered, got);
    CHECK_EQ_INT(st.delivered + st.dropped, 6);
    /* the end repeats, at once */
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_CLOSED);
    CHECK(util_mono_ms() - t0 < 1000);

    /* a restart runs the pipeline again; seq carries on */
    CHECK_EQ_INT(camera_restart(c, &err), ER_OK);
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_OK);
    CHECK(f.seq > 6);
    camera_frame_free(&f);
    while ((rc = camera_next(c, WAIT_MS, &f, &err)) == ER_OK)
        camera_frame_free(&f);
    CHECK_EQ_INT(rc, ER_CLOSED);
    camera_stats_get(c, &st);
    CHECK_EQ_INT(st.frames, 12);
    CHECK_EQ_INT(st.restarts, 1);
    camera_destroy(c);
    camera_destroy(NULL);
    camera_frame_free(NULL);
}

/* A static scene: every frame the same bytes, and red. */
static void test_red_identical(void)
{
    camera *c = create("videotestsrc pattern=red num-buffers=4 ! "
                       "video/x-raw,width=64,height=48,framerate=30/1 ! jpegenc",
                       0);
    if (!c) return;
    camera_frame first = {0}, f;
    er_err err;
    er_rc rc;
    int n = 0;
    while ((rc = camera_next(c, WAIT_MS, &f, &err)) == ER_OK) {
        n++;
        if (!first.data) {
            first = f;
            double rgb[3] = {0};
            CHECK(centre_rgb(&f, rgb));
            CHECK(rgb[0] > 230 && rgb[1] < 25 && rgb[2] < 25);
            continue;
        }
        CHECK(f.len == first.len && memcmp(f.data, first.data, f.len) == 0);
        camera_frame_free(&f);
    }
    CHECK_EQ_INT(rc, ER_CLOSED);
    CHECK(n >= 1);
    /* one more run, so at least two frames are compared however the consumer was scheduled */
    CHECK_EQ_INT(camera_restart(c, &err), ER_OK);
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_OK);
    CHECK(first.data && f.len == first.len && memcmp(f.data, first.data, f.len) == 0);
    camera_frame_free(&f);
    camera_frame_free(&first);
    camera_destroy(c);
}

static void expect_create_fails(const char *pipeline, er_rc want, const char *in_msg)
{
    camera_opts o = {.pipeline = pipeline};
    camera *c = (camera *)&o; /* must come back NULL */
    er_err err = {{0}};
    CHECK_EQ_INT(camera_create(&o, &c, &err), want);
    CHECK(c == NULL);
    if (!strstr(err.msg, in_msg))
        fprintf(stderr, "for %s: \"%s\" lacks \"%s\"\n", pipeline, err.msg, in_msg);
    CHECK(strstr(err.msg, in_msg) != NULL);
}

static void test_bad_descriptions(void)
{
    /* syntax */
    expect_create_fails("videotestsrc ! ! jpegenc", ER_CONFIG, "does not parse");
    expect_create_fails("videotestsrc ! video/x-raw,width=(int)x ! jpegenc", ER_CONFIG,
                        "does not parse");
    /* unknown elements: named, with the package when the module knows it */
    expect_create_fails("nosuchelement ! jpegenc", ER_CONFIG, "no element \"nosuchelement\"");
    expect_create_fails("nosuchelement ! jpegenc", ER_CONFIG, "gst-inspect-1.0");
    expect_create_fails("libcamerasrc ! jpegenc", ER_CONFIG,
                        "no element \"libcamerasrc\" - install gstreamer1.0-libcamera");
    /* ends in a sink: the module's appsink cannot follow it */
    expect_create_fails("videotestsrc ! fakesink", ER_CONFIG, "fakesink");
    /* fails to start: a file that is not there (filesrc opens it going to PAUSED) */
    expect_create_fails("filesrc location=/proc/no-such-file ! jpegdec ! jpegenc", ER_IO,
                        "no-such-file");
}

/* Fails while running (identity posts an error after two frames): the frames before it are
 * returned, then ER_IO with GStreamer's message, repeated until a restart. */
static void test_runtime_error(void)
{
    camera *c = create("videotestsrc ! video/x-raw,width=32,height=24,framerate=30/1 ! jpegenc ! "
                       "identity error-after=3",
                       0);
    if (!c) return;
    camera_frame f;
    er_err err = {{0}};
    er_rc rc;
    uint64_t last = 0;
    while ((rc = camera_next(c, WAIT_MS, &f, &err)) == ER_OK) {
        last = f.seq;
        camera_frame_free(&f);
    }
    CHECK_EQ_INT(rc, ER_IO);
    CHECK_EQ_INT(last, 2);
    CHECK(strstr(err.msg, "GStreamer error from identity") != NULL);
    CHECK(strstr(err.msg, "requested") != NULL);
    CHECK_EQ_INT(camera_next(c, 0, &f, &err), ER_IO); /* it stays failed */
    CHECK_EQ_INT(camera_restart(c, &err), ER_OK);
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_OK);
    CHECK_EQ_INT(f.seq, 3);
    camera_frame_free(&f);
    camera_destroy(c);
}

/* Output that is not JPEG: the error names the caps. */
static void test_not_jpeg(void)
{
    camera *c = create("videotestsrc ! video/x-raw,format=I420,width=32,height=24", 0);
    if (!c) return;
    camera_frame f;
    er_err err = {{0}};
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "video/x-raw") != NULL);
    CHECK(strstr(err.msg, "I420") != NULL);
    CHECK(strstr(err.msg, "not image/jpeg") != NULL);
    camera_stats st;
    camera_stats_get(c, &st);
    CHECK_EQ_INT(st.frames, 0);
    camera_destroy(c);
}

/* Every frame over max_frame: ER_TOOBIG with the size, counted, then the end. */
static void test_too_big(void)
{
    camera *c =
        create("videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! jpegenc", 100);
    if (!c) return;
    camera_frame f;
    er_err err = {{0}};
    er_rc rc;
    int toobig = 0;
    while ((rc = camera_next(c, WAIT_MS, &f, &err)) == ER_TOOBIG) {
        toobig++;
        CHECK(strstr(err.msg, "over the limit of 100") != NULL);
        CHECK(f.data == NULL);
    }
    CHECK_EQ_INT(rc, ER_CLOSED);
    CHECK(toobig >= 1);
    camera_stats st;
    camera_stats_get(c, &st);
    CHECK_EQ_INT(st.too_big, 3);
    CHECK_EQ_INT(st.delivered, 0);
    camera_destroy(c);
}

struct waiter {
    camera *c;
    atomic_int started;
    er_rc rc;
    int64_t took;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    camera_frame f;
    er_err err;
    atomic_store(&w->started, 1);
    int64_t t0 = util_mono_ms();
    w->rc = camera_next(w->c, 30000, &f, &err);
    w->took = util_mono_ms() - t0;
    camera_frame_free(&f);
    return NULL;
}

/* camera_wake ends a long wait at once; a wake with nobody waiting ends the next call. */
static void test_wake(void)
{
    /* one frame now, the next in 100 s (the sink syncs to the clock) */
    camera *c = create("videotestsrc ! "
                       "video/x-raw,width=32,height=24,framerate=1/100 ! jpegenc",
                       0);
    if (!c) return;
    camera_frame f;
    er_err err;
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_OK);
    CHECK_EQ_INT(f.seq, 1);
    camera_frame_free(&f);
    /* a plain timeout */
    int64_t t0 = util_mono_ms();
    CHECK_EQ_INT(camera_next(c, 150, &f, &err), ER_AGAIN);
    int64_t took = util_mono_ms() - t0;
    CHECK(took >= 140 && took < 5000);
    CHECK_EQ_INT(camera_next(c, 0, &f, &err), ER_AGAIN);

    struct waiter w = {.c = c};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, wait_thread, &w) == 0);
    while (!atomic_load(&w.started))
        sched_yield();
    camera_wake(c);
    pthread_join(th, NULL);
    CHECK_EQ_INT(w.rc, ER_AGAIN);
    CHECK(w.took < 5000); /* not the 30 s timeout */

    camera_wake(c); /* nobody waiting: the next call returns at once, the one after waits */
    t0 = util_mono_ms();
    CHECK_EQ_INT(camera_next(c, 30000, &f, &err), ER_AGAIN);
    CHECK(util_mono_ms() - t0 < 5000);
    t0 = util_mono_ms();
    CHECK_EQ_INT(camera_next(c, 100, &f, &err), ER_AGAIN);
    CHECK(util_mono_ms() - t0 >= 90);
    camera_destroy(c);
}

/* A consumer that takes nothing while 20 frames pass gets only the newest; the 19 others were
 * dropped and counted, not queued. */
static void test_slow_consumer(void)
{
    camera *c = create("videotestsrc num-buffers=20 ! "
                       "video/x-raw,width=64,height=48,framerate=200/1 ! jpegenc",
                       0);
    if (!c) return;
    CHECK(wait_frames(c, 20));
    camera_frame f;
    er_err err;
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_OK);
    CHECK_EQ_INT(f.seq, 20);
    camera_frame_free(&f);
    CHECK_EQ_INT(camera_next(c, WAIT_MS, &f, &err), ER_CLOSED);
    camera_stats st;
    camera_stats_get(c, &st);
    CHECK_EQ_INT(st.frames, 20);
    CHECK_EQ_INT(st.delivered, 1);
    CHECK_EQ_INT(st.dropped, 19);
    camera_destroy(c);
}

/* Device mode: without a camera, or with a device that is not one, a clear error. */
static void test_device_mode(void)
{
    camera *c = NULL;
    er_err err = {{0}};
    glob_t g;
    bool any_video = glob("/dev/video*", 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    if (!any_video) {
        camera_opts o = {0};
        CHECK_EQ_INT(camera_create(&o, &c, &err), ER_IO);
        CHECK(c == NULL);
        CHECK(strstr(err.msg, "no camera found") != NULL);
    } else {
        printf("test_device_mode: this machine has /dev/video*: the no-camera case is skipped\n");
    }
    camera_opts missing = {.device = "/dev/video-no-such-camera"};
    CHECK_EQ_INT(camera_create(&missing, &c, &err), ER_IO);
    CHECK(strstr(err.msg, "/dev/video-no-such-camera") != NULL);
    CHECK(strstr(err.msg, strerror(ENOENT)) != NULL);
    camera_opts null_dev = {.device = "/dev/null"};
    CHECK_EQ_INT(camera_create(&null_dev, &c, &err), ER_IO);
    CHECK(strstr(err.msg, "/dev/null is not a V4L2 device") != NULL);
    camera_opts quoted = {.device = "/dev/vid\"eo0"};
    CHECK_EQ_INT(camera_create(&quoted, &c, &err), ER_CONFIG);
    camera_opts size = {.width = -1};
    CHECK_EQ_INT(camera_create(&size, &c, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "out of range") != NULL);
    size.width = 640;
    size.height = CAMERA_DIMENSION_MAX + 1;
    CHECK_EQ_INT(camera_create(&size, &c, &err), ER_CONFIG);
    CHECK(c == NULL);
}

/* In a child whose GStreamer finds no plugins: the missing elements name their packages. */
static int no_plugins_child(void)
{
    camera_opts o = {.pipeline = "videotestsrc ! jpegenc"};
    camera *c = NULL;
    er_err err = {{0}};
    CHECK_EQ_INT(camera_create(&o, &c, &err), ER_CONFIG);
    printf("no plugins: %s\n", err.msg);
    CHECK(strstr(err.msg, "no element \"videotestsrc\" - install gstreamer1.0-plugins-base"));
    CHECK(strstr(err.msg, "no element \"jpegenc\" - install gstreamer1.0-plugins-good"));
    CHECK(strstr(err.msg, "no element \"appsink\" - install gstreamer1.0-plugins-base"));
    return check_summary();
}

static void test_missing_plugins(void)
{
    char dir[] = "/tmp/ei-camera-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char registry[64];
    snprintf(registry, sizeof registry, "%s/registry.bin", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("GST_PLUGIN_SYSTEM_PATH_1_0", dir, 1);
        setenv("GST_PLUGIN_PATH_1_0", dir, 1);
        setenv("GST_REGISTRY_1_0", registry, 1);
        unsetenv("GST_PLUGIN_PATH");
        unsetenv("GST_PLUGIN_SYSTEM_PATH");
        execl("/proc/self/exe", "test_camera", "--no-plugins", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(registry);
    CHECK(rmdir(dir) == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--no-plugins") == 0) return no_plugins_child();
    CHECK_EQ_INT(media_init(argv[0]), ER_OK);
    CHECK_EQ_INT(VIPS_INIT(argv[0]), 0); /* the test reads frames with libvips itself */
    test_missing_plugins(); /* first: the child starts before this process runs GStreamer */
    test_frames_and_eos();
    test_red_identical();
    test_bad_descriptions();
    test_runtime_error();
    test_not_jpeg();
    test_too_big();
    test_wake();
    test_slow_consumer();
    test_device_mode();
    media_shutdown();
    return check_summary();
}
