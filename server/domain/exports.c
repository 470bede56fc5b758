/* exports.c: runs an export in its read-only transaction and records it in the access log
 * afterwards, with the rows that actually reached the client, whichever way it ended. */
#include <string.h>

#include "casetrail/exports.h"
#include "casetrail/log.h"
#include "casetrail/store.h"

struct stream_job {
    const struct ct_export_request *r;
    const struct ct_export_writer *w;
    struct ct_export_sink sink; /* w's, with begin noted here first */
    bool began, stopped;
};

static bool note_begin(void *arg, const char *date)
{
    struct stream_job *j = arg;
    j->began = true;
    return j->w->sink.begin(j->w->sink.arg, date);
}

static bool pass_approval(void *arg, const struct ct_export_approval *row)
{
    struct stream_job *j = arg;
    return j->w->sink.approval(j->w->sink.arg, row);
}

static bool pass_event(void *arg, const struct ct_export_event *row)
{
    struct stream_job *j = arg;
    return j->w->sink.event(j->w->sink.arg, row);
}

static ct_rc stream_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct stream_job *j = arg;
    ct_rc rc = j->r->approvals != NULL
                   ? ct_store_export_approvals(tx, j->r->zone, j->r->approvals, &j->sink,
                                               &j->stopped, err)
                   : ct_store_export_events(tx, j->r->zone, j->r->events, &j->sink, &j->stopped,
                                            err);
    /* rows already went out: running the job again would send them twice */
    if (rc != CT_OK && j->began)
        err->retryable = false;
    return rc;
}

struct log_job {
    const struct ct_export_request *r;
    long long rows;
    bool complete;
};

static ct_rc log_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct log_job *l = arg;
    return ct_store_access_log_add(tx, l->r->who->id, l->r->what, l->r->filters_json, l->rows,
                                   l->complete, err);
}

ct_rc ct_exports_stream(struct ct_pool *pool, const struct ct_export_request *r,
                        const struct ct_export_writer *w, bool *began, struct ct_err *err)
{
    struct stream_job j = {r, w, {note_begin, pass_approval, pass_event, NULL}, false, false};
    struct log_job l = {r, 0, false};
    struct ct_err lerr;
    ct_rc rc;

    j.sink.arg = &j;
    rc = ct_store_in_tx(pool, stream_tx, &j, err);
    *began = j.began;
    if (!j.began)
        return rc;
    /* the rest of the rows go out after COMMIT: the connection is back in the pool meanwhile */
    if (rc == CT_OK && (j.stopped || !w->flush(w->sink.arg)))
        rc = ct_err_set(err, CT_E_UNAVAILABLE, "export_cut",
                        "the writer stopped (the client left, a HEAD request, or shutting down)");
    l.rows = w->sent(w->sink.arg);
    l.complete = rc == CT_OK;
    /* its own small transaction, after the snapshot closed: the rows sent are known only now,
     * and a cut export is recorded too, with what it did hand out */
    if (ct_store_in_tx(pool, log_tx, &l, &lerr) != CT_OK) {
        ct_log_error("export %s by user %lld: %lld rows sent (%s) but not recorded in the access"
                     " log, so its end is withheld: %s", r->what, r->who->id, l.rows,
                     l.complete ? "complete" : "cut", lerr.message);
        if (rc == CT_OK)
            rc = ct_err_set(err, lerr.rc, lerr.code, "%s", lerr.message);
    } else if (rc == CT_OK && !w->finish(w->sink.arg)) {
        /* every row reached the connection and is recorded so; only the last chunk was lost */
        rc = ct_err_set(err, CT_E_UNAVAILABLE, "export_cut", "the client left at the very end");
    }
    if (!l.complete)
        ct_log_warn("export %s by user %lld cut after %lld rows: %s", r->what, r->who->id, l.rows,
                    err->message);
    return rc;
}

struct page_job {
    const struct ct_user *who;
    const char *zone, *filters_json;
    const struct ct_event_filter *f;
    cJSON *out;
    char *next;
};

static ct_rc page_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct page_job *j = arg;
    cJSON_Delete(j->out); /* a retried transaction starts over */
    j->out = NULL;
    ct_rc rc = ct_store_use_zone(tx, j->zone, err);
    if (rc == CT_OK)
        rc = ct_store_events_page(tx, j->f, &j->out, j->next, err);
    if (rc == CT_OK)
        rc = ct_store_access_log_add(tx, j->who->id, CT_ACCESS_EVENTS, j->filters_json,
                                     cJSON_GetArraySize(j->out), true, err);
    return rc;
}

ct_rc ct_exports_events_page(struct ct_pool *pool, const struct ct_user *who, const char *zone,
                             const struct ct_event_filter *f, const char *filters_json,
                             cJSON **out, char next_cursor[CT_CURSOR_MAX], struct ct_err *err)
{
    struct page_job j = {who, zone, filters_json, f, NULL, next_cursor};
    ct_rc rc = ct_store_in_tx(pool, page_tx, &j, err);
    if (rc != CT_OK) {
        cJSON_Delete(j.out);
        j.out = NULL;
    }
    *out = j.out;
    return rc;
}
