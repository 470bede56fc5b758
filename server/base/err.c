/* err.c: filling struct ct_err and mapping rc values to HTTP statuses. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "casetrail/err.h"

ct_rc ct_err_set(struct ct_err *err, ct_rc rc, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return rc;
    err->rc = rc;
    err->retryable = false;
    err->sqlstate[0] = '\0';
    err->retry_after_s = 0;
    snprintf(err->code, sizeof(err->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return rc;
}

int ct_err_http_status(ct_rc rc)
{
    static const int status[] = {
        [CT_OK] = 200,           [CT_E_INVALID] = 400,    [CT_E_UNAUTHORIZED] = 401,
        [CT_E_FORBIDDEN] = 403,  [CT_E_NOT_FOUND] = 404,  [CT_E_CONFLICT] = 409,
        [CT_E_TOO_LARGE] = 413,  [CT_E_UNPROCESSABLE] = 422,
        [CT_E_UNAVAILABLE] = 503, [CT_E_INTERNAL] = 500,  [CT_E_TIMEOUT] = 408,
        [CT_E_TOO_MANY] = 429,
    };
    if ((unsigned)rc >= sizeof(status) / sizeof(status[0]))
        return 500;
    return status[rc];
}
