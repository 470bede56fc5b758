/* watchdog.c: one thread that shuts sockets civetweb is blocked reading: request bodies past
 * their deadline, and, when every worker is taken and a connection waits for one, connections
 * that have only been waiting for a request head, then bodies trickling in. It finds a socket
 * among this process's descriptors by its two ends. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's stops short) */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "casetrail/log.h"
#include "casetrail/watchdog.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* after the read side is shut, a read still armed this much later gets both sides shut */
#define ESCALATE_NS NS_PER_S
/* without /proc, descriptors are probed one by one up to this many */
#define MAX_PROBE_FDS 65536
/* while every worker is taken, how often to look for connections waiting for one: soon again
 * when the last look found some, less often when it found none (a look lists every socket) */
#define RECLAIM_BUSY_NS (5 * NS_PER_MS)
#define RECLAIM_IDLE_NS (20 * NS_PER_MS)
/* at most one log line this often about reclaimed workers */
#define RECLAIM_LOG_NS (10 * NS_PER_S)

struct ct_watchdog {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a watch needs an earlier wake-up, or on stop */
    pthread_t thread;
    struct ct_watch *head; /* armed watches; guarded by mu */
    int64_t wake_ns;       /* when the thread will wake by itself; INT64_MAX: never */
    bool stopping;
    /* reclaiming (all guarded by mu) */
    struct ct_conn_watch *conns; /* connections workers hold */
    int nconns;
    int workers;          /* 0: reclaiming is off */
    int listen_port;
    int64_t reclaim_ns;   /* the next look, while every worker is taken */
    int64_t logged_ns;    /* the last log line about reclaiming */
    unsigned long long unlogged; /* reclaimed since that line */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Our end's port, or -1. */
static int port_of(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

/* Does the socket with these ends belong to connection w? The peer's address and port identify
 * the connection; our port keeps outgoing sockets (to PostgreSQL, say) out. */
static bool matches(const struct ct_peer *w, const struct sockaddr_storage *local,
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
    lport = port_of(local);
    return family == w->family && pport == w->peer_port && lport == w->local_port &&
           memcmp(addr, w->addr, family == AF_INET ? 4 : 16) == 0;
}

/* Every worker holds a connection: a look for connections waiting for one is worth its cost. */
static bool saturated(const struct ct_watchdog *wd)
{
    return wd->workers > 0 && wd->nconns >= wd->workers;
}

/* The bytes socket fd has received so far (TCP_INFO); false when it cannot be read. */
static bool bytes_received(int fd, unsigned long long *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    *out = ti.tcpi_bytes_received;
    return true;
}

/* Looks at descriptor fd: shuts it down for every due watch it belongs to, and, on a look for
 * waiting connections (*accepted not NULL), remembers it as the socket of the armed body read
 * it is, counts it when it is a connection accepted on our port, and remembers it as the
 * socket of the held connection it is. Called with mu held: an
 * armed watch's or a registered connection's socket cannot close meanwhile (both are removed
 * under mu before civetweb closes it), so a descriptor that matches is that connection's. */
static void try_fd(struct ct_watchdog *wd, int fd, int64_t now, int *accepted)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof(local), plen = sizeof(peer);

    if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0)
        return; /* not a socket */
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
        return; /* a listening or unconnected socket */
    for (struct ct_watch *w = wd->head; w != NULL; w = w->next) {
        bool due = w->next_try_ns <= now && w->shut < 2, learn = accepted != NULL && w->fd < 0;
        if ((!due && !learn) || !matches(&w->peer, &local, &peer))
            continue;
        if (learn) {
            w->fd = fd; /* from here on its rate is measured (body_too_slow) */
            w->seen_ns = now;
            if (!bytes_received(fd, &w->seen_bytes))
                w->fd = -1;
        }
        if (!due)
            continue;
        /* never close: civetweb owns the descriptor. Shutting the read side wakes its poll and
         * makes recv return 0, and still lets the handler send its 408. */
        if (shutdown(fd, w->shut == 0 ? SHUT_RD : SHUT_RDWR) == 0 || errno == ENOTCONN)
            w->shut++;
    }
    if (accepted == NULL || port_of(&local) != wd->listen_port)
        return;
    (*accepted)++;
    for (struct ct_conn_watch *c = wd->conns; c != NULL; c = c->next) {
        if (c->fd < 0 && c->known && matches(&c->peer, &local, &peer)) {
            c->fd = fd;
            break;
        }
    }
}

/* Learns the ends of held connections whose socket is not known yet. */
static void learn_peers(struct ct_watchdog *wd)
{
    for (struct ct_conn_watch *c = wd->conns; c != NULL; c = c->next)
        if (!c->known)
            c->known = c->peer_fn(c->conn, &c->peer);
}

/* Calls try_fd for every open descriptor. */
static void scan_fds(struct ct_watchdog *wd, int64_t now, int *accepted)
{
    /* only open descriptors are listed in /proc: far fewer than a high NOFILE limit */
    DIR *dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            char *end = NULL;
            long fd = strtol(de->d_name, &end, 10);
            if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && *end == '\0' && fd != dirfd(dir))
                try_fd(wd, (int)fd, now, accepted);
        }
        closedir(dir);
    } else {
        struct rlimit rl;
        rlim_t n = MAX_PROBE_FDS;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
            n = rl.rlim_cur;
        for (rlim_t fd = 0; fd < n; fd++)
            try_fd(wd, (int)fd, now, accepted);
    }
}

/* After a scan: the due watches are shut or looked for again later. Called with mu held. */
static void schedule_watches(struct ct_watchdog *wd, int64_t now)
{
    for (struct ct_watch *w = wd->head; w != NULL; w = w->next) {
        if (w->next_try_ns > now)
            continue;
        if (w->shut == 0 && !w->missed) {
            w->missed = true;
            ct_log_warn("watchdog: no socket found for an overdue request body (peer port %d); "
                        "its worker stays busy until the client stops",
                        w->peer.peer_port);
        }
        /* shut once: escalate later if still armed. Not found: look again later. */
        w->next_try_ns = w->shut >= 2 ? INT64_MAX : now + ESCALATE_NS;
    }
}

/* Whether thread tid of this process is asleep (state S in /proc): a worker waiting on its
 * client sleeps in poll, while one that is runnable is about to read or parse what came. */
static bool thread_sleeps(int tid)
{
    char path[64], buf[512];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    if ((f = fopen(path, "re")) == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold anything; the state follows it */
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

/* Whether held connection c is only waiting on its client: its worker asleep, nothing unread
 * in its socket, and for long enough (longer while the client has sent nothing at all: a
 * client between connect and its first write, slowed by its own machine, is not an attack).
 * A head that has arrived but that a busy machine has not let the worker read or parse yet
 * must never be cut off: it would be answered 503 for the server's slowness. */
static bool waits_on_client(const struct ct_conn_watch *c, int64_t now)
{
    unsigned long long bytes;
    int unread = 0;

    if (now - c->head_since_ns < (int64_t)CT_RECLAIM_MIN_AGE_MS * NS_PER_MS)
        return false;
    if (ioctl(c->fd, FIONREAD, &unread) != 0 || unread > 0)
        return false;
    if (!bytes_received(c->fd, &bytes))
        return false;
    if (bytes == 0 && now - c->head_since_ns < (int64_t)CT_RECLAIM_FRESH_MS * NS_PER_MS)
        return false;
    return thread_sleeps(c->tid);
}

/* The held connection that has waited longest for a request head and only waits on its
 * client (waits_on_client); NULL when there is none. Those that do not are marked skipped for
 * this look (skipped). */
static struct ct_conn_watch *longest_waiting(struct ct_watchdog *wd, int64_t now)
{
    for (;;) {
        struct ct_conn_watch *best = NULL;
        for (struct ct_conn_watch *c = wd->conns; c != NULL; c = c->next) {
            if (c->head_since_ns == 0 || c->shut > 0 || c->fd < 0 || c->skipped)
                continue;
            if (best == NULL || c->head_since_ns < best->head_since_ns)
                best = c;
        }
        if (best == NULL || waits_on_client(best, now))
            return best;
        best->skipped = true; /* not this look: cleared when the look ends */
    }
}

/* Whether armed body read w is too slow to keep its worker while others wait for one: watched
 * for CT_RECLAIM_BODY_MIN_MS at least, it received under CT_RECLAIM_BODY_RATE bytes a second
 * meanwhile, and its worker sleeps with nothing unread (so what came is not merely unread). */
static bool body_too_slow(const struct ct_watch *w, int64_t now)
{
    int64_t watched = now - w->seen_ns;
    unsigned long long bytes;
    int unread = 0;

    if (watched < (int64_t)CT_RECLAIM_BODY_MIN_MS * NS_PER_MS || !bytes_received(w->fd, &bytes))
        return false;
    if ((double)(bytes - w->seen_bytes) * NS_PER_S >= (double)CT_RECLAIM_BODY_RATE * watched)
        return false;
    if (ioctl(w->fd, FIONREAD, &unread) != 0 || unread > 0)
        return false;
    return thread_sleeps(w->tid);
}

/* The armed body read watched longest that is too slow (body_too_slow); NULL when none is.
 * Those that are not are marked skipped for this look. */
static struct ct_watch *slowest_body(struct ct_watchdog *wd, int64_t now)
{
    for (;;) {
        struct ct_watch *best = NULL;
        for (struct ct_watch *w = wd->head; w != NULL; w = w->next) {
            if (w->shut > 0 || w->fd < 0 || w->skipped)
                continue;
            if (best == NULL || w->seen_ns < best->seen_ns)
                best = w;
        }
        if (best == NULL || body_too_slow(best, now))
            return best;
        best->skipped = true;
    }
}

/* Gives one worker to each connection waiting for one, taken from the connections that only
 * wait for a request head: an idle kept-alive connection can be closed at any time (HTTP
 * clients reopen it), and a head trickled in for longer than the minimum age is not worth a
 * worker others are waiting for. accepted counts the connections accepted on our port. */
static void reclaim(struct ct_watchdog *wd, int64_t now, int accepted)
{
    int waiting = accepted - wd->nconns, shut = 0;
    struct ct_conn_watch *c;

    while (shut < waiting && (c = longest_waiting(wd, now)) != NULL) {
        if (shutdown(c->fd, SHUT_RD) != 0 && errno != ENOTCONN) {
            c->fd = -1; /* cannot happen (see try_fd); never try that descriptor again */
            continue;
        }
        c->shut = 1;
        c->reclaimed = true;
        c->escalate_ns = now + ESCALATE_NS;
        shut++;
    }
    /* then from bodies trickling in: their handlers answer 503 once the read ends */
    struct ct_watch *w;
    while (shut < waiting && (w = slowest_body(wd, now)) != NULL) {
        if (shutdown(w->fd, SHUT_RD) != 0 && errno != ENOTCONN) {
            w->skipped = true; /* cannot happen (see try_fd) */
            continue;
        }
        w->shut = 1;
        w->reclaimed = true;
        w->next_try_ns = now + ESCALATE_NS; /* both sides then, if still armed */
        shut++;
    }
    for (c = wd->conns; c != NULL; c = c->next)
        c->skipped = false;
    for (w = wd->head; w != NULL; w = w->next)
        w->skipped = false;
    wd->unlogged += (unsigned long long)shut;
    if (wd->unlogged > 0 && now - wd->logged_ns >= RECLAIM_LOG_NS) {
        ct_log_warn("every worker was taken: %llu connections waiting only for a request head, "
                    "or trickling a body, were closed so that %d waiting connections could be "
                    "served (and more like them since the last line: put a proxy in front, or "
                    "raise CASETRAIL_THREADS)",
                    wd->unlogged, waiting);
        wd->unlogged = 0;
        wd->logged_ns = now;
    }
    wd->reclaim_ns = now + (waiting > 0 ? RECLAIM_BUSY_NS : RECLAIM_IDLE_NS);
}

/* Shuts both sides of reclaimed connections that are still open a while after their read side
 * was; returns the earliest later time one is due. Called with mu held. */
static int64_t escalate(struct ct_watchdog *wd, int64_t now)
{
    int64_t next = INT64_MAX;

    for (struct ct_conn_watch *c = wd->conns; c != NULL; c = c->next) {
        if (c->shut != 1)
            continue;
        if (c->escalate_ns <= now) {
            if (c->fd >= 0)
                shutdown(c->fd, SHUT_RDWR);
            c->shut = 2;
        } else if (c->escalate_ns < next) {
            next = c->escalate_ns;
        }
    }
    return next;
}

static void *run(void *arg)
{
    struct ct_watchdog *wd = arg;

    pthread_mutex_lock(&wd->mu);
    while (!wd->stopping) {
        int64_t now = now_ns(), next = escalate(wd, now);
        bool due = false, look = saturated(wd) && wd->reclaim_ns <= now;
        for (struct ct_watch *w = wd->head; w != NULL; w = w->next) {
            if (w->next_try_ns <= now)
                due = true;
            else if (w->next_try_ns < next)
                next = w->next_try_ns;
        }
        if (due || look) {
            int accepted = 0;
            if (look)
                learn_peers(wd);
            scan_fds(wd, now, look ? &accepted : NULL);
            schedule_watches(wd, now);
            if (look)
                reclaim(wd, now, accepted);
            continue;
        }
        if (saturated(wd) && wd->reclaim_ns < next)
            next = wd->reclaim_ns;
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

void ct_peer_set(struct ct_peer *p, const char *peer_addr, int peer_port, int local_port)
{
    memset(p, 0, sizeof(*p));
    if (inet_pton(AF_INET, peer_addr, p->addr) == 1)
        p->family = AF_INET;
    else if (inet_pton(AF_INET6, peer_addr, p->addr) == 1)
        p->family = AF_INET6;
    p->peer_port = peer_port;
    p->local_port = local_port;
}

void ct_watchdog_arm(struct ct_watchdog *wd, struct ct_watch *w, const char *peer_addr,
                     int peer_port, int local_port, int timeout_ms)
{
    memset(w, 0, sizeof(*w));
    ct_peer_set(&w->peer, peer_addr, peer_port, local_port);
    w->fd = -1;
    w->tid = (int)syscall(SYS_gettid); /* called on the reading thread itself */
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

void ct_watchdog_reclaim(struct ct_watchdog *wd, int workers, int listen_port)
{
    pthread_mutex_lock(&wd->mu);
    wd->workers = workers;
    wd->listen_port = listen_port;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
}

void ct_watchdog_conn_open(struct ct_watchdog *wd, struct ct_conn_watch *c, ct_peer_fn peer_fn,
                           const void *conn)
{
    memset(c, 0, sizeof(*c));
    c->peer_fn = peer_fn;
    c->conn = conn;
    c->fd = -1;
    c->tid = (int)syscall(SYS_gettid); /* called on the worker thread itself */
    c->head_since_ns = now_ns();
    pthread_mutex_lock(&wd->mu);
    c->next = wd->conns;
    if (wd->conns != NULL)
        wd->conns->prev = c;
    wd->conns = c;
    wd->nconns++;
    /* the last free worker was just taken: look for connections waiting for one from now on */
    if (saturated(wd) && wd->nconns == wd->workers) {
        if (wd->reclaim_ns < c->head_since_ns)
            wd->reclaim_ns = c->head_since_ns;
        if (wd->reclaim_ns < wd->wake_ns) {
            wd->wake_ns = wd->reclaim_ns;
            pthread_cond_signal(&wd->cv);
        }
    }
    pthread_mutex_unlock(&wd->mu);
}

bool ct_watchdog_conn_busy(struct ct_watchdog *wd, struct ct_conn_watch *c, bool busy)
{
    bool reclaimed;
    int64_t now = busy ? 0 : now_ns();

    pthread_mutex_lock(&wd->mu);
    c->head_since_ns = now;
    reclaimed = c->reclaimed;
    pthread_mutex_unlock(&wd->mu);
    return reclaimed;
}

bool ct_watchdog_conn_close(struct ct_watchdog *wd, struct ct_conn_watch *c)
{
    bool reclaimed;

    pthread_mutex_lock(&wd->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        wd->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    wd->nconns--;
    reclaimed = c->reclaimed;
    pthread_mutex_unlock(&wd->mu);
    c->prev = c->next = NULL;
    return reclaimed;
}
