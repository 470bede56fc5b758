/* api.h: request handlers, one per route (internal to the server; see router.c for the table). */
#ifndef CASETRAIL_API_H
#define CASETRAIL_API_H

#include "casetrail/http.h"

void ct_api_healthz(struct ct_req *req);
void ct_api_readyz(struct ct_req *req);
void ct_api_metrics(struct ct_req *req);
void ct_api_me(struct ct_req *req);
void ct_api_webhook_verify(struct ct_req *req);
void ct_api_webhook_receive(struct ct_req *req);
void ct_api_tickets_list(struct ct_req *req);
void ct_api_ticket_get(struct ct_req *req);
void ct_api_ticket_timeline(struct ct_req *req);

#endif
