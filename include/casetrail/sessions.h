/* sessions.h: staff sign-in to the viewer. A name and password buy a session cookie (a random
 * token whose SHA-256 alone is stored); failed attempts are limited per name and per client
 * address; a session ends when idle, too old, signed out, or its user changes. */
#ifndef CASETRAIL_SESSIONS_H
#define CASETRAIL_SESSIONS_H

#include <stddef.h>

#include "casetrail/auth.h"
#include "casetrail/err.h"
#include "casetrail/model.h"

struct ct_pool;

/* Failed sign-ins allowed within the window before 429: per name, per client address. */
#define CT_SIGN_IN_MAX_NAME 5
#define CT_SIGN_IN_MAX_ADDRESS 20
#define CT_SIGN_IN_WINDOW_S 900

#define CT_SESSION_COOKIE "casetrail_session"
/* Sent by the viewer with every change; a cross-site form cannot add a header. */
#define CT_CSRF_HEADER "X-Casetrail-CSRF"

struct ct_sign_in {
    const char *name;
    const char *password;
    size_t password_len;
    const char *address;    /* the client's address, for the limit and the session row */
    const char *user_agent; /* may be NULL */
};

/* Checks the limit, then the password; on success writes the new session's cookie value into
 * token and its user into user. Wrong name, wrong password, no password set and a deactivated
 * user all answer the same 401 bad_credentials (and count as a failure); over the limit is
 * CT_E_TOO_MANY too_many_attempts with err->retry_after_s. */
ct_rc ct_sessions_sign_in(struct ct_pool *pool, const struct ct_sign_in *in,
                          char token[CT_TOKEN_LEN + 1], struct ct_user *user, struct ct_err *err);
/* The user behind a session cookie value, or CT_E_UNAUTHORIZED when it is not a live session
 * (see ct_store_session_user for what ends one). */
ct_rc ct_sessions_resolve(struct ct_pool *pool, const char *token, int idle_min, int max_h,
                          struct ct_user *user, struct ct_err *err);
/* Ends the session (sign-out). */
ct_rc ct_sessions_end(struct ct_pool *pool, const char *token, struct ct_err *err);

#endif
