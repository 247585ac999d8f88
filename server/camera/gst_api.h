/* gst_api.h - the table of functions of the GStreamer module (ei-relay-gst.so, built from
 * server/camera/gst/), loaded by camera/camera.c on the first camera_create (core/module.h says
 * where it is looked for). Only server/camera includes this header: the rest of the relay calls
 * camera/camera.h, whose functions forward here. Each entry is the camera.h function of the same
 * name. CAMERA_GST_ABI changes whenever a signature below or camera.h's structs do. */
#ifndef EI_CAMERA_GST_API_H
#define EI_CAMERA_GST_API_H

#include "camera/camera.h"

#define CAMERA_GST_FILE "ei-relay-gst.so"
#define CAMERA_GST_SYMBOL "ei_relay_gst_api"
#define CAMERA_GST_ABI 1u

typedef struct camera_gst_api {
    er_rc (*create)(const camera_opts *o, camera **out, er_err *err);
    er_rc (*next)(camera *c, int timeout_ms, camera_frame *out, er_err *err);
    void (*wake)(camera *c);
    er_rc (*restart)(camera *c, er_err *err);
    void (*stats_get)(const camera *c, camera_stats *out);
    const char *(*describe)(const camera *c);
    void (*destroy)(camera *c);
} camera_gst_api;

/* The module's one exported symbol: its table for CAMERA_GST_ABI, else NULL. */
const void *ei_relay_gst_api(unsigned abi);

#endif
