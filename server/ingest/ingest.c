/* ingest.c - one request body to a validated inference: picks the parser by Content-Type,
 * pulls the JSON document and the image out of a multipart body, and has every image probed.
 *
 * Ownership: the body stays the caller's; on success *out is a new inference the caller owns
 * (its image bytes are copied out of the body). On failure *out is NULL. */
#include "ingest/ingest.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/multipart.h"
#include "media/image.h"

#define INGEST_PARTS_MAX 64

/* The media type of a Content-Type value (before any ';' parameter), trimmed. */
static bool media_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, type, n) != 0) return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static bool part_named(const multipart_part *p, const char *name)
{
    return p->name && p->name_len == strlen(name) && memcmp(p->name, name, p->name_len) == 0;
}

/* True when the part's Content-Type starts with prefix (case-insensitive). */
static bool part_type_has(const multipart_part *p, const char *prefix)
{
    size_t n = strlen(prefix);
    return p->content_type && p->content_type_len >= n &&
           strncasecmp(p->content_type, prefix, n) == 0;
}

/* Finds the document part and the image part; names win over types. */
static er_rc pick_parts(const char *ct, const uint8_t *body, size_t len, multipart_part *doc,
                        multipart_part *img, bool *has_img, er_err *err)
{
    er_rc rc = ER_OK;
    char boundary[MULTIPART_BOUNDARY_MAX + 1];
    multipart_part p;
    size_t pos = 0;
    bool doc_by_name = false, img_by_name = false, has_doc = false;
    *has_img = false;
    if ((rc = multipart_boundary(ct, boundary))) {
        rc = er_fail(err, ER_INVALID,
                     "multipart/form-data needs a boundary parameter of 1..%d "
                     "characters",
                     MULTIPART_BOUNDARY_MAX);
        goto fail;
    }
    for (int n = 0;; n++) {
        rc = multipart_next(body, len, boundary, &pos, &p);
        if (rc == ER_NOTFOUND) break;
        if (rc) {
            rc = er_fail(err, ER_INVALID, "malformed multipart body (part %d)", n + 1);
            goto fail;
        }
        if (n >= INGEST_PARTS_MAX) {
            rc = er_fail(err, ER_INVALID, "more than %d multipart parts", INGEST_PARTS_MAX);
            goto fail;
        }
        if (!doc_by_name && (part_named(&p, "json") || part_named(&p, "inference"))) {
            *doc = p;
            has_doc = doc_by_name = true;
        } else if (!has_doc && part_type_has(&p, "application/json")) {
            *doc = p;
            has_doc = true;
        } else if (!img_by_name && part_named(&p, "image")) {
            *img = p;
            *has_img = img_by_name = true;
        } else if (!*has_img && part_type_has(&p, "image/")) {
            *img = p;
            *has_img = true;
        }
    }
    rc = ER_OK;
    if (!has_doc)
        rc = er_fail(err, ER_SHAPE,
                     "multipart body has no JSON part (name it \"json\" or send "
                     "it as application/json)");
fail:
    return rc;
}

er_rc ingest_parse(const char *content_type, const uint8_t *body, size_t len,
                   const normalize_opts *o, inference **out, er_err *err)
{
    er_rc rc = ER_OK;
    inference *inf = NULL;
    multipart_part doc = {0}, img = {0};
    bool has_img = false;
    *out = NULL;
    if (!content_type || media_type_is(content_type, "application/json")) {
        rc = normalize_json((const char *)body, len, o, &inf, err);
        if (rc) goto fail;
    } else if (media_type_is(content_type, "multipart/form-data")) {
        if ((rc = pick_parts(content_type, body, len, &doc, &img, &has_img, err))) goto fail;
        if ((rc = normalize_json((const char *)doc.data, doc.len, o, &inf, err))) goto fail;
        if (has_img && img.len > 0) { /* browsers send an empty part when no file was chosen */
            uint8_t *copy;
            if (o->max_image_bytes && img.len > o->max_image_bytes) {
                rc = er_fail(err, ER_TOOBIG, "image is larger than %zu bytes", o->max_image_bytes);
                goto fail;
            }
            copy = malloc(img.len);
            if (!copy) {
                rc = er_fail(err, ER_NOMEM, "out of memory");
                goto fail;
            }
            memcpy(copy, img.data, img.len);
            free(inf->image.data);
            inf->image.data = copy;
            inf->image.len = img.len;
        }
    } else {
        rc = er_fail(err, ER_UNSUPPORTED,
                     "unsupported Content-Type %.64s; send application/json or "
                     "multipart/form-data",
                     content_type);
        goto fail;
    }
    if (inf->image.data) {
        er_err probe_err;
        if ((rc = media_probe(inf->image.data, inf->image.len, &inf->image, &probe_err))) {
            er_fail(err, rc, "%s", probe_err.msg);
            goto fail;
        }
    }
    *out = inf;
    inf = NULL;
fail:
    inference_destroy(inf);
    return rc;
}
