/* server.c: builds struct ct_server, runs civetweb, and shuts down cleanly on SIGTERM/SIGINT:
 * stop accepting, let in-flight requests finish, close database connections, exit 0. */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>

#include "casetrail/graph.h"
#include "casetrail/http.h"
#include "casetrail/ingest.h"
#include "casetrail/listen.h"
#include "casetrail/live.h"
#include "casetrail/log.h"
#include "casetrail/metrics.h"
#include "casetrail/router.h"
#include "casetrail/media.h"
#include "casetrail/sender.h"
#include "casetrail/server.h"
#include "casetrail/store.h"
#include "casetrail/text.h"
#include "casetrail/watchdog.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A held connection's ends, for the watchdog (ct_peer_fn). civetweb sets them before
 * init_connection and keeps them until the connection closes, but hides its request info
 * until it starts reading the first head (just after init_connection): false until then. */
static bool conn_peer(const void *arg, struct ct_peer *peer)
{
    const struct mg_connection *conn = arg;
    const struct ct_server *srv = mg_get_user_data(mg_get_context(conn));
    const struct mg_request_info *ri = mg_get_request_info(conn);

    if (ri == NULL)
        return false;
    ct_peer_set(peer, ri->remote_addr, ri->remote_port,
                ri->server_port > 0 ? ri->server_port : srv->port);
    return true;
}

/* Counts connections from the moment a worker takes one until civetweb closes it, and tells
 * the watchdog, which may take the worker back while the connection only waits for a request
 * head (see ct_watchdog_reclaim). */
static int conn_opened(const struct mg_connection *conn, void **data)
{
    struct ct_server *srv = mg_get_user_data(mg_get_context(conn));
    struct ct_conn_watch *c = malloc(sizeof(*c)); /* freed by conn_closed */

    *data = c;
    atomic_fetch_add(&srv->open_conns, 1);
    if (c != NULL)
        ct_watchdog_conn_open(srv->watchdog, c, conn_peer, conn);
    return 0;
}

static void conn_closed(const struct mg_connection *conn)
{
    struct ct_server *srv = mg_get_user_data(mg_get_context(conn));
    struct ct_conn_watch *c = mg_get_user_connection_data(conn);

    if (c != NULL) {
        if (ct_watchdog_conn_close(srv->watchdog, c))
            ct_metrics_count(srv->metrics, CT_COUNTER_CONNS_RECLAIMED, 1);
        free(c);
    }
    atomic_fetch_sub(&srv->open_conns, 1);
}

static void end_request(const struct mg_connection *conn, int status)
{
    struct ct_server *srv = mg_get_user_data(mg_get_context(conn));
    struct ct_conn_watch *c = mg_get_user_connection_data(conn);

    (void)status;
    if (c != NULL)
        ct_watchdog_conn_busy(srv->watchdog, c, false); /* kept alive: waits for a head again */
}

/* A 503 that says to try again (Retry-After), with a fixed JSON error body. */
static void send_503(struct mg_connection *conn, const char *body)
{
    ct_http_write_head(conn, 503, "application/json", (long long)strlen(body),
                       CT_HTTP_RETRY_AFTER);
    mg_write(conn, body, strlen(body));
}

static const char BUSY_BODY[] = "{\"error\":{\"code\":\"server_busy\",\"message\":\"every "
                                "worker is taken and this connection had not sent a whole "
                                "request head: try again\"}}";

static int begin_request(struct mg_connection *conn)
{
    struct ct_server *srv = mg_get_user_data(mg_get_context(conn));
    struct ct_conn_watch *c = mg_get_user_connection_data(conn);
    int status;

    /* count first, then look at the flag: the drain loop cannot miss a request that passed */
    atomic_fetch_add(&srv->inflight, 1);
    if (c != NULL && ct_watchdog_conn_busy(srv->watchdog, c, true)) {
        /* the head was whole just as the watchdog took the worker back: its body can no longer
         * be read */
        mg_disable_connection_keep_alive(conn);
        send_503(conn, BUSY_BODY);
        status = 503;
    } else if (atomic_load(&srv->draining)) {
        send_503(conn, "{\"error\":{\"code\":\"shutting_down\",\"message\":\"the server is "
                       "stopping, try again\"}}");
        status = 503;
    } else {
        status = ct_router_dispatch(srv, conn);
    }
    atomic_fetch_sub(&srv->inflight, 1);
    return status;
}

/* Waits (at most 30 s) for requests in flight to answer before civetweb stops: once stopped,
 * civetweb no longer reads or writes sockets, and a committed webhook would lose its 200. */
static void drain(struct ct_server *srv)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    long long quiet_until;

    atomic_store(&srv->draining, true);
    for (int i = 0; i < 3000 && atomic_load(&srv->inflight) > 0; i++)
        nanosleep(&tick, NULL);
    if (atomic_load(&srv->inflight) > 0)
        ct_log_warn("stopping with %d requests still in flight after 30 s",
                    atomic_load(&srv->inflight));
    /* Connections whose request is still arriving are not in flight yet, and mg_stop drops
     * them unanswered. Keep answering (503) until every connection a worker holds has closed,
     * at most 2 s more, so a client that was mid-request gets an answer it can act on. */
    quiet_until = now_ms() + 2000;
    while (now_ms() < quiet_until && atomic_load(&srv->open_conns) > 0)
        nanosleep(&tick, NULL);
}

/* civetweb's own answers, to request heads it could not take (incomplete in time, too large,
 * malformed), are sent here instead: its default page formats Date with gmtime(), whose shared
 * buffer concurrent workers race on (ThreadSanitizer saw it with 40 slow clients at once), and
 * every error casetrail sends is JSON. */
static int http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    const struct ct_server *srv = mg_get_user_data(mg_get_context(conn));
    char message[200];
    const char *code = status < 500 ? "bad_request" : "internal";
    struct ct_conn_watch *c = mg_get_user_connection_data(conn);
    cJSON *root;

    /* a head cut short because the watchdog took its worker back is told why */
    if (c != NULL && ct_watchdog_conn_busy(srv->watchdog, c, true)) {
        send_503(conn, BUSY_BODY);
        return 0;
    }
    root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    char *text;

    /* civetweb says this when the head did not end within request_timeout_ms, or within its
     * 16 KiB buffer */
    if (status == 400 && errmsg != NULL && strcmp(errmsg, "Malformed message") == 0) {
        code = "head_incomplete";
        snprintf(message, sizeof(message),
                 "the request head did not arrive whole within %d ms, or is over 16 KiB",
                 srv->cfg.header_timeout_ms);
    } else {
        if (status == 413)
            code = "head_too_large";
        snprintf(message, sizeof(message), "%s", errmsg != NULL ? errmsg : "");
        message[0] = (char)tolower((unsigned char)message[0]);
        ct_utf8_sanitize(message); /* it may quote the client's bytes */
    }
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    ct_http_write_head(conn, status, "application/json", text != NULL ? (long long)strlen(text) : 0,
                       NULL);
    if (text != NULL)
        mg_write(conn, text, strlen(text));
    free(text);
    return 0; /* handled: civetweb sends nothing more, and closes */
}

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    ct_log_warn("civetweb: %s", message);
    return 1;
}

static ct_rc start_http(struct ct_server *srv, struct ct_err *err)
{
    char listen[96], threads[16], header_ms[16], keepalive_ms[16];
    struct mg_callbacks cb;
    struct mg_server_port ports[1];

    snprintf(listen, sizeof(listen), "%s:%d", srv->cfg.listen_host, srv->cfg.listen_port);
    snprintf(threads, sizeof(threads), "%d", srv->cfg.threads);
    snprintf(header_ms, sizeof(header_ms), "%d", srv->cfg.header_timeout_ms);
    snprintf(keepalive_ms, sizeof(keepalive_ms), "%d", srv->cfg.keepalive_timeout_ms);
    /* request_timeout_ms bounds the whole request head (civetweb measures from its first
     * byte), silences within a body (loosely: it may wait two or three times as long) and each
     * write; the body as a whole is bounded by the watchdog (ct_http_read_body), which
     * civetweb has no option for */
    const char *options[] = {
        "listening_ports", listen,
        "num_threads", threads,
        "request_timeout_ms", header_ms,
        "keep_alive_timeout_ms", keepalive_ms,
        "enable_keep_alive", "yes",
        /* an answer goes out as head then body: with Nagle on, a kept-alive connection's body
         * waited for the client's delayed ACK (40 ms a request, found by bench/ingest_vs_pgbench
         * at 1 sender: 22 webhooks/s, p50 44 ms) */
        "tcp_nodelay", "1",
        NULL, NULL,
    };
    memset(&cb, 0, sizeof(cb));
    cb.begin_request = begin_request;
    cb.init_connection = conn_opened;
    cb.connection_close = conn_closed;
    cb.end_request = end_request;
    cb.log_message = log_message;
    cb.http_error = http_error;
    srv->mg = mg_start(&cb, srv, options);
    if (srv->mg == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "listen_failed",
                          "could not listen on %s (CASETRAIL_LISTEN): address in use or invalid",
                          listen);
    memset(ports, 0, sizeof(ports));
    if (mg_get_server_ports(srv->mg, 1, ports) >= 1)
        srv->port = ports[0].port;
    ct_watchdog_reclaim(srv->watchdog, srv->cfg.threads, srv->port);
    return CT_OK;
}

/* Starts the reply senders when there is a Graph token to send with; replies queue either way. */
static ct_rc start_sender(struct ct_server *srv, struct ct_err *err)
{
    struct ct_sender_config sc = {
        .threads = srv->cfg.senders, .max_attempts = srv->cfg.send_attempts,
        .pace_ms = srv->cfg.pace_ms, .rate_per_s = srv->cfg.send_rate,
        .backoff_ms = srv->cfg.send_backoff_ms, .graph_url = srv->cfg.graph_url,
        .token = srv->cfg.access_token, .connect_timeout_ms = srv->cfg.graph_timeout_ms / 3,
        .total_timeout_ms = srv->cfg.graph_timeout_ms,
    };
    if (srv->cfg.senders == 0)
        return CT_OK;
    if (srv->cfg.access_token == NULL) {
        ct_log_warn("WHATSAPP_ACCESS_TOKEN is not set: replies are queued but not sent");
        return CT_OK;
    }
    srv->sender = ct_sender_start(srv->pool, srv->metrics, &sc, err);
    return srv->sender != NULL ? CT_OK : err->rc;
}

/* Starts the media fetchers; without a token media stays pending until one is configured. */
static ct_rc start_media(struct ct_server *srv, struct ct_err *err)
{
    struct ct_media_config mc = {
        .threads = srv->cfg.media_workers, .dir = srv->cfg.media_dir,
        .max_bytes = srv->cfg.media_max, .max_attempts = srv->cfg.send_attempts,
        .backoff_ms = srv->cfg.send_backoff_ms, .graph_url = srv->cfg.graph_url,
        .token = srv->cfg.access_token, .timeout_ms = srv->cfg.graph_timeout_ms,
    };
    if (srv->cfg.media_workers == 0 || srv->cfg.access_token == NULL)
        return CT_OK;
    srv->media = ct_media_start(srv->pool, &mc, err);
    return srv->media != NULL ? CT_OK : err->rc;
}

static void server_free(struct ct_server *srv)
{
    if (srv->mg != NULL)
        mg_stop(srv->mg); /* joins workers: in-flight requests finish first */
    ct_watchdog_stop(srv->watchdog); /* after the workers: none can still be reading */
    ct_ingester_stop(srv->ingester); /* after the workers: none can still be waiting on it */
    ct_sender_stop(srv->sender);     /* finishes its current sends; before the pool goes */
    ct_media_stop(srv->media);
    ct_notifier_stop(srv->notifier); /* after every writer: their last commits go out too */
    ct_listener_stop(srv->listener); /* after the workers: no stream still reads the hub */
    ct_live_free(srv->live);
    ct_pool_free(srv->pool);
    ct_metrics_free(srv->metrics);
    ct_config_free(&srv->cfg);
    mg_exit_library();
    ct_graph_global_cleanup();
}

int ct_server_run(struct ct_config *cfg)
{
    struct ct_server srv;
    struct ct_err err;
    sigset_t sigs;
    int applied = 0, sig = 0, code = 1;

    memset(&srv, 0, sizeof(srv));
    atomic_init(&srv.inflight, 0);
    atomic_init(&srv.draining, false);
    atomic_init(&srv.verifying, 0);
    atomic_init(&srv.signing_in, 0);
    atomic_init(&srv.live_streams, 0);
    atomic_init(&srv.exporting, 0);
    atomic_init(&srv.open_conns, 0);
    srv.cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    mg_init_library(0);
    /* before any thread exists: curl_global_init is not thread-safe */
    ct_graph_global_init();

    /* Block the stop signals before any thread starts so only sigwait below receives them. */
    /* a shell may start us with SIGINT ignored (background job): restore it so sigwait sees it */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (srv.cfg.app_secret == NULL) {
        if (!srv.cfg.insecure_no_signature) {
            ct_log_error("WHATSAPP_APP_SECRET is not set: refusing to accept unsigned webhooks "
                         "(set it, or CASETRAIL_INSECURE_NO_SIGNATURE=1 for local experiments)");
            goto out;
        }
        ct_log_warn("INSECURE: CASETRAIL_INSECURE_NO_SIGNATURE=1 and no WHATSAPP_APP_SECRET; "
                    "webhook signatures are NOT checked, anyone can post fake customer messages");
    }
    if (srv.cfg.verify_token == NULL)
        ct_log_warn("WHATSAPP_VERIFY_TOKEN is not set: Meta's webhook verification handshake "
                    "will be refused (403) until it is");
    srv.schema_latest = ct_migrations_latest(srv.cfg.migrations_dir);
    if (srv.schema_latest < 0) {
        ct_log_error("no migrations found in \"%s\" (set CASETRAIL_MIGRATIONS_DIR)",
                     srv.cfg.migrations_dir);
        goto out;
    }
    if (ct_store_migrate(srv.cfg.database_url, srv.cfg.migrations_dir, &applied, &err) != CT_OK) {
        ct_log_error("%s", err.message);
        goto out;
    }
    srv.pool = ct_pool_new(srv.cfg.database_url, srv.cfg.db_pool);
    if (srv.pool != NULL) {
        ct_pool_set_prepare(srv.pool, srv.cfg.db_prepare);
        ct_pool_set_timeout(srv.pool, srv.cfg.db_timeout);
    }
    srv.metrics = ct_metrics_new(ct_router_slots(), ct_router_label);
    srv.watchdog = ct_watchdog_start();
    srv.live = ct_live_new();
    if (srv.live != NULL)
        srv.listener = ct_listener_start(srv.cfg.database_url, "casetrail_ticket",
                                         ct_live_notify, srv.live);
    if (srv.pool != NULL)
        srv.notifier = ct_notifier_start(srv.pool, "casetrail_ticket");
    if (srv.notifier != NULL)
        ct_pool_on_commit(srv.pool, ct_notifier_add, srv.notifier);
    if (srv.pool != NULL && srv.cfg.ingest_lanes > 0)
        srv.ingester = ct_ingester_start(srv.pool, srv.cfg.ingest_lanes, srv.cfg.ingest_group,
                                         16u << 20, srv.cfg.ingest_batched);
    if (srv.pool == NULL || srv.metrics == NULL || srv.watchdog == NULL || srv.listener == NULL ||
        srv.notifier == NULL || (srv.cfg.ingest_lanes > 0 && srv.ingester == NULL)) {
        ct_log_error("out of memory (or threads) at start");
        goto out;
    }
    if (start_http(&srv, &err) != CT_OK) {
        ct_log_error("%s", err.message);
        goto out;
    }
    if (start_sender(&srv, &err) != CT_OK || start_media(&srv, &err) != CT_OK) {
        ct_log_error("%s", err.message);
        goto out;
    }
    ct_log_info("listening on %s:%d (threads %d, db pool %d, ingest lanes %d, schema %d, %d "
                "migrations applied now; timeouts: header %d ms, body %d ms)",
                srv.cfg.listen_host, srv.port, srv.cfg.threads, srv.cfg.db_pool,
                srv.cfg.ingest_lanes,
                srv.schema_latest, applied, srv.cfg.header_timeout_ms, srv.cfg.body_timeout_ms);
    sigwait(&sigs, &sig);
    ct_log_info("received %s: draining in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    drain(&srv);
    code = 0;
out:
    server_free(&srv);
    if (code == 0)
        ct_log_info("stopped");
    return code;
}
