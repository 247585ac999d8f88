/* camera_internal.h - shared between server/camera's files only (no other module includes it):
 * the pipeline description built for a V4L2 device, and the Debian package of an element. */
#ifndef EI_CAMERA_CAMERA_INTERNAL_H
#define EI_CAMERA_CAMERA_INTERNAL_H

#include "camera/camera.h"

/* The name the module gives its appsink inside the pipeline. */
#define CAMERA__SINK_NAME "eirelay_camera_sink"

/* The description of the V4L2 pipeline for o (o->pipeline unset): o->device checked to be a
 * V4L2 capture device, or the first one found. *out is malloc'd (the caller frees it).
 * ER_IO: no camera, or the device is missing or not a capture device; ER_CONFIG: a size out of
 * range or a device path that cannot be quoted; ER_NOMEM. */
er_rc camera__device_pipeline(const camera_opts *o, char **out, er_err *err);

/* The Debian package that provides a GStreamer element (static string), or NULL when unknown. */
const char *camera__package_of(const char *element);

#endif
