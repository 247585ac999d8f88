/* static_files.c - the dashboard's files from cfg->web_root. The path is checked lexically
 * (http_static_path_safe) and then by realpath, so neither ".." nor a symlink can leave the
 * root; only regular files are served, straight from their descriptor. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "http/http_internal.h"

static const char builtin_page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>ei-relay</title></head>\n<body>\n<h1>ei-relay</h1>\n"
    "<p>The dashboard is not installed (no index.html in web_root).</p>\n"
    "<p>The service is running: see <a href=\"/api/v1/health\">/api/v1/health</a> and the REST "
    "API under <code>/api/v1/</code>.</p>\n</body></html>\n";

static enum MHD_Result reply_builtin(http_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof builtin_page - 1, (void *)builtin_page, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    }
    return http_reply(r, 200, resp);
}

static enum MHD_Result not_found(http_req *r)
{
    return http_reply_error(r, 404, "not_found", "no such resource: %s", r->path);
}

enum MHD_Result http_static(http_req *r)
{
    const char *root = r->srv->deps.cfg->web_root;
    bool is_index = strcmp(r->path, "/") == 0;
    int fd = -1;
    if (!http_static_path_safe(r->path)) return not_found(r);
    if (!root || !*root) return is_index ? reply_builtin(r) : not_found(r);

    char root_real[PATH_MAX], want[PATH_MAX], file_real[PATH_MAX];
    if (!realpath(root, root_real)) {
        if (is_index) return reply_builtin(r);
        return not_found(r);
    }
    int n = snprintf(want, sizeof want, "%s%s", root_real, is_index ? "/index.html" : r->path);
    if (n < 0 || (size_t)n >= sizeof want) return not_found(r);
    if (!realpath(want, file_real)) return is_index ? reply_builtin(r) : not_found(r);
    /* The resolved file must still be inside the resolved root (symlinks resolved). */
    size_t rl = strlen(root_real);
    bool inside = strncmp(file_real, root_real, rl) == 0 &&
                  (file_real[rl] == '/' || (rl == 1 && root_real[0] == '/'));
    if (!inside) {
        log_info("http", "%s %s: resolves outside web_root, refused", r->method, r->path);
        return not_found(r);
    }
    fd = open(file_real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return is_index ? reply_builtin(r) : not_found(r);
    }
    /* A validator from size and modification time: an unchanged file costs a 304. */
    char etag[64];
    snprintf(etag, sizeof etag, "W/\"%llx-%llx%09ld\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        close(fd);
        struct MHD_Response *nm = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!nm) return http_reply(r, 500, NULL);
        MHD_add_response_header(nm, "ETag", etag);
        MHD_add_response_header(nm, "Cache-Control", http_static_cache_control(file_real));
        return http_reply(r, 304, nm);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return http_reply(r, 200, NULL);
    }
    /* fd now belongs to the response */
    MHD_add_response_header(resp, "Content-Type", http_static_mime(file_real));
    MHD_add_response_header(resp, "Cache-Control", http_static_cache_control(file_real));
    MHD_add_response_header(resp, "ETag", etag);
    return http_reply(r, 200, resp);
}
