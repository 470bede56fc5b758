/* workflow.h: ticket actions by staff, approvals and complaint rules. Each action locks the
 * ticket row, checks the rules in tickets.c, changes the ticket and appends its event in one
 * transaction; concurrent actions on one ticket therefore land in order with gapless seqs. */
#ifndef CASETRAIL_WORKFLOW_H
#define CASETRAIL_WORKFLOW_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "casetrail/err.h"
#include "casetrail/tickets.h"

/* the store's handles, used by pointer only: domain headers do not include store.h */
struct ct_pool;
struct ct_tx;

/* Runs the action as actor on ticket_id after the rules in tickets.c allow it (every rule is
 * checked here, so no caller can skip one). On success *ticket_out is the ticket after the
 * change (caller frees with cJSON_Delete). CT_E_UNAVAILABLE (503) when the database is down or
 * stayed busy through the retries. */
ct_rc ct_workflow_ticket_action(struct ct_pool *pool, const struct ct_user *actor,
                                long long ticket_id, const struct ct_ticket_action *a,
                                cJSON **ticket_out, struct ct_err *err);

/* Records an approval request (event approval.requested). deployment_currency is
 * CASETRAIL_CURRENCY; another currency is CT_E_UNPROCESSABLE naming it. *out: the approval. */
ct_rc ct_workflow_request_approval(struct ct_pool *pool, const struct ct_user *actor,
                                   long long ticket_id, const struct ct_approval_request *r,
                                   const char *deployment_currency, cJSON **out,
                                   struct ct_err *err);

/* Decides a pending approval (event approval.decided) as CT_APPR_APPROVED or CT_APPR_DENIED. */
ct_rc ct_workflow_decide(struct ct_pool *pool, const struct ct_user *actor, long long approval_id,
                         enum ct_approval_status decision, const char *reason, cJSON **out,
                         struct ct_err *err);

/* Replaces the complaint rules (admin); recorded as rules.complaints_replaced on the admin's
 * user chain. rules: array of {"pattern","match"?,"enabled"?} already checked for shape. */
ct_rc ct_workflow_replace_rules(struct ct_pool *pool, const struct ct_user *actor,
                                const cJSON *rules, cJSON **out, struct ct_err *err);

/* Inside an ingest transaction that holds ticket t's row lock: escalates it to level 1 as actor
 * system when text matches a complaint rule, once per ticket until it is de-escalated. */
ct_rc ct_workflow_detect_complaint(struct ct_tx *tx, const struct ct_ticket_ref *t,
                                   const char *text, long long occurred_us, struct ct_err *err);

#endif
