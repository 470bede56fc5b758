/* err.h: one return-code type and one error record shared by every module.
 * A failing function fills a struct ct_err (machine code + human message) and returns its rc. */
#ifndef CASETRAIL_ERR_H
#define CASETRAIL_ERR_H

#include <stdbool.h>

typedef enum {
    CT_OK = 0,
    CT_E_INVALID,      /* 400: malformed or badly typed input */
    CT_E_UNAUTHORIZED, /* 401 */
    CT_E_FORBIDDEN,    /* 403 */
    CT_E_NOT_FOUND,    /* 404 */
    CT_E_CONFLICT,     /* 409 */
    CT_E_TOO_LARGE,    /* 413 */
    CT_E_UNPROCESSABLE,/* 422 */
    CT_E_UNAVAILABLE,  /* 503: the database could not be reached */
    CT_E_INTERNAL,     /* 500 */
    CT_E_TIMEOUT,      /* 408: the client did not send its request in time */
    CT_E_TOO_MANY      /* 429: slow down; retry_after_s says for how long */
} ct_rc;

struct ct_err {
    ct_rc rc;
    char code[48];     /* stable machine code, e.g. "invalid_transition" */
    char message[320]; /* lower case, no final period; never holds a secret */
    /* The same work may succeed if run again (serialization failure, deadlock): the
     * transaction helper retries, and once retries are exhausted the client gets 503 busy with
     * Retry-After, since it did not cause the conflict. (A lock or statement timeout is a 503
     * at once: waiting longer inside the request would only hold a worker.) */
    bool retryable;
    char sqlstate[6];  /* the database's SQLSTATE when the failure came from it, else "" */
    int retry_after_s; /* with CT_E_TOO_MANY: seconds before trying again is worth it */
};

/* Fills err (when non-NULL) and returns rc, so callers can write `return ct_err_set(...)`.
 * Clears retryable and sqlstate: a new error says nothing about the last one's cause. */
ct_rc ct_err_set(struct ct_err *err, ct_rc rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* HTTP status for an rc (200 for CT_OK). */
int ct_err_http_status(ct_rc rc);

#endif
