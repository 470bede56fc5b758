/* crew.h: a few background threads that sleep between rounds and stop together: what the reply
 * senders and the media fetchers share. */
#ifndef CASETRAIL_CREW_H
#define CASETRAIL_CREW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct ct_crew {
    pthread_t *threads;
    int n;
    bool ready;              /* mu and wake exist */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_bool stop;
};

/* Starts up to n threads running fn(arg); false when none could start (then c is stopped).
 * c must be zeroed first and must outlive the threads. */
bool ct_crew_start(struct ct_crew *c, int n, void *(*fn)(void *), void *arg);
/* Whether the crew is being stopped; threads return when it is. */
bool ct_crew_stopping(struct ct_crew *c);
/* Sleeps ms, or less when the crew is stopped meanwhile. */
void ct_crew_nap(struct ct_crew *c, long ms);
/* Wakes and joins the threads and frees what start made; safe on a zeroed crew, and twice. */
void ct_crew_stop(struct ct_crew *c);

#endif
