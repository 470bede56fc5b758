/* query.c: list filters decoded from a table of query parameters, list cursors, and the strict
 * parameters and from/to ranges that exports and reports share. */
#include <stdio.h>
#include <string.h>

#include <civetweb.h>

#include "casetrail/http.h"
#include "casetrail/text.h"

/* ---- strict parameters and time ranges (exports, reports) ---- */

/* Refuses (400) a parameter this endpoint does not take, and one given twice. Names compare
 * byte for byte: civetweb finds values by a case-insensitive, undecoded name, so "Format" or
 * "form%61t" would otherwise be a filter silently applied or silently dropped, and an export
 * with a dropped filter hands out more than was asked for. */
bool ct_http_only_params(struct ct_req *req, const char *const *allowed)
{
    const char *q = req->query;
    char seen[16][24];
    int nseen = 0;

    while (q != NULL && *q != '\0') {
        size_t n = strcspn(q, "&"), name = strcspn(q, "=&");
        bool known = false, twice = false;
        if (name > 0) {
            for (const char *const *a = allowed; *a != NULL && !known; a++)
                known = strlen(*a) == name && memcmp(*a, q, name) == 0;
            for (int i = 0; i < nseen && known && !twice; i++)
                twice = strlen(seen[i]) == name && memcmp(seen[i], q, name) == 0;
            if (!known || twice) {
                ct_http_fail(req, CT_E_INVALID,
                             !known ? "unknown_parameter" : "duplicate_parameter",
                             !known ? "unknown query parameter \"%.*s\""
                                    : "query parameter \"%.*s\" is given twice",
                             (int)(name < 40 ? name : 40), q);
                return false;
            }
            if (nseen < 16 && name < sizeof(seen[0]))
                snprintf(seen[nseen++], sizeof(seen[0]), "%.*s", (int)name, q);
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return true;
}

bool ct_http_valid_when(const char *s)
{
    char out[CT_QUERY_BUF];
    return ct_text_parse_when(s, out, sizeof(out));
}

/* A valid from/to as PostgreSQL should read it: a bare date stays bare, so the export's
 * transaction (ct_store_use_zone) reads it as that day's midnight in CASETRAIL_TIMEZONE; a full
 * timestamp is rewritten with its own offset. *v points into buf. */
void ct_http_zone_time(const char **v, char buf[CT_QUERY_BUF])
{
    char raw[CT_QUERY_BUF];
    if (*v == NULL || strlen(*v) == 10)
        return;
    snprintf(raw, sizeof(raw), "%s", *v);
    ct_text_parse_when(raw, buf, CT_QUERY_BUF);
    *v = buf;
}

/* A staff member's name as users.name allows it. */
bool ct_http_valid_user_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CT_USER_NAME_MAX || strchr("._@-", s[0]) != NULL)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") == n;
}

ct_rc ct_query_decode(const char *query, const struct ct_query_field *fields, size_t n,
                      void *filter, char (*bufs)[CT_QUERY_BUF], struct ct_err *err)
{
    char raw[CT_QUERY_BUF];
    for (size_t i = 0; i < n; i++) {
        const struct ct_query_field *f = &fields[i];
        char *member = (char *)filter + f->offset;
        bool ok = true;

        if (query == NULL || mg_get_var(query, strlen(query), f->name, raw, sizeof(raw)) < 0 ||
            raw[0] == '\0')
            continue;
        switch (f->type) {
        case CT_Q_TEXT:
            ok = f->valid == NULL || f->valid(raw);
            memcpy(bufs[i], raw, sizeof(raw));
            memcpy(member, &(const char *){bufs[i]}, sizeof(const char *));
            break;
        case CT_Q_BOOL:
            ok = strcmp(raw, "true") == 0 || strcmp(raw, "false") == 0;
            memcpy(member, &(int){strcmp(raw, "true") == 0}, sizeof(int));
            break;
        case CT_Q_TIME:
            ok = ct_text_parse_when(raw, bufs[i], CT_QUERY_BUF);
            memcpy(member, &(const char *){bufs[i]}, sizeof(const char *));
            break;
        }
        if (!ok)
            return ct_err_set(err, CT_E_INVALID, f->code, "%s", f->message);
    }
    return CT_OK;
}

bool ct_http_query_filters(struct ct_req *req, const struct ct_query_field *fields, size_t n,
                           void *filter, char (*bufs)[CT_QUERY_BUF])
{
    struct ct_err err;
    if (ct_query_decode(req->query, fields, n, filter, bufs, &err) == CT_OK)
        return true;
    ct_http_send_error(req, &err);
    return false;
}

bool ct_http_cursor_param(const struct ct_req *req, char buf[CT_QUERY_BUF])
{
    return ct_http_query(req, "cursor", buf, CT_QUERY_BUF) && buf[0] != '\0';
}

void ct_http_bad_cursor(struct ct_req *req)
{
    ct_http_fail(req, CT_E_INVALID, "invalid_cursor", "cursor is not one this API returned");
}
