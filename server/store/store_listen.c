/* store_listen.c: the LISTEN side of live updates: a dedicated connection (a pooled one would
 * lose its LISTEN when handed to someone else) polled with a short timeout so stopping is
 * prompt, and reopened a second after any failure. */
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
