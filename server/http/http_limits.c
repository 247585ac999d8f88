/* http_limits.c - the HTTP server's request rate limit and failed-authentication slow-down
 * (http_internal.h), both on core/ratelimit tables and both answered 429 with Retry-After:
 *   - every request takes one token from the bucket of its bearer token once that token is
 *     known to be valid, or else from the bucket of its client address (rate_limit_per_s,
 *     rate_limit_burst);
 *   - a failed authentication counts against the client address in the table shared with the
 *     live stream; past auth_fail_free failures the address is refused, whatever token it
 *     sends, until the block (doubling with each failure) is over.
 * Nothing here waits: a refused request is answered at once, so a client hammering the API
 * holds no libmicrohttpd thread. Loopback clients are exempt unless rate_limit_loopback. */
#include "core/log.h"
#include "http/http_internal.h"

er_rc http_limits_create(http_server *s, er_err *err)
{
    const config *cfg = s->deps.cfg;
    ratelimit_opts o = {
        .slots = RATELIMIT_SLOTS, .per_s = cfg->rate_limit_per_s, .burst = cfg->rate_limit_burst};
    s->auth_fails = s->deps.auth_fails;
    if (ratelimit_create(&o, &s->requests) != ER_OK)
        return er_fail(err, ER_NOMEM, "http: out of memory for the rate-limit table");
    return ER_OK;
}

void http_limits_peer(http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    bool loopback = false;
    bool known = ci && ratelimit_key_addr(ci->client_addr, &r->peer, &loopback);
    r->limited = known && (!loopback || r->srv->deps.cfg->rate_limit_loopback);
}

bool http_limits_blocked(http_req *r, enum MHD_Result *ret)
{
    if (!r->limited || !r->srv->auth_fails) return false;
    if (!ratelimit_blocked(r->srv->auth_fails, &r->peer, util_mono_ms(), &r->retry_ms))
        return false;
    *ret = http_reply_error(r, 429, "too_many_requests",
                            "too many failed authentications from this address "
                            "(auth_fail_free %d); retry in %lld s",
                            r->srv->deps.cfg->auth_fail_free, ratelimit_retry_s(r->retry_ms));
    return true;
}

void http_limits_auth(http_req *r, bool ok)
{
    if (!r->limited || !r->srv->auth_fails) return;
    if (ok) {
        ratelimit_succeeded(r->srv->auth_fails, &r->peer);
        return;
    }
    int64_t block = ratelimit_failed(r->srv->auth_fails, &r->peer, util_mono_ms());
    if (block)
        log_ratelimited(LOG_WARN, "http", "auth-fail",
                        "failed authentications from one address: refusing it for %lld ms",
                        (long long)block);
}

bool http_limits_take(http_req *r, const char *authorization, enum MHD_Result *ret)
{
    http_server *s = r->srv;
    if (!r->limited) return true;
    ratelimit_key key = r->peer;
    const char *token;
    size_t len;
    bool by_token = r->role != AUTH_NONE && auth_bearer(authorization, &token, &len);
    if (by_token) ratelimit_key_token(s->requests, token, len, &key);
    if (ratelimit_take(s->requests, &key, util_mono_ms(), &r->retry_ms)) return true;
    *ret = http_reply_error(r, 429, "too_many_requests",
                            "more than rate_limit_per_s %d requests per second (burst "
                            "rate_limit_burst %d) from this %s; retry in %lld s",
                            s->deps.cfg->rate_limit_per_s, s->deps.cfg->rate_limit_burst,
                            by_token ? "token" : "address", ratelimit_retry_s(r->retry_ms));
    return false;
}
