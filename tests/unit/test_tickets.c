/* test_tickets.c: every row of tickets.c's rule tables: the transition table, the action
 * table (roles and reasons), escalation and priority rules, approval kinds, requests and
 * decisions. When this fails, the rule in server/domain/tickets.c changed: check it against
 * docs/DECISIONS.md#status-transitions and #approvals-and-limits before changing the test. */
#include "casetrail/tickets.h"
#include "t.h"

static ct_rc tr(enum ct_status from, enum ct_status to, enum ct_role role, const char *reason)
{
    struct ct_err err;
    return ct_tickets_check_transition(from, to, role, reason, &err);
}

static void transitions(void)
{
    /* expected rc for an agent with a reason: docs/DECISIONS.md#status-transitions */
    const ct_rc agent[5][5] = {
        {CT_E_CONFLICT, CT_OK, CT_OK, CT_OK, CT_E_FORBIDDEN},
        {CT_E_CONFLICT, CT_E_CONFLICT, CT_OK, CT_OK, CT_E_FORBIDDEN},
        {CT_E_CONFLICT, CT_OK, CT_E_CONFLICT, CT_OK, CT_E_FORBIDDEN},
        {CT_E_CONFLICT, CT_OK, CT_E_CONFLICT, CT_E_CONFLICT, CT_OK},
        {CT_E_CONFLICT, CT_E_CONFLICT, CT_E_CONFLICT, CT_E_CONFLICT, CT_E_CONFLICT},
    };
    /* which allowed moves need a reason (for anyone allowed to make them) */
    const bool needs_reason[5][5] = {
        {false, false, true, true, true},
        {false, false, true, true, true},
        {false, false, false, true, true},
        {false, false, false, false, false},
        {false, false, false, false, false},
    };
    for (int f = 0; f < CT_STATUS_COUNT; f++) {
        for (int t = 0; t < CT_STATUS_COUNT; t++) {
            ct_rc got = tr(f, t, CT_ROLE_AGENT, "because");
            if (got != agent[f][t]) {
                fprintf(stderr, "%s -> %s: rc %d, want %d\n", ct_status_name(f),
                        ct_status_name(t), got, agent[f][t]);
                t_failures++;
            }
            /* a supervisor may make every move an agent may, and the closing ones too */
            ct_rc sup = tr(f, t, CT_ROLE_SUPERVISOR, "because");
            CHECK(sup == (agent[f][t] == CT_E_FORBIDDEN ? CT_OK : agent[f][t]));
            if (sup == CT_OK) {
                ct_rc bare = tr(f, t, CT_ROLE_ADMIN, "  ");
                if (bare != (needs_reason[f][t] ? CT_E_INVALID : CT_OK)) {
                    fprintf(stderr, "%s -> %s without reason: rc %d\n", ct_status_name(f),
                            ct_status_name(t), bare);
                    t_failures++;
                }
            }
        }
    }
    CHECK(tr(CT_ST_OPEN, CT_ST_INVALID, CT_ROLE_ADMIN, "x") == CT_E_INVALID);
    struct ct_err err;
    ct_tickets_check_transition(CT_ST_CLOSED, CT_ST_OPEN, CT_ROLE_ADMIN, "x", &err);
    CHECK(strstr(err.message, "closed") != NULL && strstr(err.message, "open") != NULL);
    ct_tickets_check_transition(CT_ST_OPEN, CT_ST_PENDING, CT_ROLE_AGENT, NULL, &err);
    CHECK_STR(err.code, "reason_required");
}

static void actions(void)
{
    struct ct_err err;
    /* the action table, row by row: least role and whether a reason is needed */
    static const struct {
        enum ct_action_kind kind;
        enum ct_role min;
        bool reason;
    } rows[] = {
        {CT_ACT_ASSIGN, CT_ROLE_AGENT, false},
        {CT_ACT_UNASSIGN, CT_ROLE_AGENT, true},
        {CT_ACT_STATUS, CT_ROLE_AGENT, false}, /* by transition instead */
        {CT_ACT_ESCALATE, CT_ROLE_AGENT, true},
        {CT_ACT_DEESCALATE, CT_ROLE_SUPERVISOR, true},
        {CT_ACT_PRIORITY, CT_ROLE_AGENT, false},
        {CT_ACT_NOTE, CT_ROLE_AGENT, false},
        {CT_ACT_APPROVAL_REQUEST, CT_ROLE_AGENT, true},
        {CT_ACT_APPROVAL_DECIDE, CT_ROLE_SUPERVISOR, true},
        {CT_ACT_REPLY, CT_ROLE_AGENT, false},
    };
    CHECK(sizeof(rows) / sizeof(rows[0]) == CT_ACT_COUNT);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        CHECK(ct_tickets_action_min_role(rows[i].kind) == rows[i].min);
        CHECK(ct_tickets_check_reason(rows[i].kind, " \t", &err) ==
              (rows[i].reason ? CT_E_INVALID : CT_OK));
        CHECK(ct_tickets_check_reason(rows[i].kind, "why", &err) == CT_OK);
    }

    struct ct_ticket_action a = {.kind = CT_ACT_ESCALATE, .level = 4, .reason = "x"};
    CHECK(ct_tickets_check_action(&a, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "wrong_type");
    a.level = 3;
    CHECK(ct_tickets_check_action(&a, &err) == CT_OK);
    a = (struct ct_ticket_action){.kind = CT_ACT_DEESCALATE, .level = 3, .reason = "x"};
    CHECK(ct_tickets_check_action(&a, &err) == CT_E_INVALID);
    a.level = 0;
    CHECK(ct_tickets_check_action(&a, &err) == CT_OK);
    a = (struct ct_ticket_action){.kind = CT_ACT_NOTE, .note = "  "};
    CHECK(ct_tickets_check_action(&a, &err) == CT_E_INVALID);
    a = (struct ct_ticket_action){.kind = CT_ACT_STATUS, .status = CT_ST_INVALID};
    CHECK(ct_tickets_check_action(&a, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "invalid_status");
    a = (struct ct_ticket_action){.kind = CT_ACT_PRIORITY, .priority = CT_PRIO_INVALID};
    CHECK(ct_tickets_check_action(&a, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "invalid_priority");
    a = (struct ct_ticket_action){.kind = CT_ACT_UNASSIGN};
    CHECK(ct_tickets_check_action(&a, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "reason_required");
}

static void actors(void)
{
    struct ct_err err;
    struct ct_user agent1 = {.id = 1, .name = "a1", .role = CT_ROLE_AGENT, .active = true};
    struct ct_user agent2 = {.id = 2, .name = "a2", .role = CT_ROLE_AGENT, .active = true};
    struct ct_user sup = {.id = 3, .name = "s", .role = CT_ROLE_SUPERVISOR, .active = true};
    struct ct_user qa = {.id = 4, .name = "q", .role = CT_ROLE_QA, .active = true};
    struct ct_user gone = {.id = 5, .name = "g", .role = CT_ROLE_AGENT, .active = false};
    struct ct_ticket_ref open = {.id = 9, .status = CT_ST_OPEN};
    struct ct_ticket_ref mine = {.id = 9, .status = CT_ST_OPEN, .assignee_id = 1};
    struct ct_ticket_ref closed = {.id = 9, .status = CT_ST_CLOSED};

    CHECK(ct_tickets_check_actor(&agent1, &open, CT_ACT_NOTE, &err) == CT_OK);
    CHECK(ct_tickets_check_actor(&agent1, &mine, CT_ACT_NOTE, &err) == CT_OK);
    CHECK(ct_tickets_check_actor(&agent2, &mine, CT_ACT_NOTE, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_actor(&sup, &mine, CT_ACT_NOTE, &err) == CT_OK);
    CHECK(ct_tickets_check_actor(&qa, &open, CT_ACT_NOTE, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_actor(&sup, &closed, CT_ACT_NOTE, &err) == CT_E_CONFLICT);
    CHECK_STR(err.code, "ticket_closed");
    /* only supervisors and admins lower an escalation */
    CHECK(ct_tickets_check_actor(&agent1, &mine, CT_ACT_DEESCALATE, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_actor(&sup, &mine, CT_ACT_DEESCALATE, &err) == CT_OK);

    CHECK(ct_tickets_check_assign(&agent1, &open, &agent1, &err) == CT_OK);
    CHECK(ct_tickets_check_assign(&agent1, &open, &agent2, &err) == CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_assign(&agent1, &mine, &agent2, &err) == CT_OK); /* hand-off */
    CHECK(ct_tickets_check_assign(&agent1, &mine, &agent1, &err) == CT_E_CONFLICT);
    CHECK(ct_tickets_check_assign(&sup, &open, &agent2, &err) == CT_OK);
    CHECK(ct_tickets_check_assign(&sup, &open, &qa, &err) == CT_E_UNPROCESSABLE);
    CHECK(ct_tickets_check_assign(&sup, &open, &gone, &err) == CT_E_UNPROCESSABLE);
    CHECK(ct_tickets_check_unassign(&open, &err) == CT_E_CONFLICT);
    CHECK(ct_tickets_check_unassign(&mine, &err) == CT_OK);

    struct ct_ticket_ref esc = {.id = 9, .status = CT_ST_OPEN, .escalation_level = 2};
    CHECK(ct_tickets_check_escalation(&esc, true, 2, &err) == CT_E_CONFLICT);
    CHECK(ct_tickets_check_escalation(&esc, true, 3, &err) == CT_OK);
    CHECK(ct_tickets_check_escalation(&esc, false, 2, &err) == CT_E_INVALID);
    CHECK(ct_tickets_check_escalation(&esc, false, 1, &err) == CT_OK);
    CHECK(ct_tickets_check_escalation(&open, false, 0, &err) == CT_E_CONFLICT);
    struct ct_ticket_ref high = {.id = 9, .status = CT_ST_OPEN, .priority = CT_PRIO_HIGH};
    CHECK(ct_tickets_check_priority(&high, CT_PRIO_HIGH, &err) == CT_E_CONFLICT);
    CHECK(ct_tickets_check_priority(&high, CT_PRIO_LOW, &err) == CT_OK);
}

static void approvals(void)
{
    struct ct_err err;
    /* the kinds table: refund and credit move money */
    for (int k = CT_KIND_REFUND; k <= CT_KIND_OFF_POLICY_REPLY; k++)
        CHECK(ct_tickets_kind_needs_amount(k) == (k == CT_KIND_REFUND || k == CT_KIND_CREDIT));
    CHECK(!ct_tickets_kind_needs_amount(CT_KIND_INVALID));

    struct ct_approval_request r = {.kind = CT_KIND_CREDIT, .reason = "late"};
    CHECK(ct_tickets_check_request(&r, "USD", &err) == CT_E_INVALID);
    CHECK_STR(err.code, "amount_required");
    r.has_amount = true;
    r.amount_minor = 500;
    CHECK(ct_tickets_check_request(&r, "USD", &err) == CT_OK);
    r.currency = "EUR";
    CHECK(ct_tickets_check_request(&r, "USD", &err) == CT_E_UNPROCESSABLE);
    CHECK(strstr(err.message, "USD") != NULL);
    r = (struct ct_approval_request){.kind = CT_KIND_EXCEPTION, .reason = "vip"};
    CHECK(ct_tickets_check_request(&r, "USD", &err) == CT_OK);
    r.kind = CT_KIND_INVALID;
    CHECK(ct_tickets_check_request(&r, "USD", &err) == CT_E_INVALID);
    CHECK_STR(err.code, "invalid_kind");
    r = (struct ct_approval_request){.kind = CT_KIND_COMP};
    CHECK(ct_tickets_check_request(&r, "USD", &err) == CT_E_INVALID);
    CHECK_STR(err.code, "reason_required");

    struct ct_user agent1 = {.id = 1, .role = CT_ROLE_AGENT, .active = true};
    struct ct_user sup = {.id = 3, .role = CT_ROLE_SUPERVISOR, .active = true,
                          .has_limit = true, .approval_limit_minor = 50000};
    struct ct_user nolimit = {.id = 7, .role = CT_ROLE_ADMIN, .active = true};
    struct ct_ticket_ref open = {.id = 9, .status = CT_ST_OPEN};
    struct ct_ticket_ref closed = {.id = 9, .status = CT_ST_CLOSED};
    struct ct_approval money = {.id = 1, .kind = CT_KIND_REFUND, .has_amount = true,
                                .amount_minor = 50000, .currency = "USD",
                                .status = CT_APPR_PENDING, .requested_by = 1};
    struct ct_approval plain = {.id = 2, .kind = CT_KIND_EXCEPTION, .currency = "",
                                .status = CT_APPR_PENDING, .requested_by = 2};

    CHECK(ct_tickets_check_decision(&sup, &money, &open, CT_APPR_APPROVED, &err) == CT_OK);
    money.amount_minor = 50001;
    CHECK(ct_tickets_check_decision(&sup, &money, &open, CT_APPR_APPROVED, &err) ==
          CT_E_FORBIDDEN);
    CHECK(strstr(err.message, "50000") != NULL);
    CHECK(ct_tickets_check_decision(&sup, &money, &open, CT_APPR_DENIED, &err) == CT_OK);
    CHECK(ct_tickets_check_decision(&nolimit, &money, &open, CT_APPR_APPROVED, &err) ==
          CT_E_FORBIDDEN);
    CHECK(ct_tickets_check_decision(&nolimit, &plain, &open, CT_APPR_APPROVED, &err) == CT_OK);
    CHECK(ct_tickets_check_decision(&agent1, &plain, &open, CT_APPR_APPROVED, &err) ==
          CT_E_FORBIDDEN);
    plain.requested_by = 3;
    CHECK(ct_tickets_check_decision(&sup, &plain, &open, CT_APPR_DENIED, &err) == CT_E_FORBIDDEN);
    CHECK_STR(err.code, "own_request");
    CHECK(ct_tickets_check_decision(&nolimit, &plain, &closed, CT_APPR_DENIED, &err) ==
          CT_E_CONFLICT);
    plain.status = CT_APPR_DENIED;
    CHECK(ct_tickets_check_decision(&nolimit, &plain, &open, CT_APPR_DENIED, &err) ==
          CT_E_CONFLICT);
    CHECK_STR(err.code, "already_decided");
}

static void replies(void)
{
    struct ct_err err;
    char big[4100 * 2 + 1];
    long long now = 1760500000000000LL, hour = 3600000000LL;
    CHECK(ct_tickets_check_reply_text("ok", &err) == CT_OK);
    CHECK(ct_tickets_check_reply_text("  ", &err) == CT_E_INVALID);
    /* 4,096 characters of two bytes each is within the limit: it counts characters */
    for (int i = 0; i < 4096; i++)
        memcpy(big + 2 * i, "\xd8\xa7", 2);
    big[2 * 4096] = '\0';
    CHECK(ct_tickets_check_reply_text(big, &err) == CT_OK);
    memcpy(big + 2 * 4096, "x", 2);
    CHECK(ct_tickets_check_reply_text(big, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "too_long");
    CHECK(ct_tickets_check_window(true, now - 23 * hour, now, &err) == CT_OK);
    CHECK(ct_tickets_check_window(true, now - 24 * hour, now, &err) == CT_OK);
    CHECK(ct_tickets_check_window(true, now - 24 * hour - 1, now, &err) == CT_E_CONFLICT);
    CHECK_STR(err.code, "window_closed");
    CHECK(ct_tickets_check_window(false, 0, now, &err) == CT_E_CONFLICT);
}

static void names(void)
{
    for (int s = 0; s < CT_STATUS_COUNT; s++)
        CHECK(ct_status_parse(ct_status_name(s)) == s);
    CHECK(ct_status_parse("archived") == CT_ST_INVALID && ct_status_parse(NULL) == CT_ST_INVALID);
    CHECK(ct_priority_parse("urgent") == CT_PRIO_URGENT && ct_priority_parse("asap") < 0);
    CHECK(ct_kind_parse("off_policy_reply") == CT_KIND_OFF_POLICY_REPLY);
    CHECK(ct_kind_parse("gift") == CT_KIND_INVALID);
    CHECK(ct_role_parse("qa") == CT_ROLE_QA && ct_role_parse("none") == CT_ROLE_NONE);
    CHECK_STR(ct_role_name(CT_ROLE_ADMIN), "admin");
    CHECK(ct_approval_status_parse("denied") == CT_APPR_DENIED);
}

int main(void)
{
    transitions();
    actions();
    actors();
    approvals();
    replies();
    names();
    T_DONE();
}
