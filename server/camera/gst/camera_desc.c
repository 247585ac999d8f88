/* camera_desc.c - what a camera runs when the caller gives no pipeline (a V4L2 device, checked or
 * found, in a pipeline that takes MJPEG and raw cameras), and which Debian package provides an
 * element a description names, for the "no element" message. */
#include "camera/camera_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The /dev/videoN scanned for the first camera: the kernel numbers V4L2 nodes below 256. */
#define CAMERA_SCAN_MAX 256

/* Elements a camera pipeline commonly names, with the Debian 12 package that provides them
 * (`dpkg -S` of the plugin gst-inspect-1.0 names). appsink is the module's own sink. */
static const struct {
    const char *element, *package;
} package_table[] = {
    {"appsink", "gstreamer1.0-plugins-base"},      {"videotestsrc", "gstreamer1.0-plugins-base"},
    {"videoconvert", "gstreamer1.0-plugins-base"}, {"videoscale", "gstreamer1.0-plugins-base"},
    {"videorate", "gstreamer1.0-plugins-base"},    {"decodebin", "gstreamer1.0-plugins-base"},
    {"uridecodebin", "gstreamer1.0-plugins-base"}, {"jpegenc", "gstreamer1.0-plugins-good"},
    {"jpegdec", "gstreamer1.0-plugins-good"},      {"v4l2src", "gstreamer1.0-plugins-good"},
    {"videoflip", "gstreamer1.0-plugins-good"},    {"videocrop", "gstreamer1.0-plugins-good"},
    {"videobox", "gstreamer1.0-plugins-good"},     {"multifilesrc", "gstreamer1.0-plugins-good"},
    {"imagefreeze", "gstreamer1.0-plugins-good"},  {"souphttpsrc", "gstreamer1.0-plugins-good"},
    {"rtspsrc", "gstreamer1.0-plugins-good"},      {"rtpjpegdepay", "gstreamer1.0-plugins-good"},
    {"jpegparse", "gstreamer1.0-plugins-bad"},     {"h264parse", "gstreamer1.0-plugins-bad"},
    {"avdec_h264", "gstreamer1.0-libav"},          {"libcamerasrc", "gstreamer1.0-libcamera"},
};

const char *camera__package_of(const char *element)
{
    for (size_t i = 0; i < sizeof package_table / sizeof package_table[0]; i++)
        if (strcmp(package_table[i].element, element) == 0) return package_table[i].package;
    return NULL;
}

/* Whether path is a V4L2 video capture device. ER_IO with why not (in err) when it is not. */
static er_rc check_capture(const char *path, er_err *err)
{
    er_rc rc = ER_OK;
    struct v4l2_capability cap;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        rc = er_fail(err, ER_IO, "camera %s: %s", path, strerror(errno));
        goto fail;
    }
    memset(&cap, 0, sizeof cap);
    if (ioctl(fd, VIDIOC_QUERYCAP, &cap) != 0) {
        rc = er_fail(err, ER_IO, "camera %s is not a V4L2 device (%s)", path, strerror(errno));
        goto fail;
    }
    /* device_caps describe this node; capabilities the whole physical device */
    uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
    if (!(caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE)))
        rc = er_fail(err, ER_IO, "camera %s (%s) is not a video capture device", path,
                     (const char *)cap.card);
fail:
    if (fd >= 0) close(fd);
    return rc;
}

/* The first /dev/videoN that is a capture device (UVC cameras also have metadata nodes, which
 * are not) into path. */
static er_rc find_camera(char *path, size_t size, er_err *err)
{
    int seen = 0;
    for (int n = 0; n < CAMERA_SCAN_MAX; n++) {
        snprintf(path, size, "/dev/video%d", n);
        if (access(path, F_OK) != 0) continue;
        seen++;
        if (check_capture(path, NULL) == ER_OK) return ER_OK;
    }
    if (seen == 0)
        return er_fail(err, ER_IO,
                       "no camera found: there is no /dev/video* device (connect "
                       "one, name a V4L2 device, or give a GStreamer pipeline)");
    return er_fail(err, ER_IO,
                   "no camera found: none of the %d /dev/video* devices is a V4L2 "
                   "video capture device",
                   seen);
}

er_rc camera__device_pipeline(const camera_opts *o, char **out, er_err *err)
{
    er_rc rc = ER_OK;
    char found[32];
    const char *dev = o->device;
    *out = NULL;
    if (!dev || !dev[0]) {
        rc = find_camera(found, sizeof found, err);
        if (rc) goto fail;
        dev = found;
    } else {
        /* the path goes into the description in double quotes */
        if (strpbrk(dev, "\"\\\n\r\t")) {
            rc = er_fail(err, ER_CONFIG,
                         "camera: the device path may not hold quotes, "
                         "backslashes or control characters");
            goto fail;
        }
        rc = check_capture(dev, err);
        if (rc) goto fail;
    }
    int w = o->width ? o->width : CAMERA_DEFAULT_WIDTH;
    int h = o->height ? o->height : CAMERA_DEFAULT_HEIGHT;
    /* decodebin: jpegdec for an MJPEG camera, nothing for a raw one; videoscale's borders keep
     * the aspect when the device's format is not W×H */
#define CAMERA_V4L2_FMT                                                                            \
    "v4l2src device=\"%s\" ! decodebin ! videoconvert ! videoscale ! "                             \
    "video/x-raw,width=%d,height=%d ! jpegenc"
    int n = snprintf(NULL, 0, CAMERA_V4L2_FMT, dev, w, h);
    *out = malloc((size_t)n + 1);
    if (!*out) {
        rc = er_fail(err, ER_NOMEM, "camera: out of memory");
        goto fail;
    }
    snprintf(*out, (size_t)n + 1, CAMERA_V4L2_FMT, dev, w, h);
fail:
    return rc;
}
