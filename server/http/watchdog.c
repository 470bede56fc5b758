/* watchdog.c: one thread that ends request-body reads which passed their deadline, by finding
 * the connection's socket among this process's descriptors and shutting it down. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "casetrail/log.h"
#include "casetrail/watchdog.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* after the read side is shut, a read still armed this much later gets both sides shut */
#define ESCALATE_NS NS_PER_S
/* without /proc, descriptors are probed one by one up to this many */
#define MAX_PROBE_FDS 65536

struct ct_watchdog {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a watch needs an earlier wake-up, or on stop */
    pthread_t thread;
    struct ct_watch *head; /* armed watches; guarded by mu */
    int64_t wake_ns;       /* when the thread will wake by itself; INT64_MAX: never */
    bool stopping;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Does the socket with these ends belong to watch w? The peer's address and port identify the
 * connection; our port keeps outgoing sockets (to PostgreSQL, say) out. */
static bool matches(const struct ct_watch *w, const struct sockaddr_storage *local,
                    const struct sockaddr_storage *peer)
{
    const unsigned char *addr;
    int lport, pport, family = peer->ss_family;

    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)peer;
        addr = (const unsigned char *)&p->sin_addr;
        pport = ntohs(p->sin_port);
    } else if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)peer;
        addr = p->sin6_addr.s6_addr;
        pport = ntohs(p->sin6_port);
        /* an IPv4 client of a dual-stack socket may be printed either way */
        if (w->family == AF_INET && IN6_IS_ADDR_V4MAPPED(&p->sin6_addr)) {
            addr += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    if (local->ss_family == AF_INET)
        lport = ntohs(((const struct sockaddr_in *)local)->sin_port);
    else if (local->ss_family == AF_INET6)
        lport = ntohs(((const struct sockaddr_in6 *)local)->sin6_port);
    else
        return false;
    return family == w->family && pport == w->peer_port && lport == w->local_port &&
           memcmp(addr, w->addr, family == AF_INET ? 4 : 16) == 0;
}

/* Shuts fd down for every due watch it belongs to. Called with mu held: an armed watch's
 * connection cannot close (the handler disarms under mu first), so fd is that connection's. */
static void try_fd(struct ct_watchdog *wd, int fd, int64_t now)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof(local), plen = sizeof(peer);

    if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0)
        return; /* not a socket */
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
        return; /* a listening or unconnected socket */
    for (struct ct_watch *w = wd->head; w != NULL; w = w->next) {
        if (w->next_try_ns > now || w->shut >= 2 || !matches(w, &local, &peer))
            continue;
        /* never close: civetweb owns the descriptor. Shutting the read side wakes its poll and
         * makes recv return 0, and still lets the handler send its 408. */
        if (shutdown(fd, w->shut == 0 ? SHUT_RD : SHUT_RDWR) == 0 || errno == ENOTCONN)
            w->shut++;
    }
}

/* Finds the sockets of the due watches and shuts them down. Called with mu held. */
static void shut_due(struct ct_watchdog *wd, int64_t now)
{
    struct ct_watch *w;

    /* only open descriptors are listed in /proc: far fewer than a high NOFILE limit */
    DIR *dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            char *end = NULL;
            long fd = strtol(de->d_name, &end, 10);
            if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && *end == '\0' && fd != dirfd(dir))
                try_fd(wd, (int)fd, now);
        }
        closedir(dir);
    } else {
        struct rlimit rl;
        rlim_t n = MAX_PROBE_FDS;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
            n = rl.rlim_cur;
        for (rlim_t fd = 0; fd < n; fd++)
            try_fd(wd, (int)fd, now);
    }
    for (w = wd->head; w != NULL; w = w->next) {
        if (w->next_try_ns > now)
            continue;
        if (w->shut == 0 && !w->missed) {
            w->missed = true;
            ct_log_warn("watchdog: no socket found for an overdue request body (peer port %d); "
                        "its worker stays busy until the client stops",
                        w->peer_port);
        }
        /* shut once: escalate later if still armed. Not found: look again later. */
        w->next_try_ns = w->shut >= 2 ? INT64_MAX : now + ESCALATE_NS;
    }
}

static void *run(void *arg)
{
    struct ct_watchdog *wd = arg;

    pthread_mutex_lock(&wd->mu);
    while (!wd->stopping) {
        int64_t now = now_ns(), next = INT64_MAX;
        bool due = false;
        for (struct ct_watch *w = wd->head; w != NULL; w = w->next) {
            if (w->next_try_ns <= now)
                due = true;
            else if (w->next_try_ns < next)
                next = w->next_try_ns;
        }
        if (due) {
            shut_due(wd, now);
            continue;
        }
        wd->wake_ns = next;
        if (next == INT64_MAX) {
            pthread_cond_wait(&wd->cv, &wd->mu);
        } else {
            struct timespec ts = {(time_t)(next / NS_PER_S), (long)(next % NS_PER_S)};
            pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
        }
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

struct ct_watchdog *ct_watchdog_start(void)
{
    struct ct_watchdog *wd = calloc(1, sizeof(*wd));
    pthread_condattr_t ca;
    bool mu = false, cv = false;

    if (wd == NULL)
        return NULL;
    wd->wake_ns = INT64_MAX;
    if (pthread_mutex_init(&wd->mu, NULL) != 0)
        goto fail;
    mu = true;
    /* deadlines are monotonic: a wall-clock step must not fire or delay them */
    if (pthread_condattr_init(&ca) != 0)
        goto fail;
    cv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
         pthread_cond_init(&wd->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cv || pthread_create(&wd->thread, NULL, run, wd) != 0)
        goto fail;
    return wd;
fail:
    if (cv)
        pthread_cond_destroy(&wd->cv);
    if (mu)
        pthread_mutex_destroy(&wd->mu);
    free(wd);
    return NULL;
}

void ct_watchdog_stop(struct ct_watchdog *wd)
{
    if (wd == NULL)
        return;
    pthread_mutex_lock(&wd->mu);
    wd->stopping = true;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
    free(wd);
}

void ct_watchdog_arm(struct ct_watchdog *wd, struct ct_watch *w, const char *peer_addr,
                     int peer_port, int local_port, int timeout_ms)
{
    memset(w, 0, sizeof(*w));
    if (inet_pton(AF_INET, peer_addr, w->addr) == 1)
        w->family = AF_INET;
    else if (inet_pton(AF_INET6, peer_addr, w->addr) == 1)
        w->family = AF_INET6;
    w->peer_port = peer_port;
    w->local_port = local_port;
    w->deadline_ns = now_ns() + (int64_t)timeout_ms * NS_PER_MS;
    w->next_try_ns = w->deadline_ns;
    pthread_mutex_lock(&wd->mu);
    w->next = wd->head;
    if (wd->head != NULL)
        wd->head->prev = w;
    wd->head = w;
    /* the thread sleeps until its earliest deadline: wake it only when this one is sooner */
    if (w->next_try_ns < wd->wake_ns) {
        wd->wake_ns = w->next_try_ns;
        pthread_cond_signal(&wd->cv);
    }
    pthread_mutex_unlock(&wd->mu);
}

bool ct_watchdog_disarm(struct ct_watchdog *wd, struct ct_watch *w)
{
    bool fired;

    pthread_mutex_lock(&wd->mu);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        wd->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    fired = w->shut > 0;
    pthread_mutex_unlock(&wd->mu);
    w->prev = w->next = NULL;
    return fired;
}
