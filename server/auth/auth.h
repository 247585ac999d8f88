/* auth.h - bearer tokens with roles, checked by the LAN API (http) and the live stream (live).
 * Tokens (CONFIG_TOKEN_MIN..CONFIG_TOKEN_MAX characters) come from configuration and token_file;
 * when none is configured an admin token is generated on first start and stored next to the
 * database with mode 0600 (the log names the file, never the token; `ei-relay token` prints it).
 * Comparison is constant-time. Read-only after creation: any thread may call auth_check. */
#ifndef EI_AUTH_AUTH_H
#define EI_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/rc.h"

typedef enum auth_role {
    AUTH_NONE = 0, /* missing or unknown token */
    AUTH_READ = CONFIG_ROLE_READ,
    AUTH_INGEST = CONFIG_ROLE_INGEST,
    AUTH_ADMIN = CONFIG_ROLE_ADMIN,
} auth_role;

typedef struct auth auth;

er_rc auth_create(const config *cfg, auth **out, er_err *err);
void auth_destroy(auth *a);

/* Role of an "Authorization: Bearer <token>" header value (NULL allowed). */
auth_role auth_check(const auth *a, const char *authorization);
/* The token inside an "Authorization: Bearer <token>" value (borrowed from it, *len bytes, not
 * terminated); false when the value is not of that form. */
bool auth_bearer(const char *authorization, const char **token, size_t *len);
/* Role of a bare token (WebSocket auth message). */
auth_role auth_check_token(const auth *a, const char *token);
/* The first admin token (configured order: tokens, token_file, the generated file), borrowed
 * for a's life; NULL when no token has the admin role. For `ei-relay token`. */
const char *auth_admin_token(const auth *a);
/* The token file this auth_create generated (none was configured and none existed), borrowed
 * for a's life; NULL otherwise. The service shows that token once on its terminal. */
const char *auth_generated_path(const auth *a);
/* read: GET; ingest: POST inferences; admin: everything. */
bool auth_allows(auth_role have, auth_role need);

#endif
