/* api.h: request handlers, one per route (internal to the server; see router.c for the table). */
#ifndef CASETRAIL_API_H
#define CASETRAIL_API_H

#include "casetrail/http.h"
#include "casetrail/store.h"

void ct_api_healthz(struct ct_req *req);
void ct_api_readyz(struct ct_req *req);
void ct_api_metrics(struct ct_req *req);
void ct_api_me(struct ct_req *req);
void ct_api_session_create(struct ct_req *req);
void ct_api_session_delete(struct ct_req *req);
void ct_api_users_list(struct ct_req *req);
void ct_api_live(struct ct_req *req);
void ct_api_ticket_evidence(struct ct_req *req);
void ct_api_webhook_verify(struct ct_req *req);
void ct_api_webhook_receive(struct ct_req *req);
void ct_api_webhook_rejects(struct ct_req *req);
void ct_api_tickets_list(struct ct_req *req);
void ct_api_ticket_get(struct ct_req *req);
void ct_api_ticket_timeline(struct ct_req *req);
void ct_api_ticket_verify(struct ct_req *req);
void ct_api_ticket_assign(struct ct_req *req);
void ct_api_ticket_unassign(struct ct_req *req);
void ct_api_ticket_status(struct ct_req *req);
void ct_api_ticket_escalate(struct ct_req *req);
void ct_api_ticket_deescalate(struct ct_req *req);
void ct_api_ticket_priority(struct ct_req *req);
void ct_api_ticket_note(struct ct_req *req);
void ct_api_ticket_reply(struct ct_req *req);
void ct_api_ticket_template(struct ct_req *req);
void ct_api_ticket_media(struct ct_req *req);
void ct_api_media_get(struct ct_req *req);
void ct_api_approval_request(struct ct_req *req);
void ct_api_approval_decide(struct ct_req *req);
void ct_api_approvals_list(struct ct_req *req); /* api_exports.c, like the two below */
void ct_api_events_list(struct ct_req *req);
void ct_api_access_log(struct ct_req *req);
void ct_api_report_summary(struct ct_req *req); /* api_reports.c, like the one below */
void ct_api_agent_activity(struct ct_req *req);
void ct_api_rules_get(struct ct_req *req);
void ct_api_rules_put(struct ct_req *req);

#endif
