/* outbound.c: queueing agent replies: rules, the 24-hour window, idempotency, and the message,
 * outbox row and event in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/graph.h"
#include "casetrail/outbound.h"
#include "casetrail/store.h"
#include "casetrail/text.h"
#include "casetrail/tickets.h"

struct job {
    const struct ct_user *actor;
    const struct ct_reply_request *r;
    struct ct_reply_answer *out;
};

/* An agent replying on an unassigned ticket takes it first, as the assign action would. */
static ct_rc take(struct ct_tx *tx, const struct ct_user *actor, const struct ct_ticket_ref *t,
                  struct ct_err *err)
{
    struct ct_event_new ev;
    char idbuf[24], to[24];
    struct ct_actor who = ct_actor_staff(actor, idbuf);
    ct_rc rc = ct_store_ticket_set_assignee(tx, t->id, actor->id, err);

    if (rc != CT_OK)
        return rc;
    ct_event_begin(&ev, CT_CHAIN_TICKET, t->id, CT_EV_ASSIGNMENT, &who);
    snprintf(to, sizeof(to), "%lld", actor->id);
    ev.to_value = to;
    ct_event_text(&ev, "note", "took the ticket to reply", CT_SCOPE_STAFF);
    rc = ct_store_event_append(tx, &ev, NULL, err);
    if (rc != CT_OK || t->status != CT_ST_NEW)
        return rc;
    rc = ct_store_ticket_set_status(tx, t->id, CT_ST_OPEN, err);
    if (rc != CT_OK)
        return rc;
    ct_event_begin(&ev, CT_CHAIN_TICKET, t->id, CT_EV_STATUS, &who);
    ev.from_value = ct_status_name(CT_ST_NEW);
    ev.to_value = ct_status_name(CT_ST_OPEN);
    return ct_store_event_append(tx, &ev, NULL, err);
}

/* The Graph request body for r to target. */
static char *graph_body(const struct ct_reply_request *r, const struct ct_reply_target *target)
{
    const char *to = target->wa_id[0] != '\0' ? target->wa_id : NULL;
    const char *user = target->user_id[0] != '\0' ? target->user_id : NULL;
    if (r->is_template)
        return ct_graph_template_json(to, user, r->template_name, r->language,
                                      r->components_json);
    if (r->media_kind != NULL)
        return ct_graph_media_json(to, user, r->media_kind, r->media_link, r->text, r->filename,
                                   r->reply_to);
    return ct_graph_text_json(to, user, r->text, r->reply_to);
}

static const char *reply_type(const struct ct_reply_request *r)
{
    if (r->is_template)
        return "template";
    return r->media_kind != NULL ? r->media_kind : "text";
}

static ct_rc record_queued(struct ct_tx *tx, struct job *j, const struct ct_ticket_ref *t,
                           long long message_id, long long outbox_id, struct ct_err *err)
{
    struct ct_event_new ev;
    char idbuf[24];
    struct ct_actor who = ct_actor_staff(j->actor, idbuf);
    cJSON *data = cJSON_CreateObject();
    ct_rc rc;

    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    ct_event_begin(&ev, CT_CHAIN_TICKET, t->id, CT_EV_MESSAGE_QUEUED, &who);
    ev.to_value = "queued";
    cJSON_AddNumberToObject(data, "message_id", (double)message_id);
    cJSON_AddNumberToObject(data, "outbox_id", (double)outbox_id);
    cJSON_AddStringToObject(data, "type", reply_type(j->r));
    if (j->r->media_kind != NULL) /* what the customer was sent is part of the record */
        cJSON_AddStringToObject(data, "link", j->r->media_link);
    if (j->r->filename != NULL)
        cJSON_AddStringToObject(data, "filename", j->r->filename);
    if (j->r->is_template) {
        cJSON_AddStringToObject(data, "template", j->r->template_name);
        cJSON_AddStringToObject(data, "language", j->r->language);
    }
    if (j->r->reply_to != NULL)
        cJSON_AddStringToObject(data, "reply_to", j->r->reply_to);
    ev.data = data;
    ct_event_text(&ev, "body", j->r->is_template ? j->r->shown : j->r->text, CT_SCOPE_STAFF);
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}

/* Answers with the stored answer of the key, or refuses a different body under it. */
static ct_rc replay(struct ct_tx *tx, struct job *j, bool *done, struct ct_err *err)
{
    char sha[65];
    int status = 0;
    char *response = NULL;
    bool found = false;
    ct_rc rc = ct_store_idempotency_lock(tx, j->actor->id, j->r->idempotency_key, err);

    if (rc == CT_OK)
        rc = ct_store_idempotency_get(tx, j->actor->id, j->r->idempotency_key, &found, sha,
                                      &status, &response, err);
    *done = found;
    if (rc != CT_OK || !found)
        return rc;
    if (strcmp(sha, j->r->request_sha256) != 0) {
        free(response);
        return ct_err_set(err, CT_E_UNPROCESSABLE, "idempotency_mismatch",
                          "this Idempotency-Key was used with a different request body");
    }
    free(j->out->body);
    j->out->status = status;
    j->out->body = response;
    return CT_OK;
}

static ct_rc queue_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct job *j = arg;
    const struct ct_reply_request *r = j->r;
    struct ct_ticket_ref t;
    struct ct_reply_target target;
    long long message_id = 0, outbox_id = 0;
    bool done = false, found = true;
    char *body = NULL;
    cJSON *answer = NULL;
    ct_rc rc = CT_OK;

    if (r->idempotency_key != NULL)
        rc = replay(tx, j, &done, err);
    if (rc != CT_OK || done)
        return rc;
    rc = ct_store_ticket_lock(tx, r->ticket_id, &t, err);
    if (rc == CT_OK)
        rc = ct_tickets_check_actor(j->actor, &t, CT_ACT_REPLY, err);
    if (rc == CT_OK && j->actor->role == CT_ROLE_AGENT && t.assignee_id == 0)
        rc = take(tx, j->actor, &t, err);
    if (rc == CT_OK)
        rc = ct_store_reply_target(tx, t.id, &target, err);
    if (rc == CT_OK && !r->is_template)
        rc = ct_tickets_check_window(target.has_inbound, target.last_inbound_us,
                                     ct_store_now_us(), err);
    if (rc == CT_OK && r->reply_to != NULL)
        rc = ct_store_message_in_ticket(tx, t.id, r->reply_to, &found, err);
    if (rc == CT_OK && !found)
        rc = ct_err_set(err, CT_E_UNPROCESSABLE, "unknown_reply_to",
                        "reply_to names no message of ticket %lld", t.id);
    if (rc != CT_OK)
        return rc;
    body = graph_body(r, &target);
    if (body == NULL)
        return ct_err_set(err, CT_E_UNPROCESSABLE, "no_recipient",
                          "the customer has neither a phone number nor a user id to reply to");
    struct ct_outbound_new m = {
        .ticket_id = t.id, .contact_id = target.contact_id, .author_id = j->actor->id,
        .type = reply_type(r), .text = r->is_template ? r->shown : r->text,
        .graph_body = body, .context_wamid = r->reply_to,
        .phone_number_id = target.phone_number_id,
        .recipient = target.wa_id[0] != '\0' ? target.wa_id : target.user_id,
    };
    rc = ct_store_outbound_queue(tx, &m, &message_id, &outbox_id, err);
    free(body);
    if (rc == CT_OK)
        rc = record_queued(tx, j, &t, message_id, outbox_id, err);
    if (rc == CT_OK)
        rc = ct_store_ticket_touch(tx, t.id, 0, err);
    if (rc == CT_OK)
        rc = ct_store_outbound_get(tx, message_id, &answer, err);
    if (rc != CT_OK)
        return rc;
    free(j->out->body); /* a retried transaction starts over */
    j->out->body = cJSON_PrintUnformatted(answer);
    j->out->status = 202;
    cJSON_Delete(answer);
    if (j->out->body == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    if (r->idempotency_key != NULL)
        rc = ct_store_idempotency_put(tx, j->actor->id, r->idempotency_key, r->request_sha256,
                                      202, j->out->body, err);
    return rc;
}

ct_rc ct_outbound_queue(struct ct_pool *pool, const struct ct_user *actor,
                        const struct ct_reply_request *r, struct ct_reply_answer *out,
                        struct ct_err *err)
{
    struct job j = {actor, r, out};
    ct_rc rc = CT_OK;

    memset(out, 0, sizeof(*out));
    if (!r->is_template && (r->media_kind == NULL || r->text != NULL))
        rc = ct_tickets_check_reply_text(r->text, err);
    if (rc == CT_OK && r->idempotency_key != NULL &&
        (r->idempotency_key[0] == '\0' || strlen(r->idempotency_key) > CT_IDEMPOTENCY_KEY_MAX))
        rc = ct_err_set(err, CT_E_INVALID, "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 bytes");
    if (rc == CT_OK)
        rc = ct_store_in_tx(pool, queue_tx, &j, err);
    if (rc != CT_OK) {
        free(out->body);
        out->body = NULL;
    }
    return rc;
}

struct read_job {
    long long ticket_id, user_id;
};

static ct_rc mark_read_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct read_job *j = arg;
    struct ct_read_target t;
    bool found;
    char *body;
    ct_rc rc = ct_store_read_target(tx, j->ticket_id, &t, &found, err);

    if (rc != CT_OK || !found)
        return rc;
    body = ct_graph_read_json(t.wamid);
    if (body == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    rc = ct_store_read_mark_queue(tx, &t, body, j->user_id, err);
    free(body);
    return rc;
}

ct_rc ct_outbound_mark_read(struct ct_pool *pool, const struct ct_user *actor, long long ticket_id,
                            struct ct_err *err)
{
    struct read_job j = {ticket_id, actor->id};
    return ct_store_in_tx(pool, mark_read_tx, &j, err);
}
