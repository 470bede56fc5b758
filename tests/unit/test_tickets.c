/* test_tickets.c: the transition table row by row, actor and assignment rules, approval
 * decisions. */
#include "casetrail/tickets.h"
#include "t.h"

static ct_rc tr(const char *from, const char *to, enum ct_role role, const char *reason)
{
    struct ct_err err;
    return ct_tickets_check_transition(ct_tickets_status_parse(from), ct_tickets_status_parse(to),
                                       role, reason, &err);
}

int main(void)
{
    const char *st[] = {"new", "open", "pending", "resolved", "closed"};
    /* expected rc for an agent with a reason, from DECISIONS' table */
    const ct_rc agent[5][5] = {
        {CT_E_CONFLICT, CT_OK, CT_OK, CT_OK, CT_E_FORBIDDEN},
        {CT_E_CONFLICT, CT_E_CONFLICT, CT_OK, CT_OK, CT_E_FORBIDDEN},
        {CT_E_CONFLICT, CT_OK, CT_E_CONFLICT, CT_OK, CT_E_FORBIDDEN},
        {CT_E_CONFLICT, CT_OK, CT_E_CONFLICT, CT_E_CONFLICT, CT_OK},
        {CT_E_CONFLICT, CT_E_CONFLICT, CT_E_CONFLICT, CT_E_CONFLICT, CT_E_CONFLICT},
    };
    for (int f = 0; f < 5; f++) {
        for (int t = 0; t < 5; t++) {
            ct_rc got = tr(st[f], st[t], CT_ROLE_AGENT, "because");
            if (got != agent[f][t]) {
                fprintf(stderr, "%s -> %s: rc %d, want %d\n", st[f], st[t], got, agent[f][t]);
                t_failures++;
            }
        }
    }
    /* reasons */
    CHECK(tr("open", "pending", CT_ROLE_AGENT, NULL) == CT_E_INVALID);
    CHECK(tr("open", "pending", CT_ROLE_AGENT, "   ") == CT_E_INVALID);
    CHECK(tr("open", "resolved", CT_ROLE_AGENT, "") == CT_E_INVALID);
    CHECK(tr("pending", "open", CT_ROLE_AGENT, NULL) == CT_OK);
    CHECK(tr("resolved", "closed", CT_ROLE_AGENT, NULL) == CT_OK);
    CHECK(tr("open", "closed", CT_ROLE_SUPERVISOR, "spam") == CT_OK);
    CHECK(tr("open", "closed", CT_ROLE_ADMIN, NULL) == CT_E_INVALID);
    CHECK(tr("open", "archived", CT_ROLE_ADMIN, "x") == CT_E_INVALID);
    struct ct_err err;
    ct_tickets_check_transition(CT_ST_CLOSED, CT_ST_OPEN, CT_ROLE_ADMIN, "x", &err);
    CHECK(strstr(err.message, "closed") != NULL && strstr(err.message, "open") != NULL);

    struct ct_user agent1 = {.id = 1, .name = "a1", .role = CT_ROLE_AGENT, .active = true};
    struct ct_user agent2 = {.id = 2, .name = "a2", .role = CT_ROLE_AGENT, .active = true};
    struct ct_user sup = {.id = 3, .name = "s", .role = CT_ROLE_SUPERVISOR, .active = true,
                          .has_limit = true, .approval_limit_minor = 50000};
    struct ct_user qa = {.id = 4, .name = "q", .role = CT_ROLE_QA, .active = true};
    struct ct_user gone = {.id = 5, .name = "g", .role = CT_ROLE_AGENT, .active = false};
    struct ct_ticket_ref open = {.id = 9, .status = "open"};
    struct ct_ticket_ref mine = {.id = 9, .status = "open", .assignee_id = 1};
    struct ct_ticket_ref closed = {.id = 9, .status = "closed"};

    CHECK(ct_tickets_check_actor(&agent1, &open, &err) == CT_OK);
    CHECK(ct_tickets_check_actor(&agent1, &mine, &err) == CT_OK);
    CHECK(ct_tickets_check_actor(&agent2, &mine, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_actor(&sup, &mine, &err) == CT_OK);
    CHECK(ct_tickets_check_actor(&qa, &open, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_actor(&sup, &closed, &err) == CT_E_CONFLICT);

    CHECK(ct_tickets_check_assign(&agent1, &open, &agent1, &err) == CT_OK);
    CHECK(ct_tickets_check_assign(&agent1, &open, &agent2, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_assign(&agent1, &mine, &agent2, &err) == CT_OK); /* hand-off */
    CHECK(ct_tickets_check_assign(&agent1, &mine, &agent1, &err) == CT_E_CONFLICT);
    CHECK(ct_tickets_check_assign(&sup, &open, &agent2, &err) == CT_OK);
    CHECK(ct_tickets_check_assign(&sup, &open, &qa, &err) == CT_E_UNPROCESSABLE);
    CHECK(ct_tickets_check_assign(&sup, &open, &gone, &err) == CT_E_UNPROCESSABLE);

    CHECK(ct_tickets_check_decision(&sup, 1, true, true, 50000, "USD", &err) == CT_OK);
    CHECK(ct_tickets_check_decision(&sup, 1, true, true, 50001, "USD", &err) == CT_E_FORBIDDEN);
    CHECK(strstr(err.message, "50000") != NULL);
    CHECK(ct_tickets_check_decision(&sup, 1, false, true, 99999999, "USD", &err) == CT_OK);
    CHECK(ct_tickets_check_decision(&sup, 3, false, false, 0, "USD", &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_decision(&agent1, 2, true, false, 0, "USD", &err) == CT_E_FORBIDDEN);
    struct ct_user nolimit = {.id = 7, .role = CT_ROLE_ADMIN, .active = true};
    CHECK(ct_tickets_check_decision(&nolimit, 1, true, true, 1, "USD", &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_decision(&nolimit, 1, true, false, 0, "USD", &err) == CT_OK);

    CHECK(ct_tickets_priority_valid("urgent") && !ct_tickets_priority_valid("asap"));
    CHECK(ct_tickets_approval_kind_valid("off_policy_reply") && !ct_tickets_approval_kind_valid("gift"));
    CHECK(ct_tickets_approval_needs_amount("credit") && !ct_tickets_approval_needs_amount("exception"));
    T_DONE();
}
