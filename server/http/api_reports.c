/* api_reports.c: reports for supervisors and coaching: the summary of a time range and one
 * staff member's activity. Strict query parameters and from/to as the exports read them (a bare
 * date is that day's start in CASETRAIL_TIMEZONE, to exclusive): docs/DECISIONS.md#reports. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "casetrail/cursor.h"
#include "casetrail/reports.h"

/* Reports are for oversight: supervisors, QA and admins. mine lets an agent read their own. */
static bool may_report(struct ct_req *req, bool mine)
{
    enum ct_role r = req->user.role;
    if (r == CT_ROLE_SUPERVISOR || r == CT_ROLE_QA || r == CT_ROLE_ADMIN || mine)
        return true;
    ct_http_fail(req, CT_E_FORBIDDEN, "forbidden",
                 "reports are for supervisors, QA and admins; an agent may read their own"
                 " activity");
    return false;
}

static bool valid_number(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 32 && strspn(s, "0123456789") == n;
}

/* The query as given; both ends are required, since an open range would be every record. */
struct range_query {
    const char *from, *to, *phone_number_id;
};

#define F(m) offsetof(struct range_query, m)
static const struct ct_query_field range_fields[] = {
    {"from", CT_Q_TEXT, F(from), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("from")},
    {"to", CT_Q_TEXT, F(to), ct_http_valid_when, "invalid_time", CT_HTTP_TIME_MESSAGE("to")},
    {"phone_number_id", CT_Q_TEXT, F(phone_number_id), valid_number, "invalid_phone_number_id",
     "phone_number_id must be a business phone number id (digits)"},
};
#undef F
#define NRANGE (sizeof(range_fields) / sizeof(range_fields[0]))

/* The filters as asked, for the access log, with the zone that gave bare dates their meaning
 * and, for activity, whose. Returns malloc'd JSON text, NULL when out of memory. */
static char *filters_json(const struct range_query *q, const char *agent, const char *zone)
{
    cJSON *o = cJSON_CreateObject();
    if (agent != NULL)
        cJSON_AddStringToObject(o, "agent", agent);
    cJSON_AddStringToObject(o, "from", q->from);
    cJSON_AddStringToObject(o, "to", q->to);
    if (q->phone_number_id != NULL)
        cJSON_AddStringToObject(o, "phone_number_id", q->phone_number_id);
    cJSON_AddStringToObject(o, "timezone", zone);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Decodes from, to (both required) and the others of fields[0..n); false after answering 400. */
static bool read_range(struct ct_req *req, size_t n, struct range_query *q,
                       char (*bufs)[CT_QUERY_BUF])
{
    memset(q, 0, sizeof(*q));
    if (!ct_http_query_filters(req, range_fields, n, q, bufs))
        return false;
    if (q->from == NULL || q->to == NULL) {
        ct_http_fail(req, CT_E_INVALID, "range_required",
                     "from and to are required (YYYY-MM-DD or ISO 8601; to is exclusive)");
        return false;
    }
    return true;
}

/* GET /api/reports/summary?from=&to=[&phone_number_id=] */
void ct_api_report_summary(struct ct_req *req)
{
    static const char *const allowed[] = {"from", "to", "phone_number_id", NULL};
    char bufs[NRANGE][CT_QUERY_BUF], from[CT_QUERY_BUF], to[CT_QUERY_BUF];
    struct range_query q;
    struct ct_err err;
    cJSON *out = NULL;

    if (!may_report(req, false) || !ct_http_only_params(req, allowed) ||
        !read_range(req, NRANGE, &q, bufs))
        return;
    char *filters = filters_json(&q, NULL, req->srv->cfg.timezone);
    if (filters == NULL) {
        ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        return;
    }
    struct ct_report_range r = {q.from, q.to, q.phone_number_id};
    ct_http_zone_time(&r.from, from);
    ct_http_zone_time(&r.to, to);
    if (ct_reports_summary(req->srv->pool, &req->user, req->srv->cfg.timezone, &r, filters, &out,
                           &err) != CT_OK)
        ct_http_send_error(req, &err);
    else
        ct_http_send_json(req, 200, out);
    cJSON_Delete(out);
    free(filters);
}

/* GET /api/agents/{name}/activity?from=&to=[&limit=&cursor=] */
void ct_api_agent_activity(struct ct_req *req)
{
    static const char *const allowed[] = {"from", "to", "limit", "cursor", NULL};
    char bufs[NRANGE][CT_QUERY_BUF], from[CT_QUERY_BUF], to[CT_QUERY_BUF], cursor[CT_QUERY_BUF],
        next[CT_CURSOR_MAX];
    const char *name = req->params[0];
    struct range_query q;
    struct ct_at_cursor c = {0};
    struct ct_err err;
    cJSON *items = NULL;
    int limit;

    if (!ct_http_valid_user_name(name)) {
        ct_http_fail(req, CT_E_NOT_FOUND, "user_not_found", "no such user");
        return;
    }
    if (!may_report(req, strcmp(name, req->user.name) == 0) ||
        !ct_http_only_params(req, allowed) || !ct_http_query_limit(req, &limit) ||
        !read_range(req, 2, &q, bufs)) /* from and to: phone_number_id is the summary's */
        return;
    if (ct_http_cursor_param(req, cursor) && !ct_cursor_at_decode('v', cursor, &c)) {
        ct_http_bad_cursor(req);
        return;
    }
    char *filters = filters_json(&q, name, req->srv->cfg.timezone);
    if (filters == NULL) {
        ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        return;
    }
    struct ct_report_range r = {q.from, q.to, NULL};
    ct_http_zone_time(&r.from, from);
    ct_http_zone_time(&r.to, to);
    if (ct_reports_activity(req->srv->pool, &req->user, req->srv->cfg.timezone, name, &r, limit,
                            &c, filters, &items, next, &err) != CT_OK) {
        ct_http_send_error(req, &err);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "user", name);
        cJSON_AddItemToObject(root, "events", items);
        ct_http_send_page(req, root, next);
    }
    free(filters);
}
