/* model.c: name tables for the model's enums and the one event builder. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "casetrail/model.h"

static const char *const role_names[] = {"none", "agent", "supervisor", "qa", "admin"};
static const char *const status_names[] = {"new", "open", "pending", "resolved", "closed"};
static const char *const priority_names[] = {"low", "normal", "high", "urgent"};
static const char *const kind_names[] = {"refund", "credit", "comp", "discount", "exception",
                                         "off_policy_reply"};
static const char *const approval_status_names[] = {"pending", "approved", "denied"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Index of s in names, or -1. */
static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

static const char *name_of(const char *const *names, int n, int v)
{
    return v >= 0 && v < n ? names[v] : "invalid";
}

const char *ct_role_name(enum ct_role role)
{
    return name_of(role_names, COUNT(role_names), (int)role);
}

enum ct_role ct_role_parse(const char *s)
{
    int i = lookup(role_names + 1, COUNT(role_names) - 1, s); /* "none" is not a role to give */
    return i < 0 ? CT_ROLE_NONE : (enum ct_role)(i + 1);
}

const char *ct_status_name(enum ct_status st)
{
    return name_of(status_names, COUNT(status_names), (int)st);
}

enum ct_status ct_status_parse(const char *s)
{
    return (enum ct_status)lookup(status_names, COUNT(status_names), s);
}

const char *ct_priority_name(enum ct_priority p)
{
    return name_of(priority_names, COUNT(priority_names), (int)p);
}

enum ct_priority ct_priority_parse(const char *s)
{
    return (enum ct_priority)lookup(priority_names, COUNT(priority_names), s);
}

const char *ct_kind_name(enum ct_kind k)
{
    return name_of(kind_names, COUNT(kind_names), (int)k);
}

enum ct_kind ct_kind_parse(const char *s)
{
    return (enum ct_kind)lookup(kind_names, COUNT(kind_names), s);
}

const char *ct_approval_status_name(enum ct_approval_status s)
{
    return name_of(approval_status_names, COUNT(approval_status_names), (int)s);
}

enum ct_approval_status ct_approval_status_parse(const char *s)
{
    return (enum ct_approval_status)lookup(approval_status_names, COUNT(approval_status_names),
                                           s);
}

const char *ct_status_names_text(void)
{
    return "new, open, pending, resolved or closed";
}

const char *ct_priority_names_text(void)
{
    return "low, normal, high or urgent";
}

const char *ct_kind_names_text(void)
{
    return "refund, credit, comp, discount, exception or off_policy_reply";
}

struct ct_actor ct_actor_staff(const struct ct_user *u, char idbuf[24])
{
    snprintf(idbuf, 24, "%lld", u->id);
    return (struct ct_actor){CT_ACTOR_AGENT, idbuf, u->name, CT_SCOPE_STAFF};
}

void ct_event_begin(struct ct_event_new *ev, const char *chain_kind, long long chain_id,
                    const char *action, const struct ct_actor *actor)
{
    memset(ev, 0, sizeof(*ev));
    ev->chain_kind = chain_kind;
    ev->chain_id = chain_id;
    ev->action = action;
    ev->actor_type = actor->type;
    ev->actor_id = actor->id;
    ct_event_text(ev, "actor_name", actor->name, actor->scope);
}

void ct_event_text(struct ct_event_new *ev, const char *field, const char *body,
                   const char *salt_scope)
{
    if (body == NULL)
        return;
    assert(ev->ntexts < CT_EVENT_MAX_TEXTS);
    if (ev->ntexts >= CT_EVENT_MAX_TEXTS)
        return;
    ev->texts[ev->ntexts++] = (struct ct_event_text){field, body, salt_scope};
}
