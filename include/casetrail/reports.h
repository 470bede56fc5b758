/* reports.h: reports for supervisors and coaching (issue 14): a summary of a time range and one
 * staff member's activity. Each read runs in one snapshot with days in CASETRAIL_TIMEZONE and is
 * recorded in the access log in the same transaction, so no report is handed out unrecorded
 * (docs/DECISIONS.md#reports). */
#ifndef CASETRAIL_REPORTS_H
#define CASETRAIL_REPORTS_H

#include <cjson/cJSON.h>

#include "casetrail/err.h"
#include "casetrail/model.h"
#include "casetrail/store_reports.h"

struct ct_pool;

/* What the access log calls each read. */
#define CT_ACCESS_REPORT_SUMMARY "report.summary"
#define CT_ACCESS_AGENT_ACTIVITY "agent.activity"

/* The summary of r for who; filters_json (the filters as asked) goes to the access log. *out is
 * the caller's. CT_E_INVALID for a reversed or too long range. */
ct_rc ct_reports_summary(struct ct_pool *pool, const struct ct_user *who, const char *zone,
                         const struct ct_report_range *r, const char *filters_json, cJSON **out,
                         struct ct_err *err);

/* One page of the named staff member's activity in r. CT_E_NOT_FOUND (user_not_found) for an
 * unknown name. *out is the caller's. */
ct_rc ct_reports_activity(struct ct_pool *pool, const struct ct_user *who, const char *zone,
                          const char *name, const struct ct_report_range *r, int limit,
                          const struct ct_at_cursor *cursor, const char *filters_json,
                          cJSON **out, char next_cursor[CT_CURSOR_MAX], struct ct_err *err);

#endif
