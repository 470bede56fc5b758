/* tickets.h: ticket domain rules: the status transition table, who may act on a ticket, what
 * needs a reason, approval decisions. Pure functions: no SQL, no HTTP. */
#ifndef CASETRAIL_TICKETS_H
#define CASETRAIL_TICKETS_H

#include <stdbool.h>

#include "casetrail/err.h"
#include "casetrail/store.h"

/* Event actions, named once. */
#define CT_EV_ASSIGNMENT "assignment.changed"
#define CT_EV_STATUS "status.changed"
#define CT_EV_ESC_RAISED "escalation.raised"
#define CT_EV_ESC_LOWERED "escalation.lowered"
#define CT_EV_PRIORITY "priority.changed"
#define CT_EV_NOTE "note.added"
#define CT_EV_APPROVAL_REQ "approval.requested"
#define CT_EV_APPROVAL_DEC "approval.decided"

#define CT_REASON_MAX 2000
#define CT_NOTE_MAX 10000

enum ct_status { CT_ST_INVALID = -1, CT_ST_NEW = 0, CT_ST_OPEN, CT_ST_PENDING, CT_ST_RESOLVED,
                 CT_ST_CLOSED };

enum ct_status ct_tickets_status_parse(const char *s);
const char *ct_tickets_status_name(enum ct_status st);

/* True for "low|normal|high|urgent". */
bool ct_tickets_priority_valid(const char *s);
/* True for "refund|credit|comp|discount|exception|off_policy_reply". */
bool ct_tickets_approval_kind_valid(const char *s);
/* Kinds that move money: an amount is required. */
bool ct_tickets_approval_needs_amount(const char *kind);

/* True when s holds something other than white space. */
bool ct_tickets_has_text(const char *s);

/* Checks a status change against the transition table (one table in tickets.c): CT_E_CONFLICT
 * (invalid_transition, naming both statuses) when not allowed, CT_E_FORBIDDEN when the role may
 * not make it, CT_E_INVALID (reason_required) when a needed reason is missing. */
ct_rc ct_tickets_check_transition(enum ct_status from, enum ct_status to, enum ct_role role,
                                  const char *reason, struct ct_err *err);

/* Whether actor may act on ticket t at all: closed is final for people (409); qa only reads
 * (403); an agent acts on tickets unassigned or assigned to them (403). */
ct_rc ct_tickets_check_actor(const struct ct_user *actor, const struct ct_ticket_ref *t,
                             struct ct_err *err);

/* Assignment rules: an agent takes an unassigned ticket for themself or hands off their own;
 * supervisors and admins assign anything. The assignee must be active and not qa. */
ct_rc ct_tickets_check_assign(const struct ct_user *actor, const struct ct_ticket_ref *t,
                              const struct ct_user *assignee, struct ct_err *err);

/* Approval decision rules: supervisor or admin, never on their own request, and approving an
 * amount needs an approval limit at least that high (403 naming the limit). */
ct_rc ct_tickets_check_decision(const struct ct_user *decider, long long requested_by,
                                bool approve, bool has_amount, long long amount_minor,
                                const char *currency, struct ct_err *err);

#endif
