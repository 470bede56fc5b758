/* ingest.c: the conversation-to-ticket rules. A message joins its contact's ticket that is not
 * closed, reopens a resolved one, or opens a new one; each change writes its event in the
 * same transaction as the change. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/contacts.h"
#include "casetrail/ingest.h"
#include "casetrail/log.h"
#include "casetrail/store.h"
#include "casetrail/text.h"
#include "casetrail/workflow.h"

/* The receipt a batch arrived in: its id and the SHA-256 of its bytes, which every event it
 * brings carries, so a rewritten receipt no longer matches the chain. */
struct receipt {
    long long id;
    char sha256[65];
};

/* An entry that the database refused (after the parser found nothing wrong with it): it is
 * left out of the next attempt and recorded as a reject with this reason. */
struct excluded {
    char reason[CT_WA_REASON_MAX];
    bool set;
};

struct job {
    const char *body;
    size_t len;
    const char *signature; /* checked X-Hub-Signature-256, NULL when not checked */
    const struct ct_wa_batch *batch;
    struct ct_ingest_result *res;
    size_t *morder; /* message indexes sorted by (phone number, sender), batch order kept */
    size_t *sorder; /* status indexes sorted by wamid */
    struct excluded *mout, *sout; /* by message / status index */
    bool *known;                  /* by message index: its wamid was stored before */
    char *wamids;                 /* the messages' wamids as a JSON array, by index */
    struct receipt receipt;
    bool receipt_stored;          /* this attempt's group stored the receipt (receipt, dup) */
    bool receipt_dup;
    bool failed_on_entry;         /* the last attempt failed inside entry (failed_msg, idx) */
    bool failed_msg;
    size_t failed_idx;
};

/* Sort key: rows are locked in this order, so concurrent batches touching the same contacts
 * take their locks in the same order and do not deadlock. */
struct key {
    const char *a, *b;
    size_t idx;
};

static int cmp_keys(const void *x, const void *y)
{
    const struct key *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    if (c == 0)
        c = strcmp(p->b, q->b);
    if (c == 0) /* keep batch order within one contact */
        c = (p->idx > q->idx) - (p->idx < q->idx);
    return c;
}

/* Fills order[0..n) with the indexes of keys in sorted order. */
static void sorted_order(struct key *keys, size_t n, size_t *order)
{
    qsort(keys, n, sizeof(*keys), cmp_keys);
    for (size_t i = 0; i < n; i++)
        order[i] = keys[i].idx;
}

/* Delivery receipts are recorded as WhatsApp's doing. */
static const struct ct_actor whatsapp = {CT_ACTOR_SYSTEM, "whatsapp", NULL, NULL};

/* Replies typed in the WhatsApp Business app on the shop's phone (coexistence). */
static const struct ct_actor business_app = {CT_ACTOR_SYSTEM, "business-app", NULL, NULL};

/* The event of a message at its send time: by the customer (whose name is their contact's
 * text, so erasing the contact erases it), or for an echo by the Business app. */
static void message_event(struct ct_event_new *ev, long long ticket_id,
                          const struct ct_wa_message *m, const char *scope, const char *action)
{
    struct ct_actor customer = {CT_ACTOR_CUSTOMER, ct_wa_customer_id(m), m->profile_name, scope};
    ct_event_begin(ev, CT_CHAIN_TICKET, ticket_id, action, m->echo ? &business_app : &customer);
    ev->occurred_us = m->ts * 1000000LL;
}

/* Reopens or creates the message's ticket from live, the contact's live ticket (locked; id 0
 * when none); *out is its row as it now is. */
static ct_rc ticket_for_message(struct ct_tx *tx, const struct ct_wa_message *m,
                                long long contact_id, const char *scope,
                                const struct ct_ticket_ref *live, struct ct_ticket_ref *out,
                                struct ct_ingest_result *res, struct ct_err *err)
{
    struct ct_ticket_ref t = *live;
    struct ct_event_new ev;
    cJSON *data = NULL;
    ct_rc rc = CT_OK;

    if (t.id == 0) {
        rc = ct_store_ticket_create(tx, contact_id, m->phone_number_id, &t.id, err);
        if (rc != CT_OK)
            return rc;
        t.status = CT_ST_NEW;
        t.priority = CT_PRIO_NORMAL;
        message_event(&ev, t.id, m, scope, CT_EV_TICKET_CREATED);
        ev.to_value = ct_status_name(CT_ST_NEW);
        data = cJSON_CreateObject();
        cJSON_AddNumberToObject(data, "contact_id", (double)contact_id);
        cJSON_AddStringToObject(data, "phone_number_id", m->phone_number_id);
        cJSON_AddStringToObject(data, "wamid", m->wamid);
        ev.data = data;
        rc = ct_store_event_append(tx, &ev, NULL, err);
        cJSON_Delete(data);
        res->tickets_created++;
    } else if (t.status == CT_ST_RESOLVED && !m->echo) {
        /* the customer writing again reopens; the shop's own reply does not */
        rc = ct_store_ticket_set_status(tx, t.id, CT_ST_OPEN, err);
        if (rc != CT_OK)
            return rc;
        message_event(&ev, t.id, m, scope, CT_EV_TICKET_REOPENED);
        ev.from_value = ct_status_name(CT_ST_RESOLVED);
        ev.to_value = ct_status_name(CT_ST_OPEN);
        rc = ct_store_event_append(tx, &ev, NULL, err);
        t.status = CT_ST_OPEN;
        res->tickets_reopened++;
    }
    *out = t;
    return rc;
}


/* The message's event data: ids only, and the SHA-256 of the bytes it came in. */
static cJSON *message_data(const struct ct_wa_message *m, long long message_id,
                           const struct receipt *receipt, const char *payload_sha)
{
    cJSON *data = cJSON_CreateObject();
    if (data == NULL)
        return NULL;
    cJSON_AddNumberToObject(data, "message_id", (double)message_id);
    cJSON_AddStringToObject(data, "wamid", m->wamid);
    cJSON_AddStringToObject(data, "type", m->type);
    if (m->target_wamid != NULL) /* an edit or deletion names what it changes */
        cJSON_AddStringToObject(data, "target_wamid", m->target_wamid);
    cJSON_AddNumberToObject(data, "receipt_id", (double)receipt->id);
    /* bind the bytes, not only the rows: verify recomputes both (issue 9 item 5) */
    cJSON_AddStringToObject(data, "receipt_sha256", receipt->sha256);
    cJSON_AddStringToObject(data, "payload_sha256", payload_sha);
    return data;
}

/* The media object of a customer's photo, voice note, video, document or sticker that has a
 * media id to fetch; NULL for anything else. */
static const cJSON *media_object(const struct ct_wa_message *m)
{
    static const char *const kinds[] = {"image", "audio", "video", "document", "sticker"};
    const cJSON *obj = NULL;
    if (m->echo || m->type == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && obj == NULL; i++)
        if (strcmp(m->type, kinds[i]) == 0)
            obj = cJSON_GetObjectItemCaseSensitive(m->raw, kinds[i]);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    return cJSON_IsString(id) && id->valuestring[0] != '\0' ? obj : NULL;
}

/* Queues the message's media, if any: the worker fetches it later. */
static ct_rc queue_media(struct ct_tx *tx, const struct ct_wa_message *m, long long message_id,
                         struct ct_err *err)
{
    const cJSON *obj = media_object(m);
    if (obj == NULL)
        return CT_OK;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    const cJSON *mime = cJSON_GetObjectItemCaseSensitive(obj, "mime_type");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(obj, "sha256");
    return ct_store_media_insert(tx, message_id, id->valuestring,
                                 cJSON_IsString(mime) ? mime->valuestring : NULL,
                                 cJSON_IsString(sha) ? sha->valuestring : NULL, err);
}

/* Stores the message row and its event; *message_id 0 when the wamid was already stored. */
static ct_rc store_message(struct ct_tx *tx, const struct ct_wa_message *m, long long contact_id,
                           long long ticket_id, const char *scope, const struct receipt *receipt,
                           struct ct_err *err)
{
    char payload_sha[65];
    long long message_id = 0;
    bool dup = false;
    struct ct_event_new ev;
    cJSON *data;
    ct_rc rc;
    char *payload = cJSON_PrintUnformatted(m->raw);

    if (payload == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    struct ct_message_new row = {
        .wamid = m->wamid, .ticket_id = ticket_id, .contact_id = contact_id,
        .direction = m->echo ? "out" : "in", .type = m->type, .body = m->text,
        .payload = payload, .context_wamid = m->context_wamid, .target_wamid = m->target_wamid,
        .sent_us = m->ts * 1000000LL, .receipt_id = receipt->id,
        .immediate = media_object(m) != NULL, /* the media row needs the message's real id */
    };
    rc = ct_store_message_insert(tx, &row, &message_id, &dup, payload_sha, err);
    free(payload);
    if (rc != CT_OK)
        return rc;
    if (dup) /* same wamid under another business number: keep the first, change nothing */
        return ct_err_set(err, CT_E_CONFLICT, "wamid_reused",
                          "message id %s is already stored for another contact", m->wamid);
    message_event(&ev, ticket_id, m, scope,
                  m->echo ? CT_EV_MESSAGE_ECHOED : CT_EV_MESSAGE_RECEIVED);
    data = message_data(m, message_id, receipt, payload_sha);
    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    ev.data = data;
    ct_event_text(&ev, "body", m->text, m->echo ? CT_SCOPE_STAFF : scope);
    ev.touch = true; /* the ticket's activity moves with its message, in the same statement */
    ev.touch_us = m->ts * 1000000LL;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    if (rc == CT_OK)
        rc = queue_media(tx, m, message_id, err);
    return rc;
}

/* Keeps the contact's display data current: profile name and username. A name equal to the
 * stored one would change nothing (the update only writes a different name), so it is not
 * sent at all: most messages come from a customer whose name has not changed. */
static ct_rc contact_display(struct ct_tx *tx, const struct ct_wa_message *m,
                             const struct ct_resolved *contact, struct ct_err *err)
{
    long long contact_id = contact->contact_id;
    ct_rc rc = CT_OK;
    if (m->echo)
        return CT_OK; /* an echo's contacts entry, if any, is not the customer speaking */
    if (m->profile_name != NULL &&
        !(contact->name_state == CT_NAME_SET && strcmp(contact->name, m->profile_name) == 0))
        rc = ct_store_contact_name(tx, contact_id, m->profile_name, m->ts * 1000000LL, err);
    if (rc == CT_OK && m->username != NULL)
        rc = ct_store_contact_username(tx, contact_id, m->username, m->ts * 1000000LL, err);
    return rc;
}

static ct_rc ingest_message(struct ct_tx *tx, const struct ct_wa_message *m,
                            const struct receipt *receipt, bool known,
                            struct ct_ingest_result *res, struct ct_err *err)
{
    struct ct_identity who = {m->phone_number_id, m->from, m->user_id, m->parent_user_id};
    struct ct_identity renewed = {m->phone_number_id, m->new_wa_id, m->new_user_id, NULL};
    struct ct_resolved contact, change = {0};
    struct ct_ticket_ref live = {0}, ticket;
    bool dup = false, renumbered = m->new_wa_id != NULL || m->new_user_id != NULL;
    char scope[48];
    ct_rc rc;

    /* B-ingest 6: a known wamid changes nothing, not even a contact row. Checked before the
     * contact exists (a redelivery under another number), and again under the contact's row
     * lock, which serialises concurrent deliveries about one customer; an echo of a reply
     * casetrail sent itself has that reply's wamid and changes nothing either. The first
     * check came with the receipt's insert (known) */
    if (known) {
        res->messages_duplicate++;
        return CT_OK;
    }
    rc = ct_contacts_resolve(tx, &who, &contact, err);
    if (rc != CT_OK)
        return rc;
    /* the second check, with the live ticket in the same statement; a number change may fold
     * another contact's tickets into this one, so then the ticket is looked up after it */
    if (renumbered)
        rc = ct_store_message_exists(tx, m->wamid, &dup, err);
    else
        rc = ct_store_ticket_live(tx, contact.contact_id, m->wamid, &live, &dup, err);
    if (rc == CT_OK && dup)
        res->messages_duplicate++;
    if (rc != CT_OK || dup)
        return rc;
    snprintf(scope, sizeof(scope), "contact:%lld", contact.contact_id);
    /* user_changed_number / user_changed_user_id: the same customer under new ids */
    if (renumbered) {
        rc = ct_contacts_change_ids(tx, contact.contact_id, m->phone_number_id, m->new_wa_id,
                                    m->new_user_id, &change, err);
        if (rc == CT_OK)
            rc = ct_store_ticket_live(tx, contact.contact_id, NULL, &live, &dup, err);
    }
    if (rc == CT_OK)
        rc = contact_display(tx, m, &contact, err);
    if (rc == CT_OK)
        rc = ticket_for_message(tx, m, contact.contact_id, scope, &live, &ticket, res, err);
    if (rc == CT_OK)
        rc = ct_contacts_record_link(tx, ticket.id, &who, &contact, scope, m->ts * 1000000LL,
                                     err);
    if (rc == CT_OK)
        rc = ct_contacts_record_link(tx, ticket.id, &renewed, &change, scope,
                                     m->ts * 1000000LL, err);
    if (rc == CT_OK)
        rc = store_message(tx, m, contact.contact_id, ticket.id, scope, receipt, err);
    if (rc == CT_OK && m->echo) /* a reply typed on the shop's phone is a first response too */
        rc = ct_store_ticket_first_response(tx, ticket.id, m->ts * 1000000LL, err);
    if (rc == CT_OK && !m->echo)
        rc = ct_workflow_detect_complaint(tx, &ticket, m->text, m->ts * 1000000LL, err);
    if (rc == CT_OK)
        res->messages_new++;
    return rc;
}

static ct_rc ingest_status(struct ct_tx *tx, const struct ct_wa_status *s,
                           const struct receipt *receipt,
                           struct ct_ingest_result *res, struct ct_err *err)
{
    struct ct_outbound_ref msg;
    bool found = false, dup = false;
    char *errors = NULL;
    cJSON *data = NULL;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(s->raw, "errors");
    ct_rc rc;

    rc = ct_store_outbound_lock(tx, s->wamid, &msg, &found, err);
    if (rc != CT_OK)
        return rc;
    if (!found) {
        res->statuses_unknown++;
        ct_log_info("status %s for unknown message %s kept in receipt %lld only", s->status,
                    s->wamid, receipt->id);
        return CT_OK;
    }
    if (cJSON_IsArray(errs))
        errors = cJSON_PrintUnformatted(errs);
    rc = ct_store_status_insert(tx, msg.id, s->wamid, s->status, s->ts * 1000000LL,
                                s->recipient_id, s->recipient_user_id, s->username, errors,
                                receipt->id, &dup, err);
    free(errors);
    if (rc != CT_OK)
        return rc;
    if (dup) {
        res->statuses_duplicate++;
        return CT_OK;
    }
    int have = msg.status[0] ? ct_webhook_status_rank(msg.status) : 0;
    int got = ct_webhook_status_rank(s->status);
    /* monotonic: sent < delivered < read; failed is terminal and keeps its error */
    bool applied = got > have && have < 100;
    if (applied) {
        rc = ct_store_message_set_status(tx, msg.id, s->status, s->ts * 1000000LL,
                                         s->error_code, s->error_title, err);
        if (rc != CT_OK)
            return rc;
    }
    res->statuses_new++;
    if (msg.ticket_id == 0)
        return CT_OK;
    struct ct_event_new ev;
    ct_event_begin(&ev, CT_CHAIN_TICKET, msg.ticket_id, CT_EV_MESSAGE_STATUS, &whatsapp);
    ev.from_value = msg.status[0] ? msg.status : NULL;
    ev.to_value = s->status;
    ev.occurred_us = s->ts * 1000000LL;
    data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "message_id", (double)msg.id);
    cJSON_AddStringToObject(data, "wamid", s->wamid);
    cJSON_AddBoolToObject(data, "applied", applied);
    cJSON_AddNumberToObject(data, "receipt_id", (double)receipt->id);
    cJSON_AddStringToObject(data, "receipt_sha256", receipt->sha256);
    if (s->error_code != 0)
        cJSON_AddNumberToObject(data, "error_code", s->error_code);
    ev.data = data;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}

/* A user_id_update: the customer keeps one history under the new BSUID. A customer casetrail
 * has never seen needs nothing (the raw receipt keeps the update). */
static ct_rc ingest_id_update(struct ct_tx *tx, const struct ct_wa_id_update *u,
                              struct ct_err *err)
{
    struct ct_identity renewed = {u->phone_number_id, NULL, u->new_user_id, NULL};
    struct ct_resolved change;
    long long contact_id = 0, ticket_id = 0;
    bool found = false;
    char scope[48];
    ct_rc rc = ct_contacts_find_by_user(tx, u->phone_number_id, u->old_user_id, &contact_id,
                                        &found, err);
    if (rc != CT_OK || !found)
        return rc;
    rc = ct_contacts_change_ids(tx, contact_id, u->phone_number_id, NULL, u->new_user_id,
                                &change, err);
    if (rc == CT_OK)
        rc = ct_store_ticket_latest(tx, contact_id, &ticket_id, err);
    if (rc != CT_OK || ticket_id == 0)
        return rc;
    snprintf(scope, sizeof(scope), "contact:%lld", contact_id);
    return ct_contacts_record_link(tx, ticket_id, &renewed, &change, scope,
                                   u->ts > 0 ? u->ts * 1000000LL : 0, err);
}

/* Whether err is the entry's own fault (its data), not the database's or the system's: such an
 * entry is refused alone and the rest of the batch goes on. docs/DECISIONS.md#poisoned-entries */
static bool entry_fault(const struct ct_err *err)
{
    const char *st = err->sqlstate;
    if (err->rc == CT_E_CONFLICT && !err->retryable)
        return true; /* a wamid already stored for another contact */
    /* data exception, integrity violation, program limit (an index row too large) */
    return strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 || strncmp(st, "54", 2) == 0;
}

static ct_rc record_reject(struct ct_tx *tx, long long receipt, const char *kind,
                           const char *where, const char *reason, const cJSON *raw,
                           struct ct_err *err)
{
    char *item = raw != NULL ? cJSON_PrintUnformatted(raw) : NULL;
    ct_rc rc = ct_store_reject_insert(tx, receipt, kind, where, reason, item, err);
    free(item);
    return rc;
}

/* Records the parser's rejects and the entries the database refused, beside the receipt. */
static ct_rc record_rejects(struct ct_tx *tx, struct job *j, struct ct_err *err)
{
    const struct ct_wa_batch *b = j->batch;
    long long receipt = j->res->receipt_id;
    char where[CT_WA_WHERE_MAX];
    ct_rc rc = CT_OK;

    for (size_t i = 0; rc == CT_OK && i < b->nrejects; i++) {
        const struct ct_wa_reject *r = &b->rejects[i];
        rc = record_reject(tx, receipt, r->kind, r->where, r->reason, r->raw, err);
    }
    for (size_t i = 0; rc == CT_OK && i < b->nmessages; i++) {
        if (!j->mout[i].set)
            continue;
        snprintf(where, sizeof(where), "message %s", b->messages[i].wamid);
        rc = record_reject(tx, receipt, "message", where, j->mout[i].reason, b->messages[i].raw,
                           err);
    }
    for (size_t i = 0; rc == CT_OK && i < b->nstatuses; i++) {
        if (!j->sout[i].set)
            continue;
        snprintf(where, sizeof(where), "status %s %s", b->statuses[i].wamid,
                 b->statuses[i].status);
        rc = record_reject(tx, receipt, "status", where, j->sout[i].reason, b->statuses[i].raw,
                           err);
    }
    return rc;
}

/* The receipt as it goes in: the counts of an all-new body, less the entries left out. */
static struct ct_receipt_new receipt_new(const struct job *j)
{
    const struct ct_wa_batch *b = j->batch;
    struct ct_receipt_new rn = {j->body, j->len, j->signature, 0, 0, (int)b->nrejects,
                                j->wamids, b->nmessages};
    for (size_t i = 0; i < b->nmessages; i++) {
        rn.messages += !j->mout[i].set;
        rn.rejected += j->mout[i].set;
    }
    for (size_t i = 0; i < b->nstatuses; i++) {
        rn.statuses += !j->sout[i].set;
        rn.rejected += j->sout[i].set;
    }
    return rn;
}

static ct_rc ingest_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct job *j = arg;
    const struct ct_wa_batch *b = j->batch;
    ct_rc rc = CT_OK;

    /* a retried transaction starts from zero */
    memset(j->res, 0, sizeof(*j->res));
    j->failed_on_entry = false;
    struct ct_receipt_new rn = receipt_new(j);
    if (j->receipt_stored) { /* with the rest of its group, known[] filled on the way */
        j->res->receipt_id = j->receipt.id;
        j->res->receipt_duplicate = j->receipt_dup;
    } else {
        for (size_t i = 0; i < b->nmessages; i++)
            j->known[i] = false;
        rc = ct_store_receipt_insert(tx, &rn, &j->res->receipt_id, &j->res->receipt_duplicate,
                                     j->receipt.sha256, j->known, err);
        j->receipt.id = j->res->receipt_id;
    }
    for (size_t i = 0; rc == CT_OK && i < b->nmessages; i++) {
        size_t m = j->morder[i];
        if (j->mout[m].set)
            continue;
        rc = ingest_message(tx, &b->messages[m], &j->receipt, j->known[m], j->res, err);
        if (rc != CT_OK) {
            j->failed_on_entry = true;
            j->failed_msg = true;
            j->failed_idx = m;
        }
    }
    for (size_t i = 0; rc == CT_OK && i < b->nstatuses; i++) {
        size_t s = j->sorder[i];
        if (j->sout[s].set)
            continue;
        rc = ingest_status(tx, &b->statuses[s], &j->receipt, j->res, err);
        if (rc != CT_OK) {
            j->failed_on_entry = true;
            j->failed_msg = false;
            j->failed_idx = s;
        }
    }
    for (size_t i = 0; rc == CT_OK && i < b->nid_updates; i++)
        rc = ingest_id_update(tx, &b->id_updates[i], err);
    for (size_t i = 0; i < b->nmessages; i++)
        j->res->rejected += j->mout[i].set;
    for (size_t i = 0; i < b->nstatuses; i++)
        j->res->rejected += j->sout[i].set;
    j->res->rejected += (int)b->nrejects;
    /* a redelivered body changes nothing, not even its receipt's counts or rejects */
    if (rc == CT_OK && !j->res->receipt_duplicate)
        rc = record_rejects(tx, j, err);
    /* the receipt went in with the counts of an all-new body: most are, and need no update */
    if (rc == CT_OK && !j->res->receipt_duplicate &&
        (j->res->messages_new != rn.messages || j->res->statuses_new != rn.statuses ||
         j->res->rejected != rn.rejected))
        rc = ct_store_receipt_counts(tx, j->res->receipt_id, j->res->messages_new,
                                     j->res->statuses_new, j->res->rejected, err);
    return rc;
}

/* Fills j->morder and j->sorder: rows are locked in this order. */
static bool sort_entries(struct job *j)
{
    const struct ct_wa_batch *batch = j->batch;
    size_t n = batch->nmessages > batch->nstatuses ? batch->nmessages : batch->nstatuses;
    struct key *keys = calloc(n + 1, sizeof(*keys));
    if (keys == NULL)
        return false;
    for (size_t i = 0; i < batch->nmessages; i++)
        keys[i] = (struct key){batch->messages[i].phone_number_id,
                               ct_wa_customer_id(&batch->messages[i]), i};
    sorted_order(keys, batch->nmessages, j->morder);
    for (size_t i = 0; i < batch->nstatuses; i++)
        keys[i] = (struct key){batch->statuses[i].wamid, "", i};
    sorted_order(keys, batch->nstatuses, j->sorder);
    free(keys);
    return true;
}

/* Allocates j's per-entry arrays and the lock order for batch; false when out of memory
 * (job_free still frees what was allocated). */
static bool job_init(struct job *j, const char *body, size_t len, const char *signature,
                     const struct ct_wa_batch *batch, struct ct_ingest_result *result)
{
    memset(j, 0, sizeof(*j));
    j->body = body;
    j->len = len;
    j->signature = signature;
    j->batch = batch;
    j->res = result;
    j->morder = calloc(batch->nmessages + 1, sizeof(size_t));
    j->sorder = calloc(batch->nstatuses + 1, sizeof(size_t));
    j->mout = calloc(batch->nmessages + 1, sizeof(*j->mout));
    j->sout = calloc(batch->nstatuses + 1, sizeof(*j->sout));
    j->known = calloc(batch->nmessages + 1, sizeof(*j->known));
    if (batch->nmessages > 0) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr != NULL && i < batch->nmessages; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(batch->messages[i].wamid != NULL
                                                              ? batch->messages[i].wamid
                                                              : ""));
        j->wamids = arr != NULL ? cJSON_PrintUnformatted(arr) : NULL;
        cJSON_Delete(arr);
        if (j->wamids == NULL)
            return false;
    }
    return j->morder != NULL && j->sorder != NULL && j->mout != NULL && j->sout != NULL &&
           j->known != NULL && sort_entries(j);
}

static void job_free(struct job *j)
{
    free(j->morder);
    free(j->sorder);
    free(j->mout);
    free(j->sout);
    free(j->known);
    free(j->wamids);
}

/* After an attempt failed with err: when the failure was one entry's own (its data), leaves
 * that entry out of the next attempt, recorded as a reject, and says to try again. */
static bool exclude_failed_entry(struct job *j, const struct ct_err *err)
{
    if (!j->failed_on_entry || !entry_fault(err))
        return false;
    const struct ct_wa_batch *batch = j->batch;
    struct excluded *x = j->failed_msg ? &j->mout[j->failed_idx] : &j->sout[j->failed_idx];
    if (x->set)
        return false; /* refused again without it: not that entry's doing */
    x->set = true;
    snprintf(x->reason, sizeof(x->reason), "could not be stored (%.8s): %.150s",
             err->sqlstate[0] ? err->sqlstate : err->code, err->message);
    ct_log_warn("webhook entry %s refused by the database (%s): stored without it",
                j->failed_msg ? batch->messages[j->failed_idx].wamid
                              : batch->statuses[j->failed_idx].wamid,
                err->code);
    return true;
}

static size_t job_entries(const struct job *j)
{
    return j->batch->nmessages + j->batch->nstatuses;
}

ct_rc ct_ingest_commit(struct ct_pool *pool, const char *body, size_t len, const char *signature,
                       const struct ct_wa_batch *batch, struct ct_ingest_result *result,
                       struct ct_err *err)
{
    struct job j;
    size_t attempts = batch->nmessages + batch->nstatuses + 1;
    ct_rc rc;

    if (!job_init(&j, body, len, signature, batch, result)) {
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        goto out;
    }
    /* An entry the database refuses for its own data fails the whole transaction; run it again
     * without that entry (recorded as a reject), at most once per entry. Anything else (the
     * database down or busy) fails the webhook: 503, and Meta redelivers it. */
    for (;;) {
        rc = ct_store_in_tx(pool, ingest_tx, &j, err);
        if (rc == CT_OK || --attempts == 0 || !exclude_failed_entry(&j, err))
            break;
    }
out:
    job_free(&j);
    return rc;
}

/* ---- group commit ---------------------------------------------------------------------------
 * Webhooks that arrive together share one transaction and one WAL flush. The lanes are threads
 * that share one queue: a lane that is free takes everything waiting as its next group (no
 * timer: a lone webhook goes at once). While the machine keeps up, lanes are free and groups
 * stay small, so webhooks commit in parallel; when it cannot, every lane is busy, the queue
 * grows, and the next free lane takes it all, so groups grow with the load and the set-based
 * writes pay most where they are needed. A group runs its webhooks in customer order: locks
 * are taken in one order across groups and instances. */

#define KEY_MAX 200

struct pending {
    struct job j;
    char key[KEY_MAX]; /* lock order: first customer (or status wamid) */
    unsigned long hash; /* of key: a customer in one lane's group at a time */
    size_t seqno;      /* arrival, to keep order among equal keys */
    ct_rc rc;
    struct ct_err err;
    bool active; /* still in its group's next attempt */
    /* posted once its group is over, after the lane let go of ing->mu: its submitter wakes
     * without taking the queue's lock (a condition variable would make every woken worker
     * queue up for the mutex the lane still holds: a futex sleep and a wakeup more each) */
    sem_t done;
    struct pending *next;
};

struct lane {
    struct pending **group; /* the lane thread's: the group it commits now */
    unsigned long *busy;    /* its webhooks' key hashes, while it commits (under ing->mu) */
    size_t nbusy;
    pthread_t thread;
    struct ct_ingester *ing;
};

struct ct_ingester {
    struct ct_pool *pool;
    int nlanes, max_group; /* nlanes: set before any lane starts, read by them */
    int started;           /* lane threads running; the starting thread's alone */
    size_t max_bytes;
    struct lane *lanes;
    pthread_mutex_t mu; /* guards the queue, seq, stop and the lanes' busy keys */
    pthread_cond_t work;
    struct pending *head, *tail;
    size_t seq;
    bool stop;
    atomic_llong groups, grouped; /* for the metrics: groups committed, webhooks in them */
    atomic_llong unbatched;       /* groups written again row by row after a batched failure */
    atomic_llong preloaded;       /* contacts locked ahead by committed groups' preloads */
    bool batched;                 /* groups' messages and events written set-based */
};

struct group {
    struct pending **p;
    size_t n;
    struct pending *failed; /* the webhook whose step failed the last attempt */
    bool batched;           /* this attempt writes set-based (receipts, messages, events) */
    size_t preloaded;       /* contacts this attempt's preload locked */
};

/* Whether a failure of a batched group is worth one attempt written row by row: held-back
 * writes fail for the whole group (a wamid raced in by another transaction, a row the
 * database refuses), before COMMIT or at a statement that needed them written first, and only
 * the unbatched run tells whose entry it was. A database that is down fails both. */
static bool retry_unbatched(ct_rc rc)
{
    return rc != CT_OK && rc != CT_E_UNAVAILABLE;
}

static int cmp_pending(const void *x, const void *y)
{
    const struct pending *a = *(struct pending *const *)x, *b = *(struct pending *const *)y;
    int c = strcmp(a->key, b->key);
    return c != 0 ? c : (a->seqno > b->seqno) - (a->seqno < b->seqno);
}

static void batch_key(const struct ct_wa_batch *b, char out[KEY_MAX])
{
    if (b->nmessages > 0)
        snprintf(out, KEY_MAX, "m%s\x1f%s", b->messages[0].phone_number_id,
                 ct_wa_customer_id(&b->messages[0]));
    else if (b->nstatuses > 0)
        snprintf(out, KEY_MAX, "s%s", b->statuses[0].wamid);
    else
        out[0] = '\0';
}

/* Bodies up to this size have their receipts stored together, in one statement; a larger one
 * (rare: Meta's webhooks are a few KiB) alone, so the statement stays small. */
#define GROUP_RECEIPT_MAX (64 * 1024)

/* A batched group's questions before its messages, asked together (ct_store_group_open):
 * its active webhooks' receipts stored (each job's receipt fields as its own insert would have
 * set them), the complaint rule each customer text matches, and the contacts its messages name
 * locked with their live tickets. A message whose wamid turns out to be stored has its
 * contact locked all the same: the receipts' answer comes in the same round trip. */
struct opening {
    struct ct_group_open q;
    struct ct_receipt_new *rs;
    struct ct_receipt_out *out;
    struct job **jobs; /* jobs[i]: whose receipt rs[i] is */
    const char **texts;
    struct ct_preload_key *keys;
};

static void opening_free(struct opening *o)
{
    free(o->rs);
    free(o->out);
    free(o->jobs);
    free(o->texts);
    free(o->keys);
}

static bool opening_init(struct opening *o, struct group *g)
{
    size_t cap = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->p[i]->active)
            cap += g->p[i]->j.batch->nmessages;
    memset(o, 0, sizeof(*o));
    o->rs = calloc(g->n + 1, sizeof(*o->rs));
    o->out = calloc(g->n + 1, sizeof(*o->out));
    o->jobs = calloc(g->n + 1, sizeof(*o->jobs));
    o->texts = calloc(cap + 1, sizeof(*o->texts));
    o->keys = calloc(cap + 1, sizeof(*o->keys));
    if (o->rs == NULL || o->out == NULL || o->jobs == NULL || o->texts == NULL || o->keys == NULL)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        struct job *j = &g->p[i]->j;
        if (!g->p[i]->active)
            continue;
        if (j->len <= GROUP_RECEIPT_MAX) {
            size_t r = o->q.nreceipts++;
            for (size_t m = 0; m < j->batch->nmessages; m++)
                j->known[m] = false;
            o->jobs[r] = j;
            o->rs[r] = receipt_new(j);
            o->out[r].known = j->known;
        }
        for (size_t m = 0; m < j->batch->nmessages; m++) {
            const struct ct_wa_message *msg = &j->batch->messages[m];
            if (j->mout[m].set)
                continue;
            if (!msg->echo && ct_text_present(msg->text))
                o->texts[o->q.ntexts++] = msg->text;
            o->keys[o->q.nkeys++] = (struct ct_preload_key){msg->phone_number_id, msg->from,
                                                             msg->user_id, msg->wamid};
        }
    }
    o->q.receipts = o->rs;
    o->q.receipts_out = o->out;
    o->q.texts = o->texts;
    o->q.keys = o->keys;
    return true;
}

static ct_rc group_open(struct ct_tx *tx, struct group *g, struct ct_err *err)
{
    struct opening o;
    ct_rc rc = CT_OK;

    if (!opening_init(&o, g))
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    else
        rc = ct_store_group_open(tx, &o.q, err);
    for (size_t i = 0; rc == CT_OK && i < o.q.nreceipts; i++) {
        struct job *j = o.jobs[i];
        j->receipt_stored = true;
        j->receipt.id = o.out[i].id;
        j->receipt_dup = o.out[i].dup;
        memcpy(j->receipt.sha256, o.out[i].sha256, sizeof(o.out[i].sha256));
    }
    if (rc == CT_OK)
        g->preloaded = o.q.locked;
    opening_free(&o);
    return rc;
}

static ct_rc group_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct group *g = arg;
    g->failed = NULL;
    g->preloaded = 0;
    for (size_t i = 0; i < g->n; i++)
        g->p[i]->j.receipt_stored = false;
    if (g->batched) {
        ct_rc rc = group_open(tx, g, err);
        if (rc != CT_OK)
            return rc; /* nobody's in particular: the group goes again row by row */
    }
    for (size_t i = 0; i < g->n; i++) {
        if (!g->p[i]->active)
            continue;
        ct_rc rc = ingest_tx(tx, &g->p[i]->j, err);
        if (rc != CT_OK) {
            g->failed = g->p[i];
            return rc;
        }
    }
    return CT_OK;
}

/* Commits a group: a webhook whose own data or step fails the transaction is answered alone
 * (or run again without the refused entry) and the rest go again without it; a failure that
 * is nobody's in particular (the database down) answers them all. */
static void run_group(struct ct_ingester *ing, struct pending **p, size_t n)
{
    struct group g = {p, n, NULL, false, 0};
    struct ct_err err = {0};
    size_t attempts = 1, active = n;
    /* a webhook alone goes row by row: the set-based statements cost more to run for one row
     * than the round trips they save (bench/ab, singles batched against not: 0.993 vs 1.054) */
    bool batched = ing->batched && n > 1;

    qsort(p, n, sizeof(*p), cmp_pending);
    for (size_t i = 0; i < n; i++) {
        p[i]->active = true;
        attempts += job_entries(&p[i]->j) + 1;
    }
    while (active > 0) {
        g.batched = batched;
        ct_rc rc = batched ? ct_store_in_tx_batched(ing->pool, group_tx, &g, &err)
                           : ct_store_in_tx(ing->pool, group_tx, &g, &err);
        struct pending *f = g.failed;
        if (batched && retry_unbatched(rc)) {
            batched = false;
            atomic_fetch_add(&ing->unbatched, 1);
            continue;
        }
        if (rc == CT_OK || f == NULL || rc == CT_E_UNAVAILABLE || --attempts == 0) {
            for (size_t i = 0; i < n; i++) {
                if (p[i]->active) {
                    p[i]->rc = rc;
                    p[i]->err = err;
                }
            }
            if (rc == CT_OK) {
                atomic_fetch_add(&ing->groups, 1);
                atomic_fetch_add(&ing->grouped, (long long)active);
                atomic_fetch_add(&ing->preloaded, (long long)g.preloaded);
            }
            return;
        }
        if (exclude_failed_entry(&f->j, &err))
            continue;
        f->rc = rc;
        f->err = err;
        f->active = false;
        active--;
    }
}

static unsigned long key_hash(const char *key)
{
    unsigned long h = 5381; /* djb2: telling a few dozen customers apart needs nothing more */
    for (const unsigned char *c = (const unsigned char *)key; *c != '\0'; c++)
        h = h * 33 + *c;
    return h;
}

/* Whether a lane other than self commits a webhook of this customer now. A customer's webhooks
 * wait for that commit rather than join another group, so they are stored in arrival order
 * and two lanes never wait on each other's contact locks. */
static bool busy_elsewhere(const struct ct_ingester *ing, const struct lane *self,
                           unsigned long hash)
{
    for (int i = 0; i < ing->nlanes; i++) {
        const struct lane *l = &ing->lanes[i];
        for (size_t k = 0; l != self && k < l->nbusy; k++)
            if (l->busy[k] == hash)
                return true;
    }
    return false;
}

/* Moves what self may take from the queue into its group, in arrival order, skipping the
 * customers other lanes are committing (and so each customer's later webhooks too); returns
 * how many. Under ing->mu. */
static size_t take_group(struct ct_ingester *ing, struct lane *self)
{
    size_t n = 0, bytes = 0;
    struct pending *prev = NULL, *x = ing->head;
    while (x != NULL && (int)n < ing->max_group) {
        struct pending *next = x->next;
        if (busy_elsewhere(ing, self, x->hash) || (n > 0 && bytes + x->j.len > ing->max_bytes)) {
            prev = x;
            x = next;
            continue;
        }
        if (prev != NULL)
            prev->next = next;
        else
            ing->head = next;
        if (ing->tail == x)
            ing->tail = prev;
        x->next = NULL;
        bytes += x->j.len;
        self->group[n] = x;
        self->busy[n] = x->hash;
        n++;
        x = next;
    }
    self->nbusy = n;
    return n;
}

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    struct ct_ingester *ing = l->ing;

    pthread_mutex_lock(&ing->mu);
    for (;;) {
        size_t n = 0;
        while (!(ing->head == NULL && ing->stop) && (n = take_group(ing, l)) == 0)
            pthread_cond_wait(&ing->work, &ing->mu);
        if (n == 0)
            break; /* stopping, and nothing is left */
        if (ing->head != NULL)
            pthread_cond_signal(&ing->work); /* what is left: another free lane's */
        pthread_mutex_unlock(&ing->mu);
        run_group(ing, l->group, n);
        /* a posted pending is its submitter's again (it lives on that thread's stack) */
        for (size_t i = 0; i < n; i++)
            sem_post(&l->group[i]->done);
        pthread_mutex_lock(&ing->mu);
        l->nbusy = 0;
        if (ing->head != NULL) /* webhooks that waited for this group's customers */
            pthread_cond_broadcast(&ing->work);
    }
    pthread_mutex_unlock(&ing->mu);
    return NULL;
}

struct ct_ingester *ct_ingester_start(struct ct_pool *pool, int lanes, int max_group,
                                      size_t max_bytes, bool batched)
{
    struct ct_ingester *ing = calloc(1, sizeof(*ing));
    if (ing == NULL)
        return NULL;
    ing->pool = pool;
    ing->max_group = max_group < 1 ? 1 : max_group;
    ing->max_bytes = max_bytes;
    ing->batched = batched;
    pthread_mutex_init(&ing->mu, NULL);
    pthread_cond_init(&ing->work, NULL);
    ing->lanes = calloc((size_t)lanes, sizeof(*ing->lanes));
    if (ing->lanes == NULL) {
        ct_ingester_stop(ing);
        return NULL;
    }
    ing->nlanes = lanes;
    for (int i = 0; i < lanes; i++) {
        struct lane *l = &ing->lanes[i];
        l->ing = ing;
        l->group = calloc((size_t)ing->max_group, sizeof(*l->group));
        l->busy = calloc((size_t)ing->max_group, sizeof(*l->busy));
        if (l->group == NULL || l->busy == NULL ||
            pthread_create(&l->thread, NULL, lane_main, l) != 0) {
            free(l->group);
            free(l->busy);
            ct_ingester_stop(ing); /* joins the lanes started so far */
            return NULL;
        }
        ing->started = i + 1;
    }
    return ing;
}

void ct_ingester_stop(struct ct_ingester *ing)
{
    if (ing == NULL)
        return;
    pthread_mutex_lock(&ing->mu);
    ing->stop = true;
    pthread_cond_broadcast(&ing->work);
    pthread_mutex_unlock(&ing->mu);
    for (int i = 0; i < ing->started; i++) {
        pthread_join(ing->lanes[i].thread, NULL);
        free(ing->lanes[i].group);
        free(ing->lanes[i].busy);
    }
    pthread_cond_destroy(&ing->work);
    pthread_mutex_destroy(&ing->mu);
    free(ing->lanes);
    free(ing);
}

void ct_ingester_stats(struct ct_ingester *ing, struct ct_ingest_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (ing == NULL)
        return;
    out->groups = atomic_load(&ing->groups);
    out->webhooks = atomic_load(&ing->grouped);
    out->unbatched = atomic_load(&ing->unbatched);
    out->preloaded = atomic_load(&ing->preloaded);
}

ct_rc ct_ingest_submit(struct ct_ingester *ing, struct ct_pool *pool, const char *body,
                       size_t len, const char *signature, const struct ct_wa_batch *batch,
                       struct ct_ingest_result *result, struct ct_err *err)
{
    if (ing == NULL)
        return ct_ingest_commit(pool, body, len, signature, batch, result, err);
    struct pending x;
    memset(&x, 0, sizeof(x));
    if (!job_init(&x.j, body, len, signature, batch, result)) {
        job_free(&x.j);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    batch_key(batch, x.key);
    x.hash = key_hash(x.key);
    if (sem_init(&x.done, 0, 0) != 0) {
        job_free(&x.j);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not make a semaphore");
    }
    pthread_mutex_lock(&ing->mu);
    x.seqno = ing->seq++;
    if (ing->tail != NULL)
        ing->tail->next = &x;
    else
        ing->head = &x;
    ing->tail = &x;
    pthread_cond_signal(&ing->work);
    pthread_mutex_unlock(&ing->mu);
    while (sem_wait(&x.done) != 0) /* only EINTR: a signal handler ran */
        ;
    sem_destroy(&x.done);
    job_free(&x.j);
    if (x.rc != CT_OK)
        *err = x.err;
    return x.rc;
}
