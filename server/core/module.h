/* module.h - the optional parts of ei-relay that link big libraries (libvips, GStreamer) are
 * shared modules (ei-relay-vips.so, ei-relay-gst.so) loaded with dlopen on first use, so a relay
 * that never touches an image or a camera never maps those libraries (about 130 of them for
 * Debian's libvips) and stays small at idle.
 *
 * A module exports one function, `const void *<symbol>(unsigned abi)`, that returns its table of
 * function pointers when abi is the version its header was built with (else NULL). Where it is
 * looked for, first hit wins:
 *   1. $EI_MODULE_DIR, when set (the test builds point it at the build tree);
 *   2. the directory of the running binary (/proc/self/exe: a build tree, a copy with its modules);
 *   3. EI_MODULE_INSTALL_DIR, the installed location (CMake: <libdir>/ei-relay).
 * Modules are never unloaded. */
#ifndef EI_CORE_MODULE_H
#define EI_CORE_MODULE_H

#include "core/rc.h"

/* Opens file (a bare file name, e.g. "ei-relay-vips.so") from the places above and returns its
 * table in *api. ER_NOTFOUND: in none of them; ER_IO: found but dlopen failed (a broken file or a
 * missing library; dlerror's text), or the symbol is missing, or abi does not match. err names
 * the file and the places looked in. Thread-safe; callers keep the table (load once). */
er_rc module_load(const char *file, const char *symbol, unsigned abi, const void **api,
                  er_err *err);

#endif
