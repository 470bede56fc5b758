/* sender.c: delivery of queued replies. Claim, send and record are three steps so no database
 * transaction is held open across a network call; the price is one at-least-once window
 * (docs/DECISIONS.md#replies): a process killed after Graph accepted a message and before
 * its wamid was stored sends it again after the restart. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "casetrail/crew.h"
#include "casetrail/graph.h"
#include "casetrail/log.h"
#include "casetrail/metrics.h"
#include "casetrail/sender.h"
#include "casetrail/store.h"

struct ct_sender {
    struct ct_pool *pool;
    struct ct_metrics *metrics;
    struct ct_sender_config cfg;
    struct ct_crew crew;
    atomic_bool token_alarm;  /* 190 (token expired or revoked) was logged once */
};

static const struct ct_actor whatsapp = {CT_ACTOR_SYSTEM, "whatsapp", NULL, NULL};

/* xorshift: each thread its own state, so jitter needs no shared random generator */
static unsigned long long next_random(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The delay before attempt n+1: doubling from backoff_ms, capped at 5 minutes, with +-20%
 * jitter so many replies that failed together do not come back together; never sooner than
 * Graph's Retry-After, and for the pair rate limit (131056) about the pacing interval. */
static long retry_delay(const struct ct_sender_config *cfg, const struct ct_graph_result *r,
                        int attempts, unsigned long long *seed)
{
    long delay = cfg->backoff_ms;
    for (int i = 1; i < attempts && delay < 300000; i++)
        delay *= 2;
    if (delay > 300000)
        delay = 300000;
    if (r->code == 131056 && delay < cfg->pace_ms)
        delay = cfg->pace_ms;
    delay += (long)(next_random(seed) % (unsigned long long)(delay / 5 + 1)) - delay / 10;
    if (r->retry_after_s * 1000 > delay)
        delay = r->retry_after_s * 1000;
    return delay;
}

struct outcome {
    const struct ct_outbox_job *job;
    const struct ct_graph_result *result;
    bool final_failure;
    long delay_ms;
};

static ct_rc record_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct outcome *o = arg;
    const struct ct_graph_result *r = o->result;
    struct ct_event_new ev;
    cJSON *data;
    ct_rc rc;

    if (r->outcome == CT_GRAPH_RETRY && !o->final_failure)
        return ct_store_outbox_retry(tx, o->job, o->delay_ms, r->title, err);
    if (o->job->read_mark) /* blue ticks change no ticket: the outbox row is the record */
        return r->outcome == CT_GRAPH_SENT ? ct_store_outbox_sent(tx, o->job, "", err)
                                           : ct_store_outbox_failed(tx, o->job, r->code,
                                                                    r->title, err);
    if (r->outcome == CT_GRAPH_SENT)
        rc = ct_store_outbox_sent(tx, o->job, r->wamid, err);
    else
        rc = ct_store_outbox_failed(tx, o->job, r->code, r->title, err);
    if (rc == CT_OK && r->outcome == CT_GRAPH_SENT)
        rc = ct_store_ticket_first_response(tx, o->job->ticket_id, ct_store_now_us(), err);
    if (rc != CT_OK)
        return rc;
    data = cJSON_CreateObject();
    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    cJSON_AddNumberToObject(data, "message_id", (double)o->job->message_id);
    cJSON_AddNumberToObject(data, "attempts", o->job->attempts);
    ct_event_begin(&ev, CT_CHAIN_TICKET, o->job->ticket_id,
                   r->outcome == CT_GRAPH_SENT ? CT_EV_MESSAGE_SENT : CT_EV_MESSAGE_FAILED,
                   &whatsapp);
    ev.from_value = "queued";
    if (r->outcome == CT_GRAPH_SENT) {
        ev.to_value = "sent";
        cJSON_AddStringToObject(data, "wamid", r->wamid);
    } else {
        ev.to_value = "failed";
        if (r->code != 0)
            cJSON_AddNumberToObject(data, "error_code", r->code);
        if (r->http_status != 0)
            cJSON_AddNumberToObject(data, "http_status", (double)r->http_status);
        ct_event_text(&ev, "error_title", r->title[0] ? r->title : NULL, CT_SCOPE_STAFF);
    }
    ev.data = data;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}

struct claim_job {
    const struct ct_sender_config *cfg;
    struct ct_outbox_job job;
    bool found;
};

static ct_rc claim_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct claim_job *c = arg;
    free(c->job.body); /* a retried transaction starts over */
    c->job.body = NULL;
    return ct_store_outbox_claim(tx, c->cfg->pace_ms, c->cfg->rate_per_s, &c->job, &c->found,
                                 err);
}

struct stats_job {
    long long depth;
    double oldest;
};

static ct_rc stats_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct stats_job *s = arg;
    return ct_store_outbox_stats(tx, &s->depth, &s->oldest, err);
}

static void note_result(struct ct_sender *s, const struct ct_outbox_job *job,
                        const struct ct_graph_result *r, bool final_failure)
{
    bool failed = final_failure || r->outcome == CT_GRAPH_FAILED;
    if (r->outcome == CT_GRAPH_SENT) {
        ct_metrics_count(s->metrics, job->read_mark ? CT_COUNTER_READS_SENT
                                                    : CT_COUNTER_SENDS_SENT, 1);
        return;
    }
    if (job->read_mark && failed)
        ct_metrics_count(s->metrics, CT_COUNTER_READS_FAILED, 1);
    else if (!job->read_mark)
        ct_metrics_count(s->metrics, failed ? CT_COUNTER_SENDS_FAILED : CT_COUNTER_SENDS_RETRIED,
                         1);
    if (r->code != 0)
        ct_metrics_graph_error(s->metrics, r->code);
    /* an expired or revoked token fails every send: say so loudly, once */
    if (r->code == 190 && !atomic_exchange(&s->token_alarm, true))
        ct_log_error("WHATSAPP_ACCESS_TOKEN was refused by Graph (code 190: expired or revoked):"
                     " no reply can be sent until it is replaced");
    ct_log_warn("%s %lld (outbox %lld, attempt %d): %s, HTTP %ld, code %d: %s%s%s",
                job->read_mark ? "read mark of message" : "reply", job->message_id, job->id,
                job->attempts,
                r->outcome == CT_GRAPH_RETRY && !final_failure ? "will retry" : "failed",
                r->http_status, r->code, r->title, r->fbtrace_id[0] ? " fbtrace " : "",
                r->fbtrace_id);
}

static void *run(void *arg)
{
    struct ct_sender *s = arg;
    struct ct_graph_options opt = {s->cfg.graph_url, s->cfg.token, s->cfg.connect_timeout_ms,
                                   s->cfg.total_timeout_ms};
    struct ct_graph *g = ct_graph_new(&opt);
    unsigned long long seed = (unsigned long long)time(NULL) ^ (unsigned long long)(size_t)&opt;
    time_t last_stats = 0;

    if (g == NULL) {
        ct_log_error("a sender thread could not start its Graph client");
        return NULL;
    }
    seed |= 1;
    while (!ct_crew_stopping(&s->crew)) {
        struct claim_job c = {&s->cfg, {0}, false};
        struct ct_graph_result r;
        struct ct_err err;

        if (time(NULL) != last_stats) {
            struct stats_job st = {0, 0};
            last_stats = time(NULL);
            if (ct_store_with_conn(s->pool, stats_tx, &st, &err) == CT_OK)
                ct_metrics_outbox(s->metrics, st.depth, st.oldest);
        }
        if (ct_store_in_tx(s->pool, claim_tx, &c, &err) != CT_OK || !c.found) {
            free(c.job.body);
            ct_crew_nap(&s->crew, 200);
            continue;
        }
        ct_graph_send(g, c.job.phone_number_id, c.job.body, &r);
        if (r.outcome == CT_GRAPH_SENT && r.wamid[0] == '\0' && !c.job.read_mark) {
            /* {"success": true} answers a read mark, never a message */
            r.outcome = CT_GRAPH_FAILED;
            snprintf(r.title, sizeof(r.title), "answer without a message id");
        }
        bool final_failure = r.outcome == CT_GRAPH_RETRY && c.job.attempts >= s->cfg.max_attempts;
        struct outcome o = {&c.job, &r, final_failure,
                            retry_delay(&s->cfg, &r, c.job.attempts, &seed)};
        note_result(s, &c.job, &r, final_failure);
        /* recording must not be lost to a database hiccup: the send already happened */
        for (int i = 0; i < 50 && ct_store_in_tx(s->pool, record_tx, &o, &err) != CT_OK; i++) {
            ct_log_warn("could not record reply %lld: %s; trying again", c.job.message_id,
                        err.message);
            ct_crew_nap(&s->crew, 200);
        }
        free(c.job.body);
    }
    ct_graph_free(g);
    return NULL;
}

struct recover_job {
    int n;
};

static ct_rc recover_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct recover_job *j = arg;
    return ct_store_outbox_recover(tx, &j->n, err);
}

struct ct_sender *ct_sender_start(struct ct_pool *pool, struct ct_metrics *metrics,
                                  const struct ct_sender_config *cfg, struct ct_err *err)
{
    struct recover_job rj = {0};
    struct ct_sender *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        return NULL;
    }
    s->pool = pool;
    s->metrics = metrics;
    s->cfg = *cfg;
    atomic_init(&s->token_alarm, false);
    if (ct_store_in_tx(pool, recover_tx, &rj, err) != CT_OK) {
        ct_log_warn("could not requeue replies left in flight: %s (retrying in the senders)",
                    err->message);
    } else if (rj.n > 0) {
        ct_log_warn("%d replies were being sent when casetrail last stopped: sending them again "
                    "(Graph may have accepted some already)", rj.n);
    }
    if (!ct_crew_start(&s->crew, cfg->threads, run, s)) {
        ct_sender_stop(s);
        ct_err_set(err, CT_E_INTERNAL, "internal", "could not start sender threads");
        return NULL;
    }
    return s;
}

void ct_sender_stop(struct ct_sender *s)
{
    if (s == NULL)
        return;
    ct_crew_stop(&s->crew); /* each thread finishes its current send first */
    free(s);
}
