/* query.c: list filters decoded from a table of query parameters, and list cursors. */
#include <string.h>

#include <civetweb.h>

#include "casetrail/http.h"
#include "casetrail/text.h"

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
