/* pool.c: a bounded pool of libpq connections, the transaction helper and SQLSTATE mapping.
 * A broken connection is dropped and reopened on the next borrow, so casetrail recovers by
 * itself once PostgreSQL is back. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casetrail/log.h"
#include "store_internal.h"

struct ct_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    char *database_url;
    int size;
    int in_use;
    PGconn **conns; /* conns[i] == NULL: slot free and not connected */
    struct ct_stmt_cache *caches; /* caches[i]: what conns[i] has prepared */
    bool *busy;
    bool prepare;
    int timeout_ms;     /* 0: no statement bounds (the CLI) */
    ct_commit_fn on_commit; /* told the tickets each committed transaction changed, or NULL */
    void *on_commit_arg;
    atomic_bool db_up;
};

PGconn *ct_store_connect(const char *database_url)
{
    /* Defaults first; with expand_dbname the caller's URL/conninfo is processed after them and
     * wins where it sets the same keyword. */
    /* a host that vanishes is noticed by TCP itself (keepalives, unacknowledged data after
     * tcp_user_timeout ms); these only apply over TCP and are ignored on a Unix socket */
    const char *keys[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "dbname", NULL};
    const char *vals[] = {"3", "casetrail", "1", "10", "3", "3", "10000", database_url, NULL};
    PGconn *c;

    if (database_url == NULL)
        keys[7] = NULL;
    c = PQconnectdbParams(keys, vals, 1);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        /* set after connecting, so no options in DATABASE_URL can undo them: a webhook's 200
         * promises its COMMIT is on disk, and SQL formats times in UTC. JIT off: casetrail's
         * queries are short, and PostgreSQL 15 compiled a queue page whose cost estimate
         * crossed jit_above_cost on every request (pending_approval 294 -> 44 ms p50 at
         * 100,000 tickets, bench/viewer_scale) */
        PGresult *res = PQexec(c, "SET synchronous_commit = on; SET TimeZone = 'UTC';"
                                  " SET jit = off");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQfinish(c);
            c = NULL;
        }
        PQclear(res);
    }
    return c;
}

struct ct_pool *ct_pool_new(const char *database_url, int size)
{
    struct ct_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->size = size;
    p->conns = calloc((size_t)size, sizeof(*p->conns));
    p->busy = calloc((size_t)size, sizeof(*p->busy));
    p->caches = calloc((size_t)size, sizeof(*p->caches));
    p->database_url = database_url ? strdup(database_url) : NULL;
    if (p->conns == NULL || p->busy == NULL || p->caches == NULL ||
        (database_url != NULL && p->database_url == NULL)) {
        free(p->conns);
        free(p->busy);
        free(p->caches);
        free(p->database_url);
        free(p);
        return NULL;
    }
    p->prepare = true;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    atomic_init(&p->db_up, false);
    return p;
}

void ct_pool_free(struct ct_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->size; i++) {
        if (p->conns[i] != NULL)
            PQfinish(p->conns[i]);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->freed);
    free(p->conns);
    free(p->busy);
    free(p->caches);
    free(p->database_url);
    free(p);
}

/* Closes a slot's connection; its prepared statements go with it. */
static void drop_conn(struct ct_pool *p, int slot)
{
    if (p->conns[slot] != NULL)
        PQfinish(p->conns[slot]);
    p->conns[slot] = NULL;
    p->caches[slot].n = 0;
    p->caches[slot].poisoned = false;
}

void ct_pool_set_timeout(struct ct_pool *p, int timeout_ms)
{
    p->timeout_ms = timeout_ms;
}

void ct_pool_set_prepare(struct ct_pool *p, bool prepare)
{
    p->prepare = prepare;
}

int ct_pool_size(const struct ct_pool *p)
{
    return p->size;
}

int ct_pool_in_use(struct ct_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->in_use;
    pthread_mutex_unlock(&p->mu);
    return n;
}

bool ct_pool_db_up(struct ct_pool *p)
{
    return atomic_load(&p->db_up);
}

/* Waits (bounded) for a free slot; returns its index or -1 on timeout. */
static int take_slot(struct ct_pool *p)
{
    struct timespec deadline;
    int slot = -1;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&p->mu);
    while (p->in_use == p->size) {
        if (pthread_cond_timedwait(&p->freed, &p->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (p->in_use < p->size) {
        for (int i = 0; i < p->size; i++) {
            if (!p->busy[i]) {
                p->busy[i] = true;
                p->in_use++;
                slot = i;
                break;
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    return slot;
}

static void give_slot(struct ct_pool *p, int slot)
{
    pthread_mutex_lock(&p->mu);
    PGconn *c = p->conns[slot];
    if (c != NULL && (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE ||
                      p->caches[slot].poisoned)) {
        /* never hand the next borrower a broken connection or one left mid-transaction */
        drop_conn(p, slot);
    }
    p->busy[slot] = false;
    p->in_use--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

/* Makes sure the slot holds a live connection. Runs without the pool lock: connecting may
 * take up to connect_timeout and must not block other borrowers. */
static ct_rc ensure_conn(struct ct_pool *p, int slot, struct ct_err *err)
{
    PGconn *c = p->conns[slot];
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return CT_OK;
    drop_conn(p, slot);
    c = ct_store_connect(p->database_url);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        /* the libpq message may hold host names but never the password */
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        ct_log_warn("could not connect to the database: %s", msg);
        if (c != NULL)
            PQfinish(c);
        atomic_store(&p->db_up, false);
        return ct_err_set(err, CT_E_UNAVAILABLE, "database_unavailable",
                          "could not reach the database");
    }
    /* request sessions only (not migrations or the CLI): a lock or statement that waits this
     * long turns into a 503 the client retries, instead of a request that never ends */
    char set[128];
    if (p->timeout_ms > 0)
        snprintf(set, sizeof(set), "SET lock_timeout = %d; SET statement_timeout = %d",
                 p->timeout_ms * 4 / 5, p->timeout_ms);
    else
        snprintf(set, sizeof(set), "SET lock_timeout = 0; SET statement_timeout = 0");
    PGresult *res = PQexec(c, set);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        PQfinish(c);
        return ct_err_set(err, CT_E_UNAVAILABLE, "database_unavailable",
                          "could not reach the database");
    }
    p->conns[slot] = c;
    return CT_OK;
}

static bool sqlstate_is(const PGresult *res, const char *code)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL && strcmp(s, code) == 0;
}

/* FNV-1a: names a statement by its text, so dynamic SQL gets one name per distinct text. */
static unsigned long long sql_key(const char *sql)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; *sql != '\0'; sql++) {
        h ^= (unsigned char)*sql;
        h *= 1099511628211ULL;
    }
    return h;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until a result can be read from tx without blocking, at most until deadline (0:
 * forever); false when the wait ran out (tx->timed_out), polling failed or the connection
 * broke (PQgetResult then reports it). libpq's blocking calls have no such bound: a frozen
 * server would hold the request for good. */
static bool wait_ready(struct ct_tx *tx, long long deadline)
{
    while (PQisBusy(tx->conn)) {
        struct pollfd pfd = {PQsocket(tx->conn), POLLIN, 0};
        int wait = -1;
        if (deadline > 0) {
            long long left = deadline - mono_ms();
            if (left <= 0) {
                tx->timed_out = true;
                return false;
            }
            wait = (int)left;
        }
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
            return false;
        if (!PQconsumeInput(tx->conn))
            return true; /* the connection broke: PQgetResult reports it */
    }
    return true;
}

static long long deadline_of(const struct ct_tx *tx)
{
    return tx->wait_ms > 0 ? mono_ms() + tx->wait_ms : 0;
}

/* Waits for the answer to what was just sent on tx, at most tx->wait_ms (0: forever); returns
 * the last result (caller PQclear()s), or NULL when sending failed or the wait ran out. A
 * timed-out connection is left mid-query, so the pool drops it when it goes back. */
static PGresult *await(struct ct_tx *tx, int sent)
{
    PGresult *res, *last = NULL;
    long long deadline = deadline_of(tx);

    if (!sent || !wait_ready(tx, deadline))
        return NULL;
    while ((res = PQgetResult(tx->conn)) != NULL) {
        PQclear(last);
        last = res;
    }
    return last;
}

/* A pipeline's answers: for each of its n queries the last result, then the sync point.
 * false when the wait ran out or the connection broke before the sync point came. */
static bool await_pipeline(struct ct_tx *tx, PGresult **out, int n)
{
    long long deadline = deadline_of(tx);
    for (int i = 0; i <= n; i++) {
        PGresult *res;
        if (!wait_ready(tx, deadline))
            return false;
        res = PQgetResult(tx->conn);
        if (res == NULL)
            return false; /* a broken connection ends the answers early */
        if (i == n) { /* the sync point */
            bool synced = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
            PQclear(res);
            return synced;
        }
        out[i] = res;
        /* the rest of this query's results, up to the NULL that ends them */
        for (;;) {
            if (!wait_ready(tx, deadline))
                return false;
            if ((res = PQgetResult(tx->conn)) == NULL)
                break;
            PQclear(out[i]);
            out[i] = res;
        }
    }
    return true;
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A statement's name in the connection's cache, and whether it must be PREPAREd first;
 * false when it goes unnamed (no cache, or the cache is full). */
static bool stmt_name(const struct ct_tx *tx, const char *sql, char name[24], bool *prepare)
{
    const struct ct_stmt_cache *c = tx->cache;
    unsigned long long key;
    int i;

    *prepare = false;
    if (c == NULL)
        return false;
    key = sql_key(sql);
    for (i = 0; i < c->n && c->keys[i] != key; i++)
        ;
    if (i == c->n && c->n == CT_STMT_CACHE)
        return false;
    snprintf(name, 24, "ct%016llx", key);
    *prepare = i == c->n;
    return true;
}

/* One statement to pipeline: its text and parameters as libpq takes them (borrowed). */
struct pstep {
    const char *sql;
    int nparams;
    const char *const *params;
    const int *lengths, *formats;
};

/* Statements steps[0..n) with the transaction's BEGIN ahead of them (when still to be sent) and
 * its COMMIT after them (when asked for), in one round trip: libpq's pipeline mode, one sync
 * point, so a failing step makes the server skip the rest. res[i] gets step i's result; *failed
 * the first failed step's (also in res when it was a statement), NULL when all went well.
 * Returns false when the answers did not all come (the connection is then left mid-pipeline,
 * and dropped); the caller PQclear()s res[] and *failed. */
static bool exec_pipelined(struct ct_tx *tx, const struct pstep *steps, int n, PGresult **res,
                           PGresult **failed)
{
    /* BEGIN, a PREPARE and an execution per step, COMMIT */
    PGresult *out[2 + 2 * CT_TX_STEPS_MAX] = {NULL};
    int stmt[CT_TX_STEPS_MAX], prep[CT_TX_STEPS_MAX], q = 0, nprep = 0;
    char names[CT_TX_STEPS_MAX][24];
    bool begin = tx->begin_pending, commit = tx->commit_next, ok, synced;

    tx->commit_next = false;
    *failed = NULL;
    for (int i = 0; i < n; i++)
        res[i] = NULL;
    if (n < 1 || n > CT_TX_STEPS_MAX || !PQenterPipelineMode(tx->conn))
        return false;
    ok = !begin || PQsendQueryParams(tx->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    q += begin;
    for (int i = 0; i < n && ok; i++) {
        const struct pstep *st = &steps[i];
        bool prepare, named = stmt_name(tx, st->sql, names[i], &prepare), twice = false;
        /* the same new statement twice in one pipeline is prepared once */
        for (int k = 0; k < i && prepare; k++)
            twice = twice || (prep[k] >= 0 && strcmp(names[k], names[i]) == 0);
        if (prepare && !twice && tx->cache->n + nprep >= CT_STMT_CACHE)
            named = prepare = false; /* no room left in the cache: unnamed */
        prepare = prepare && !twice;
        nprep += prepare;
        prep[i] = prepare ? q : -1;
        ok = !prepare || PQsendPrepare(tx->conn, names[i], st->sql, st->nparams, NULL);
        q += prepare;
        stmt[i] = q++;
        ok = ok && (named ? PQsendQueryPrepared(tx->conn, names[i], st->nparams, st->params,
                                                st->lengths, st->formats, 0)
                          : PQsendQueryParams(tx->conn, st->sql, st->nparams, NULL, st->params,
                                              st->lengths, st->formats, 0));
    }
    ok = ok && (!commit || PQsendQueryParams(tx->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0));
    q += commit;
    ok = ok && PQpipelineSync(tx->conn);
    synced = ok && await_pipeline(tx, out, q);
    if (synced)
        PQexitPipelineMode(tx->conn);
    for (int i = 0; i < q && *failed == NULL; i++) {
        if (out[i] != NULL && !result_ok(out[i]))
            *failed = out[i];
    }
    if (begin && result_ok(out[0]))
        tx->begin_pending = false; /* the transaction is open, whatever came after */
    if (commit && synced && result_ok(out[q - 1]))
        tx->committed = true;
    for (int i = 0; i < n && ok; i++) {
        /* a statement prepared stays so, whatever became of the transaction */
        if (prep[i] >= 0 && result_ok(out[prep[i]]))
            tx->cache->keys[tx->cache->n++] = sql_key(steps[i].sql);
        res[i] = out[stmt[i]];
        out[stmt[i]] = NULL;
    }
    for (int i = 0; i < q; i++) {
        if (out[i] != *failed)
            PQclear(out[i]);
    }
    return synced;
}

/* Runs sql as a statement prepared once per connection (parse and plan once, not per call);
 * falls back to unnamed statements when there is no cache or it is full. */
static PGresult *exec_prepared(struct ct_tx *tx, const char *sql, int nparams,
                               const char *const *params, const int *lengths, const int *formats)
{
    char name[24];
    bool prepare, named;

    if (PQpipelineStatus(tx->conn) != PQ_PIPELINE_OFF)
        return NULL; /* an earlier pipeline's answers never came: the connection is dropped */
    if (tx->begin_pending || tx->commit_next) {
        struct pstep st = {sql, nparams, params, lengths, formats};
        PGresult *res, *failed;
        if (exec_pipelined(tx, &st, 1, &res, &failed) && failed == NULL)
            return res;
        if (res != failed)
            PQclear(res);
        return failed; /* NULL when no answer came: the caller maps the connection's state */
    }
    named = stmt_name(tx, sql, name, &prepare);
    if (!named)
        return await(tx, PQsendQueryParams(tx->conn, sql, nparams, NULL, params, lengths,
                                           formats, 0));
    if (prepare) {
        PGresult *res = await(tx, PQsendPrepare(tx->conn, name, sql, nparams, NULL));
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
            return res; /* the caller maps the error */
        PQclear(res);
        tx->cache->keys[tx->cache->n++] = sql_key(sql);
    }
    return await(tx, PQsendQueryPrepared(tx->conn, name, nparams, params, lengths, formats, 0));
}

/* Sets err from a failed statement's result (res may be NULL: no answer) and frees res. */
static void map_failure(struct ct_tx *tx, PGresult *res, struct ct_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    /* prepared statement missing, duplicate, or its plan's result type changed (another
     * instance migrated): this connection's cache is wrong, drop it when it goes back */
    if (tx->cache != NULL && state != NULL &&
        (strcmp(state, "26000") == 0 || strcmp(state, "42P05") == 0 || strcmp(state, "0A000") == 0))
        tx->cache->poisoned = true;
    if (tx->timed_out) {
        ct_log_warn("the database did not answer within %d ms: giving up on it", tx->wait_ms);
        ct_err_set(err, CT_E_UNAVAILABLE, "database_timeout",
                   "the database did not answer in time, try again");
    } else if (PQstatus(tx->conn) != CONNECTION_OK ||
               (state != NULL && strncmp(state, "08", 2) == 0) ||
        (state != NULL && strncmp(state, "57P", 3) == 0)) {
        ct_err_set(err, CT_E_UNAVAILABLE, "database_unavailable", "could not reach the database");
    } else if (sqlstate_is(res, "23505")) {
        ct_err_set(err, CT_E_CONFLICT, "conflict", "a row with the same key already exists");
    } else if (sqlstate_is(res, "55P03") || sqlstate_is(res, "57014")) {
        ct_err_set(err, CT_E_UNAVAILABLE, "database_busy",
                   "the database is busy (lock or statement timeout), try again");
    } else if (sqlstate_is(res, "2201B")) {
        ct_err_set(err, CT_E_INVALID, "invalid_regex",
                   "a pattern is not a valid regular expression");
    } else if (sqlstate_is(res, "40001") || sqlstate_is(res, "40P01")) {
        ct_err_set(err, CT_E_CONFLICT, "serialization_failure", "concurrent update, try again");
        if (err != NULL)
            err->retryable = true; /* the transaction helper runs the whole job again */
    } else {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(tx->conn));
        msg[strcspn(msg, "\n")] = '\0';
        ct_log_error("query failed (sqlstate %s): %s", state ? state : "none", msg);
        ct_err_set(err, CT_E_INTERNAL, "internal", "internal error while talking to the database");
    }
    if (err != NULL && state != NULL)
        snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
    PQclear(res);
}

PGresult *ct_tx_exec_bin(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                         const int *lengths, const int *formats, struct ct_err *err)
{
    PGresult *res = exec_prepared(tx, sql, nparams, params, lengths, formats);
    if (result_ok(res))
        return res;
    map_failure(tx, res, err);
    return NULL;
}

ct_rc ct_tx_steps(struct ct_tx *tx, struct ct_tx_step *steps, int n, struct ct_err *err)
{
    PGresult *res[CT_TX_STEPS_MAX], *failed = NULL;
    struct pstep ps[CT_TX_STEPS_MAX];
    bool synced;

    for (int i = 0; i < n; i++)
        steps[i].res = NULL;
    if (n < 1 || n > CT_TX_STEPS_MAX)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "%d statements in one pipeline", n);
    for (int i = 0; i < n; i++)
        ps[i] = (struct pstep){steps[i].sql, steps[i].p.n, steps[i].p.v, steps[i].p.len,
                               steps[i].p.fmt};
    if (PQpipelineStatus(tx->conn) != PQ_PIPELINE_OFF) {
        map_failure(tx, NULL, err); /* an earlier pipeline's answers never came */
        return err->rc;
    }
    synced = exec_pipelined(tx, ps, n, res, &failed);
    if (synced && failed == NULL) {
        for (int i = 0; i < n; i++)
            steps[i].res = res[i];
        return CT_OK;
    }
    for (int i = 0; i < n; i++) {
        if (res[i] != failed)
            PQclear(res[i]);
    }
    map_failure(tx, failed, err);
    return err->rc;
}

void ct_tx_steps_clear(struct ct_tx_step *steps, int n)
{
    for (int i = 0; i < n; i++) {
        PQclear(steps[i].res);
        steps[i].res = NULL;
        free(steps[i].owned);
        steps[i].owned = NULL;
    }
}

PGresult *ct_tx_exec(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                     struct ct_err *err)
{
    return ct_tx_exec_bin(tx, sql, nparams, params, NULL, NULL, err);
}

ct_rc ct_tx_exec0(struct ct_tx *tx, const char *sql, int nparams, const char *const *params,
                  struct ct_err *err)
{
    PGresult *res = ct_tx_exec(tx, sql, nparams, params, err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    return CT_OK;
}

/* Transaction control goes unprepared: nothing to plan. */
static ct_rc simple(struct ct_tx *tx, const char *sql, struct ct_err *err)
{
    struct ct_tx plain = {.conn = tx->conn, .wait_ms = tx->wait_ms};
    ct_rc rc = ct_tx_exec0(&plain, sql, 0, NULL, err);
    tx->timed_out = tx->timed_out || plain.timed_out;
    return rc;
}

static ct_rc run(struct ct_pool *p, bool in_tx, bool batched, ct_tx_fn fn, void *arg,
               struct ct_err *err)
{
    struct ct_err local;
    ct_rc rc;
    int slot;

    if (err == NULL)
        err = &local;
    slot = take_slot(p);
    if (slot < 0)
        return ct_err_set(err, CT_E_UNAVAILABLE, "database_busy",
                          "every database connection is busy, try again");
    for (int attempt = 0; attempt < 4; attempt++) {
        struct ct_tx tx;
        rc = ensure_conn(p, slot, err);
        if (rc != CT_OK)
            break;
        tx.conn = p->conns[slot];
        tx.cache = p->prepare ? &p->caches[slot] : NULL;
        /* the server's statement_timeout fires first; this is for a server that cannot */
        tx.wait_ms = p->timeout_ms > 0 ? p->timeout_ms + 2000 : 0;
        tx.timed_out = false;
        tx.ntouched = 0; /* a retried transaction starts over */
        tx.touched_overflow = false;
        tx.defer = NULL;
        tx.preload = NULL;
        /* BEGIN goes with the first statement, COMMIT with a batched group's last one */
        tx.begin_pending = in_tx;
        tx.commit_next = false;
        tx.committed = false;
        tx.finishing = false;
        if (batched && (tx.defer = ct_defer_new()) == NULL)
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        else
            rc = fn(&tx, arg, err);
        tx.finishing = in_tx;
        if (rc == CT_OK)
            rc = ct_defer_flush(&tx, err); /* what a batched transaction held back */
        ct_defer_free(tx.defer);
        tx.defer = NULL;
        ct_preload_free(tx.preload);
        tx.preload = NULL;
        if (rc == CT_E_UNAVAILABLE && attempt == 0 && !tx.timed_out &&
            (!in_tx || tx.begin_pending)) {
            /* a connection that died while idle (database restarted) before this transaction's
             * BEGIN was answered, or a read: safe to repeat once on a fresh connection (not
             * after a timeout: what went with BEGIN may still be running) */
            drop_conn(p, slot);
            continue;
        }
        if (in_tx) {
            if (rc == CT_OK && !tx.committed && !tx.begin_pending)
                rc = simple(&tx, "COMMIT", err); /* nothing sent: nothing to commit */
            if (rc == CT_OK && p->on_commit != NULL && (tx.ntouched > 0 || tx.touched_overflow))
                p->on_commit(p->on_commit_arg, tx.touched, tx.ntouched, tx.touched_overflow);
            if (rc != CT_OK && PQtransactionStatus(tx.conn) != PQTRANS_IDLE &&
                PQstatus(tx.conn) == CONNECTION_OK) {
                struct ct_err ignore;
                simple(&tx, "ROLLBACK", &ignore);
            }
        }
        if (rc == CT_OK || rc == CT_E_UNAVAILABLE || !err->retryable || !in_tx)
            break;
    }
    if (rc == CT_OK || rc != CT_E_UNAVAILABLE)
        atomic_store(&p->db_up, true);
    else
        atomic_store(&p->db_up, false);
    if (rc != CT_OK && err->retryable) {
        /* retries exhausted: the client did not cause this conflict and can only try later */
        rc = ct_err_set(err, CT_E_UNAVAILABLE, "busy",
                        "the database is busy with concurrent changes to the same rows, try "
                        "again");
    }
    give_slot(p, slot);
    return rc;
}

void ct_tx_touch(struct ct_tx *tx, long long ticket_id)
{
    for (int i = 0; i < tx->ntouched; i++) {
        if (tx->touched[i] == ticket_id)
            return;
    }
    if (tx->ntouched < CT_TX_TOUCHED)
        tx->touched[tx->ntouched++] = ticket_id;
    else
        tx->touched_overflow = true;
}

void ct_pool_on_commit(struct ct_pool *p, ct_commit_fn fn, void *arg)
{
    p->on_commit = fn;
    p->on_commit_arg = arg;
}

ct_rc ct_store_in_tx(struct ct_pool *p, ct_tx_fn fn, void *arg, struct ct_err *err)
{
    return run(p, true, false, fn, arg, err);
}

ct_rc ct_store_in_tx_batched(struct ct_pool *p, ct_tx_fn fn, void *arg, struct ct_err *err)
{
    return run(p, true, true, fn, arg, err);
}

ct_rc ct_store_with_conn(struct ct_pool *p, ct_tx_fn fn, void *arg, struct ct_err *err)
{
    return run(p, false, false, fn, arg, err);
}

const char *ct_store_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

void ct_store_copy(char *dst, size_t cap, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        dst[0] = '\0';
    else
        snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}
