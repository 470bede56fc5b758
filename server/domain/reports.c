/* reports.c: a report in one snapshot with days in CASETRAIL_TIMEZONE, recorded in the access
 * log in the same transaction, so none is handed out unrecorded (docs/DECISIONS.md#reports). */
#include <stdio.h>
#include <string.h>

#include "casetrail/reports.h"
#include "casetrail/store.h"
#include "casetrail/store_export.h"

struct summary_job {
    const struct ct_user *who;
    const char *zone, *filters_json;
    const struct ct_report_range *r;
    cJSON *out; /* owned until handed to the caller */
};

static ct_rc summary_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct summary_job *j = arg;
    cJSON_Delete(j->out); /* a retried transaction starts over */
    j->out = NULL;
    ct_rc rc = ct_store_report_begin(tx, j->zone, j->r, err);
    if (rc == CT_OK)
        rc = ct_store_report_summary(tx, j->r, &j->out, err);
    if (rc == CT_OK)
        cJSON_AddStringToObject(j->out, "timezone", j->zone);
    /* a summary is one document: one row handed out */
    if (rc == CT_OK)
        rc = ct_store_access_log_add(tx, j->who->id, CT_ACCESS_REPORT_SUMMARY, j->filters_json,
                                     1, true, err);
    return rc;
}

ct_rc ct_reports_summary(struct ct_pool *pool, const struct ct_user *who, const char *zone,
                         const struct ct_report_range *r, const char *filters_json, cJSON **out,
                         struct ct_err *err)
{
    struct summary_job j = {who, zone, filters_json, r, NULL};
    ct_rc rc = ct_store_in_tx(pool, summary_tx, &j, err);
    if (rc != CT_OK) {
        cJSON_Delete(j.out);
        j.out = NULL;
    }
    *out = j.out;
    return rc;
}

struct activity_job {
    const struct ct_user *who;
    const char *zone, *name, *filters_json;
    const struct ct_report_range *r;
    int limit;
    const struct ct_at_cursor *cursor;
    cJSON *out; /* owned until handed to the caller */
    char *next;
};

static ct_rc activity_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct activity_job *j = arg;
    struct ct_user u;
    cJSON_Delete(j->out);
    j->out = NULL;
    ct_rc rc = ct_store_report_begin(tx, j->zone, j->r, err);
    if (rc == CT_OK)
        rc = ct_store_user_by_name(tx, j->name, false, &u, err);
    if (rc == CT_E_NOT_FOUND)
        return ct_err_set(err, CT_E_NOT_FOUND, "user_not_found", "no user named \"%.64s\"",
                          j->name);
    if (rc == CT_OK)
        rc = ct_store_activity_page(tx, u.id, j->r, j->limit, j->cursor, &j->out, j->next, err);
    if (rc == CT_OK)
        rc = ct_store_access_log_add(tx, j->who->id, CT_ACCESS_AGENT_ACTIVITY, j->filters_json,
                                     cJSON_GetArraySize(j->out), true, err);
    return rc;
}

ct_rc ct_reports_activity(struct ct_pool *pool, const struct ct_user *who, const char *zone,
                          const char *name, const struct ct_report_range *r, int limit,
                          const struct ct_at_cursor *cursor, const char *filters_json,
                          cJSON **out, char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct activity_job j = {who, zone, name, filters_json, r, limit, cursor, NULL, next_cursor};
    ct_rc rc = ct_store_in_tx(pool, activity_tx, &j, err);
    if (rc != CT_OK) {
        cJSON_Delete(j.out);
        j.out = NULL;
    }
    *out = j.out;
    return rc;
}
