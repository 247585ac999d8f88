/* module.c - see module.h. */
#include "core/module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef EI_MODULE_INSTALL_DIR
#define EI_MODULE_INSTALL_DIR "/usr/lib/ei-relay"
#endif

/* The directory of the running binary into dir (empty when /proc is not there). */
static void exe_dir(char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    dir[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';
}

typedef const void *(*module_entry)(unsigned abi);

er_rc module_load(const char *file, const char *symbol, unsigned abi, const void **api, er_err *err)
{
    er_rc rc = ER_NOTFOUND;
    char self[PATH_MAX], path[PATH_MAX + 64], looked[600] = "";
    const char *env = getenv("EI_MODULE_DIR");
    exe_dir(self, sizeof self);
    const char *dirs[] = {env && env[0] ? env : NULL, self[0] ? self : NULL, EI_MODULE_INSTALL_DIR};
    void *h = NULL;
    *api = NULL;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && rc == ER_NOTFOUND; i++) {
        if (!dirs[i]) continue;
        snprintf(path, sizeof path, "%s/%s", dirs[i], file);
        size_t used = strlen(looked);
        snprintf(looked + used, sizeof looked - used, "%s%s", used ? ", " : "", dirs[i]);
        if (access(path, F_OK) != 0) continue;
        /* RTLD_LOCAL: the module's libraries stay out of the global namespace. */
        if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
            const char *why = dlerror();
            rc = er_fail(err, ER_IO, "cannot load %s: %.180s", path, why ? why : "unknown");
            goto fail;
        }
        module_entry entry;
        *(void **)&entry = dlsym(h, symbol); /* POSIX's way to a function pointer */
        if (!entry) {
            rc = er_fail(err, ER_IO, "%s is not an ei-relay module (no %s)", path, symbol);
            goto fail;
        }
        if (!(*api = entry(abi))) {
            rc = er_fail(err, ER_IO, "%s is from another ei-relay version (interface %u wanted)",
                         path, abi);
            goto fail;
        }
        rc = ER_OK;
    }
    if (rc == ER_NOTFOUND)
        er_fail(err, ER_NOTFOUND, "%s is not installed (looked in %s)", file, looked);
fail:
    if (rc && h) dlclose(h);
    return rc;
}
