/* reconcile.c: proves the rows people see against the chain. Replays a chain's events into the
 * row fields they determine (a ticket's status, an approval's amount, a user's role ...) and
 * compares them with those rows as stored, so a superuser's quiet edit is a named break. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "casetrail/audit.h"
#include "casetrail/model.h"

/* A field value the events say a row must hold, and the event that said it last. Every
 * want() is appended; finish_wants() then sorts, keeps the last value per field and restores
 * the order fields were first named in, so the first mismatch reported is the same as a replay
 * in chain order would find, in O(n log n) rather than a scan per event (a 30,000-event chain). */
struct want {
    const char *table;
    long long id;
    const char *field;
    char value[80];
    bool null;
    long long seq;
    size_t order;                    /* when this field was first named */
};

struct wants {
    struct want *v;
    size_t n, cap;
    bool oom;
};

static void want(struct wants *w, long long seq, const char *table, long long id,
                 const char *field, const char *value)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct want *v = realloc(w->v, cap * sizeof(*v));
        if (v == NULL) {
            w->oom = true;
            return;
        }
        w->v = v;
        w->cap = cap;
    }
    struct want *x = &w->v[w->n];
    x->table = table;
    x->id = id;
    x->field = field;
    x->seq = seq;
    x->order = w->n++;
    x->null = value == NULL;
    snprintf(x->value, sizeof(x->value), "%s", value != NULL ? value : "");
}

static int cmp_row(const char *ta, long long ia, const char *tb, long long ib)
{
    if (ia != ib)
        return ia < ib ? -1 : 1;
    return strcmp(ta, tb);
}

static int cmp_want_key(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    int c = cmp_row(x->table, x->id, y->table, y->id);
    if (c == 0)
        c = strcmp(x->field, y->field);
    if (c == 0)
        c = x->order < y->order ? -1 : x->order > y->order;
    return c;
}

static int cmp_want_order(const void *a, const void *b)
{
    const struct want *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Collapses each field's wants into one: the last value (the last event wins) at the first
 * position. Leaves w sorted by (row, field) in *by_key (owned by the caller) and w->v in the
 * order fields were first named. false when out of memory. */
static bool finish_wants(struct wants *w, struct want **by_key)
{
    size_t n = 0;
    *by_key = NULL;
    if (w->n == 0)
        return true;
    qsort(w->v, w->n, sizeof(*w->v), cmp_want_key);
    for (size_t i = 0; i < w->n; i++) {
        if (n > 0 && cmp_row(w->v[n - 1].table, w->v[n - 1].id, w->v[i].table, w->v[i].id) == 0 &&
            strcmp(w->v[n - 1].field, w->v[i].field) == 0) {
            size_t first = w->v[n - 1].order;
            w->v[n - 1] = w->v[i];
            w->v[n - 1].order = first;
        } else {
            w->v[n++] = w->v[i];
        }
    }
    w->n = n;
    *by_key = malloc(n * sizeof(**by_key));
    if (*by_key == NULL)
        return false;
    memcpy(*by_key, w->v, n * sizeof(**by_key));
    qsort(w->v, w->n, sizeof(*w->v), cmp_want_order);
    return true;
}

/* Integer and string members of an event's data, as text; NULL when absent or JSON null. */
static const char *data_text(const cJSON *data, const char *name, char buf[32])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, name);
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(buf, 32, "%lld", (long long)v->valuedouble);
        return buf;
    }
    return NULL;
}

static long long data_id(const cJSON *data, const char *name)
{
    char buf[32];
    const char *v = data_text(data, name, buf);
    return v != NULL ? atoll(v) : 0;
}

static bool is(const struct ct_event_row *e, const char *action)
{
    return strcmp(e->action, action) == 0;
}

/* What a ticket chain's events say about the ticket, its approvals, messages and receipts. */
static void replay_ticket(const struct ct_chain *c, long long tid, struct wants *w)
{
    char buf[32];
    for (size_t i = 0; i < c->nevents && !w->oom; i++) {
        const struct ct_event_row *e = &c->events[i];
        cJSON *data = e->data != NULL ? cJSON_Parse(e->data) : NULL;
        long long seq = e->seq;

        if (is(e, CT_EV_TICKET_CREATED)) {
            want(w, seq, "tickets", tid, "status", e->to_value);
            want(w, seq, "tickets", tid, "priority", ct_priority_name(CT_PRIO_NORMAL));
            want(w, seq, "tickets", tid, "escalation_level", "0");
            want(w, seq, "tickets", tid, "assignee_id", NULL);
        } else if (is(e, CT_EV_STATUS) || is(e, CT_EV_TICKET_REOPENED)) {
            want(w, seq, "tickets", tid, "status", e->to_value);
        } else if (is(e, CT_EV_PRIORITY)) {
            want(w, seq, "tickets", tid, "priority", e->to_value);
        } else if (is(e, CT_EV_ESC_RAISED) || is(e, CT_EV_ESC_LOWERED)) {
            want(w, seq, "tickets", tid, "escalation_level", e->to_value);
        } else if (is(e, CT_EV_ASSIGNMENT)) {
            want(w, seq, "tickets", tid, "assignee_id", e->to_value);
        } else if (is(e, CT_EV_APPROVAL_REQ)) {
            long long aid = data_id(data, "approval_id");
            snprintf(buf, sizeof(buf), "%lld", tid);
            want(w, seq, "approvals", aid, "ticket_id", buf);
            want(w, seq, "approvals", aid, "kind", data_text(data, "approval_kind", buf));
            want(w, seq, "approvals", aid, "amount_minor", data_text(data, "amount_minor", buf));
            want(w, seq, "approvals", aid, "currency", data_text(data, "currency", buf));
            want(w, seq, "approvals", aid, "requested_by", data_text(data, "requested_by", buf));
            want(w, seq, "approvals", aid, "status", ct_approval_status_name(CT_APPR_PENDING));
            want(w, seq, "approvals", aid, "decided_by", NULL);
        } else if (is(e, CT_EV_APPROVAL_DEC)) {
            long long aid = data_id(data, "approval_id");
            want(w, seq, "approvals", aid, "status", e->to_value);
            want(w, seq, "approvals", aid, "decided_by", e->actor_id);
        } else if (is(e, CT_EV_MESSAGE_RECEIVED) || is(e, CT_EV_MESSAGE_ECHOED)) {
            long long mid = data_id(data, "message_id");
            snprintf(buf, sizeof(buf), "%lld", tid);
            want(w, seq, "messages", mid, "ticket_id", buf);
            want(w, seq, "messages", mid, "direction", is(e, CT_EV_MESSAGE_ECHOED) ? "out" : "in");
            want(w, seq, "messages", mid, "type", data_text(data, "type", buf));
            want(w, seq, "messages", mid, "wamid", data_text(data, "wamid", buf));
            /* older events (and replies) carry no payload digest: nothing to hold it to */
            const char *payload = data_text(data, "payload_sha256", buf);
            if (payload != NULL)
                want(w, seq, "messages", mid, "payload_sha256", payload);
        }
        if (is(e, CT_EV_MESSAGE_QUEUED)) {
            long long mid = data_id(data, "message_id");
            snprintf(buf, sizeof(buf), "%lld", tid);
            want(w, seq, "messages", mid, "ticket_id", buf);
            want(w, seq, "messages", mid, "direction", "out");
            want(w, seq, "messages", mid, "type", data_text(data, "type", buf));
            want(w, seq, "messages", mid, "author_id", e->actor_id);
            want(w, seq, "messages", mid, "wamid", NULL);
        } else if (is(e, CT_EV_MESSAGE_SENT)) {
            want(w, seq, "messages", data_id(data, "message_id"), "wamid",
                 data_text(data, "wamid", buf));
        }
        /* each receipt an event names must still hold the bytes it hashed */
        const char *receipt = data_text(data, "receipt_sha256", buf);
        if (receipt != NULL) {
            long long rid = data_id(data, "receipt_id");
            want(w, seq, "webhook_receipts", rid, "body_sha256", receipt);
            want(w, seq, "webhook_receipts", rid, "body_sha256_now", receipt);
        }
        cJSON_Delete(data);
    }
}

/* What a user chain's events say about the user row. */
static void replay_user(const struct ct_chain *c, long long uid, struct wants *w)
{
    char buf[32];
    for (size_t i = 0; i < c->nevents && !w->oom; i++) {
        const struct ct_event_row *e = &c->events[i];
        cJSON *data = e->data != NULL ? cJSON_Parse(e->data) : NULL;
        if (is(e, CT_EV_USER_CREATED)) {
            want(w, e->seq, "users", uid, "role", e->to_value);
            want(w, e->seq, "users", uid, "approval_limit_minor",
                 data_text(data, "approval_limit_minor", buf));
            want(w, e->seq, "users", uid, "active", "t");
            want(w, e->seq, "users", uid, "password_sha256", NULL);
        } else if (is(e, CT_EV_USER_PASSWORD)) {
            want(w, e->seq, "users", uid, "password_sha256",
                 data_text(data, "password_sha256", buf));
        } else if (is(e, CT_EV_USER_ROLE)) {
            want(w, e->seq, "users", uid, "role", e->to_value);
        } else if (is(e, CT_EV_USER_DEACTIVATED)) {
            want(w, e->seq, "users", uid, "active", "f");
        }
        cJSON_Delete(data);
    }
}

static void mismatch(struct ct_verify_result *r, long long seq, const char *table, long long id,
                     const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void mismatch(struct ct_verify_result *r, long long seq, const char *table, long long id,
                     const char *field, const char *fmt, ...)
{
    va_list ap;
    r->ok = false;
    r->first_bad_seq = seq;
    snprintf(r->table, sizeof(r->table), "%s", table);
    r->row = id;
    snprintf(r->field, sizeof(r->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

static int cmp_fact(const void *a, const void *b)
{
    const struct ct_fact *x = *(const struct ct_fact *const *)a;
    const struct ct_fact *y = *(const struct ct_fact *const *)b;
    int c = cmp_row(x->table, x->id, y->table, y->id);
    return c != 0 ? c : strcmp(x->field, y->field);
}

/* First index in the sorted facts whose row (and field, when field is not NULL) is not less
 * than the one asked for. */
static size_t lower_fact(const struct ct_fact *const *f, size_t n, const char *table,
                         long long id, const char *field)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_row(f[mid]->table, f[mid]->id, table, id);
        if (c == 0 && field != NULL)
            c = strcmp(f[mid]->field, field);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool row_wanted(const struct want *by_key, size_t n, const char *table, long long id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_row(by_key[mid].table, by_key[mid].id, table, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && cmp_row(by_key[lo].table, by_key[lo].id, table, id) == 0;
}

/* The fact for table row id's field in the sorted facts (field NULL: any field of the row). */
static const struct ct_fact *find_fact(const struct ct_fact *const *f, size_t n,
                                       const char *table, long long id, const char *field)
{
    size_t k = lower_fact(f, n, table, id, field);
    if (k == n || cmp_row(f[k]->table, f[k]->id, table, id) != 0 ||
        (field != NULL && strcmp(f[k]->field, field) != 0))
        return NULL;
    return f[k];
}

void ct_audit_reconcile(const struct ct_chain *c, struct ct_verify_result *r)
{
    struct wants w = {0};
    struct want *by_key = NULL;
    const struct ct_fact **facts = NULL;
    const char *colon = strchr(c->name, ':');
    long long owner = colon != NULL ? atoll(colon + 1) : 0;

    if (strncmp(c->name, "ticket:", 7) == 0)
        replay_ticket(c, owner, &w);
    else
        replay_user(c, owner, &w);
    if (w.oom || !finish_wants(&w, &by_key) ||
        (c->nfacts > 0 && (facts = malloc(c->nfacts * sizeof(*facts))) == NULL)) {
        mismatch(r, 0, "", 0, "", "out of memory while reconciling the chain");
        goto out;
    }
    for (size_t i = 0; i < c->nfacts; i++)
        facts[i] = &c->facts[i];
    if (c->nfacts > 0)
        qsort(facts, c->nfacts, sizeof(*facts), cmp_fact);

    for (size_t i = 0; i < w.n; i++) {
        const struct want *x = &w.v[i];
        if (find_fact(facts, c->nfacts, x->table, x->id, NULL) == NULL) {
            mismatch(r, x->seq, x->table, x->id, "", "%s row %lld, recorded by event seq %lld, "
                     "no longer exists", x->table, x->id, x->seq);
            goto out;
        }
        const struct ct_fact *f = find_fact(facts, c->nfacts, x->table, x->id, x->field);
        bool same = f != NULL && (x->null ? f->value == NULL
                                          : f->value != NULL && strcmp(f->value, x->value) == 0);
        if (!same) {
            mismatch(r, x->seq, x->table, x->id, x->field,
                     "%s row %lld field %s is %.60s but the chain (seq %lld) says %.60s",
                     x->table, x->id, x->field,
                     f == NULL || f->value == NULL ? "null" : f->value, x->seq,
                     x->null ? "null" : x->value);
            goto out;
        }
    }
    /* rows that claim this chain (a message on this ticket ...) must be ones it records */
    for (size_t i = 0; i < c->nfacts; i++) {
        const struct ct_fact *f = &c->facts[i];
        if (!row_wanted(by_key, w.n, f->table, f->id)) {
            mismatch(r, 0, f->table, f->id, "", "%s row %lld belongs to %s but no event "
                     "records it", f->table, f->id, c->name);
            goto out;
        }
    }
out:
    free(by_key);
    free(facts);
    free(w.v);
}
