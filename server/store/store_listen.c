/* store_listen.c: live updates through the database. LISTEN: a dedicated connection (a pooled
 * one would lose its LISTEN when handed to someone else) polled with a short timeout so
 * stopping is prompt, and reopened a second after any failure. NOTIFY: the tickets committed
 * transactions changed, sent every 100 ms in one transaction of their own, because PostgreSQL
 * serialises notifying commits and a NOTIFY inside each webhook's transaction cost ingestion a
 * third of its throughput (bench/notify_ab). */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casetrail/listen.h"
#include "casetrail/log.h"
#include "store_internal.h"

struct ct_listener {
    char *database_url;
    char channel[64];
    ct_listen_fn fn;
    void *arg;
    atomic_bool stop;
    pthread_t thread;
};

static void nap_ms(struct ct_listener *l, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&l->stop); waited += 50)
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
}

static PGconn *open_listening(struct ct_listener *l)
{
    char sql[96];
    PGconn *c = ct_store_connect(l->database_url);
    if (c == NULL)
        return NULL;
    snprintf(sql, sizeof(sql), "LISTEN %s", l->channel); /* a fixed identifier, never input */
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || PQsetnonblocking(c, 1) != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Delivers what has arrived; false when the connection broke. */
static bool drain(struct ct_listener *l, PGconn *c)
{
    PGnotify *n;
    if (PQconsumeInput(c) == 0)
        return false;
    while ((n = PQnotifies(c)) != NULL) {
        l->fn(l->arg, n->extra);
        PQfreemem(n);
    }
    return PQstatus(c) == CONNECTION_OK;
}

static void *run(void *arg)
{
    struct ct_listener *l = arg;
    PGconn *c = NULL;
    bool warned = false;

    while (!atomic_load(&l->stop)) {
        if (c == NULL) {
            c = open_listening(l);
            if (c == NULL) {
                if (!warned)
                    ct_log_warn("live updates: cannot listen to the database; retrying");
                warned = true;
                nap_ms(l, 1000);
                continue;
            }
            if (warned)
                ct_log_info("live updates: listening again");
            warned = false;
            l->fn(l->arg, NULL); /* anything may have happened while we were away */
        }
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        int r = poll(&pfd, 1, 250);
        if (r < 0 || (r > 0 && !drain(l, c))) {
            ct_log_warn("live updates: lost the database connection; reconnecting");
            warned = true;
            PQfinish(c);
            c = NULL;
        }
    }
    if (c != NULL)
        PQfinish(c);
    return NULL;
}

struct ct_listener *ct_listener_start(const char *database_url, const char *channel,
                                      ct_listen_fn fn, void *arg)
{
    struct ct_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->database_url = database_url != NULL ? strdup(database_url) : NULL;
    snprintf(l->channel, sizeof(l->channel), "%s", channel);
    l->fn = fn;
    l->arg = arg;
    atomic_init(&l->stop, false);
    if ((database_url != NULL && l->database_url == NULL) ||
        pthread_create(&l->thread, NULL, run, l) != 0) {
        free(l->database_url);
        free(l);
        return NULL;
    }
    return l;
}

void ct_listener_stop(struct ct_listener *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    free(l->database_url);
    free(l);
}

/* ---- the NOTIFY side: changed tickets, batched outside the writers' commits ---- */

#define NOTIFY_MAX 4096
#define NOTIFY_EVERY_MS 100

struct ct_notifier {
    struct ct_pool *pool;
    char channel[64];
    pthread_mutex_t mu;
    long long ids[NOTIFY_MAX];
    int n;
    bool overflow;
    atomic_bool stop;
    pthread_t thread;
};

void ct_notifier_add(void *notifier, const long long *ids, int n, bool overflow)
{
    struct ct_notifier *nt = notifier;
    pthread_mutex_lock(&nt->mu);
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int k = 0; k < nt->n && !seen; k++)
            seen = nt->ids[k] == ids[i];
        if (seen)
            continue;
        if (nt->n < NOTIFY_MAX)
            nt->ids[nt->n++] = ids[i];
        else
            nt->overflow = true;
    }
    nt->overflow = nt->overflow || overflow;
    pthread_mutex_unlock(&nt->mu);
}

struct send_job {
    const char *channel;
    const char *array; /* "{1,2,3}" */
    bool resync;
};

static ct_rc send_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct send_job *j = arg;
    struct ct_params p = {0};
    ct_param_str(&p, j->channel);
    ct_param_str(&p, j->array);
    ct_param_bool(&p, j->resync);
    /* one transaction, so one notifying commit, for every ticket changed since the last */
    PGresult *res = ct_tx_query(tx, "SELECT pg_notify($1, x::text) FROM"
                                    " unnest($2::bigint[]) x UNION ALL"
                                    " SELECT pg_notify($1, 'resync') WHERE $3::bool",
                                &p, err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    return CT_OK;
}

/* Sends what is waiting; on failure puts it back for the next round. */
static void flush(struct ct_notifier *nt, bool *warned)
{
    long long ids[NOTIFY_MAX];
    bool overflow;
    int n;
    struct ct_err err;

    pthread_mutex_lock(&nt->mu);
    n = nt->n;
    overflow = nt->overflow;
    memcpy(ids, nt->ids, (size_t)n * sizeof(ids[0]));
    nt->n = 0;
    nt->overflow = false;
    pthread_mutex_unlock(&nt->mu);
    if (n == 0 && !overflow)
        return;
    /* 4096 ids of at most 19 digits and a comma each */
    char *array = malloc((size_t)n * 21 + 3);
    size_t len = 0;
    if (array == NULL) {
        ct_notifier_add(nt, ids, n, true);
        return;
    }
    array[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(array + len, "%s%lld", i > 0 ? "," : "", ids[i]);
    array[len++] = '}';
    array[len] = '\0';
    struct send_job j = {nt->channel, array, overflow};
    if (ct_store_with_conn(nt->pool, send_tx, &j, &err) != CT_OK) {
        if (!*warned)
            ct_log_warn("live updates: could not notify the database (%s); retrying",
                        err.message);
        *warned = true;
        ct_notifier_add(nt, ids, n, overflow);
    } else {
        *warned = false;
    }
    free(array);
}

static void *notify_run(void *arg)
{
    struct ct_notifier *nt = arg;
    bool warned = false;
    while (!atomic_load(&nt->stop)) {
        nanosleep(&(struct timespec){0, NOTIFY_EVERY_MS * 1000000L}, NULL);
        flush(nt, &warned);
    }
    flush(nt, &warned); /* what committed before the stop still goes out */
    return NULL;
}

struct ct_notifier *ct_notifier_start(struct ct_pool *pool, const char *channel)
{
    struct ct_notifier *nt = calloc(1, sizeof(*nt));
    if (nt == NULL)
        return NULL;
    nt->pool = pool;
    snprintf(nt->channel, sizeof(nt->channel), "%s", channel);
    pthread_mutex_init(&nt->mu, NULL);
    atomic_init(&nt->stop, false);
    if (pthread_create(&nt->thread, NULL, notify_run, nt) != 0) {
        pthread_mutex_destroy(&nt->mu);
        free(nt);
        return NULL;
    }
    return nt;
}

void ct_notifier_stop(struct ct_notifier *nt)
{
    if (nt == NULL)
        return;
    atomic_store(&nt->stop, true);
    pthread_join(nt->thread, NULL);
    pthread_mutex_destroy(&nt->mu);
    free(nt);
}
