/* camera.h - JPEG frames from a GStreamer pipeline, GStreamer linked as a library.
 *
 * A camera runs one pipeline: the caller's gst-launch description (the Edge Impulse runner's
 * --gst-launch-args meaning: it must produce JPEG) or, without one, a V4L2 camera pipeline built
 * here (see camera_opts.device). The module appends its own sink,
 * `appsink max-buffers=1 drop=true`, and keeps only the newest frame not yet returned: a slow
 * consumer makes frames drop (counted), never queue. Each frame the pipeline delivers gets the
 * next seq (1, 2, ...), so a gap in the seqs the caller sees is the frames it missed.
 *
 * Errors the caller can act on: a description that does not parse or names an element that is
 * not installed (ER_CONFIG; the message names the element and the Debian package that has it),
 * a camera that is missing or fails to open (ER_IO), a pipeline that fails while running
 * (ER_IO with GStreamer's message and debug text), output that is not image/jpeg (ER_CONFIG,
 * naming the caps), the end of the stream (ER_CLOSED). The module never restarts a pipeline by
 * itself: the caller decides when (camera_restart, or destroy and create again).
 *
 * Threads: GStreamer's streaming threads hand frames, the end of the stream and errors to the
 * camera under its mutex; one consumer thread calls camera_next and camera_restart; any thread
 * may call camera_wake and camera_stats_get. gst_init runs once per process, on the first
 * camera_create. */
#ifndef EI_CAMERA_CAMERA_H
#define EI_CAMERA_CAMERA_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

typedef struct camera camera; /* opaque */

#define CAMERA_SIZE_MAX (16u << 20) /* largest frame accepted by default */
#define CAMERA_DEFAULT_WIDTH 640
#define CAMERA_DEFAULT_HEIGHT 480
#define CAMERA_DIMENSION_MAX 16384 /* a larger requested width or height is a config error */

typedef struct camera_opts {
    /* A gst-launch description that produces JPEG frames (the runner's --gst-launch-args);
     * the module appends its own appsink. NULL/"": built from device/width/height as
     *   v4l2src device=D ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=W,height=H
     *   ! jpegenc
     * decodebin takes MJPEG cameras (jpegdec) and raw ones (passed through) alike; v4l2src keeps
     * the device's current format and videoscale makes it W×H (black borders keep the aspect). */
    const char *pipeline;
    /* The V4L2 device when pipeline is NULL; NULL/"": the first capture device found (the
     * lowest-numbered /dev/videoN whose VIDIOC_QUERYCAP says video capture). */
    const char *device;
    int width, height; /* requested size when pipeline is NULL; 0 -> the defaults above */
    size_t max_frame;  /* 0 -> CAMERA_SIZE_MAX */
} camera_opts;

typedef struct camera_frame {
    unsigned char *data; /* JPEG bytes, owned by the frame */
    size_t len;
    uint64_t seq; /* 1, 2, ... frames delivered by the pipeline (dropped ones count) */
} camera_frame;

typedef struct camera_stats {
    uint64_t frames;    /* frames the pipeline delivered (the last seq given) */
    uint64_t delivered; /* returned by camera_next */
    uint64_t dropped;   /* replaced by a newer frame before camera_next took them */
    uint64_t too_big;   /* over max_frame, skipped */
    uint64_t restarts;  /* camera_restart calls */
} camera_stats;

/* Parses and starts the pipeline (PLAYING). A description that does not parse or a missing
 * element (`no element "jpegenc" - install gstreamer1.0-plugins-good`) -> ER_CONFIG; bad opts
 * (a negative or huge size) -> ER_CONFIG; no camera found, a device that is not a V4L2 capture
 * device, or a pipeline that fails to start (a missing file, a busy device) -> ER_IO. The
 * message in err says which; on error nothing is left running and *out is NULL. */
er_rc camera_create(const camera_opts *o, camera **out, er_err *err);

/* Waits up to timeout_ms (< 0: no limit, 0: no wait) for the NEWEST frame not yet returned
 * (older undelivered frames are dropped and counted, so a slow consumer never queues).
 *  ER_OK       *out filled (the caller frees it with camera_frame_free);
 *  ER_AGAIN    timeout, or camera_wake was called (since the last camera_next returned);
 *  ER_TOOBIG   the newest frame was over max_frame (skipped and counted; err says its size);
 *  ER_CLOSED   end of stream (every frame before it has been returned or dropped);
 *  ER_IO       the pipeline failed (err carries GStreamer's message and debug string);
 *  ER_CONFIG   the pipeline's output is not image/jpeg (err names the caps);
 *  ER_NOMEM.
 * ER_CLOSED, ER_IO and ER_CONFIG repeat on every call until camera_restart. *out is zeroed on
 * every error. */
er_rc camera_next(camera *c, int timeout_ms, camera_frame *out, er_err *err);
void camera_frame_free(camera_frame *f); /* frees data and zeroes *f; NULL is fine */

/* Thread-safe: makes a camera_next blocked in another thread return ER_AGAIN at once, or the
 * next camera_next if none is waiting (so a stop cannot slip in just before the wait). */
void camera_wake(camera *c);

/* Stops the pipeline (NULL state) and starts it again, after an end of stream or an error (the
 * caller's backoff decides when). Pending frames and the old error are discarded; seq and the
 * counters carry on; restarts counts it. Errors as camera_create's start. Consumer thread only. */
er_rc camera_restart(camera *c, er_err *err);

void camera_stats_get(const camera *c, camera_stats *out); /* thread-safe */

/* The pipeline as run (with the appsink appended), for logs and /api/v1/sources; borrowed for
 * the camera's life. */
const char *camera_describe(const camera *c);

void camera_destroy(camera *c); /* NULL ok; stops the pipeline (NULL state) and frees */

#endif
