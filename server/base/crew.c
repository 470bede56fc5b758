/* crew.c: start, nap and stop a few background threads; a stop wakes the nappers at once, so
 * shutting down never waits out a retry delay. */
#include <stdlib.h>
#include <time.h>

#include "casetrail/crew.h"

bool ct_crew_start(struct ct_crew *c, int n, void *(*fn)(void *), void *arg)
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    atomic_init(&c->stop, false);
    c->ready = true;
    c->threads = n > 0 ? calloc((size_t)n, sizeof(*c->threads)) : NULL;
    for (int i = 0; c->threads != NULL && i < n; i++) {
        if (pthread_create(&c->threads[i], NULL, fn, arg) != 0)
            break;
        c->n++;
    }
    if (c->n == 0) {
        ct_crew_stop(c);
        return false;
    }
    return true;
}

bool ct_crew_stopping(struct ct_crew *c)
{
    return atomic_load(&c->stop);
}

void ct_crew_nap(struct ct_crew *c, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->stop))
        pthread_cond_timedwait(&c->wake, &c->mu, &until);
    pthread_mutex_unlock(&c->mu);
}

void ct_crew_stop(struct ct_crew *c)
{
    if (!c->ready)
        return;
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->stop, true);
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->n; i++)
        pthread_join(c->threads[i], NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->wake);
    free(c->threads);
    c->threads = NULL;
    c->n = 0;
    c->ready = false;
}
