/* bare_civetweb.c: the HTTP floor of bench/http_floor. civetweb with casetrail's options and one
 * handler that answers GET /healthz with casetrail's bytes and nothing else: what serving costs
 * before casetrail's routing, auth, access log and metrics. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

static int healthz(struct mg_connection *conn, void *arg)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 00:00:00 GMT\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 15\r\n"
                                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                                 "\r\n{\"status\":\"ok\"}";
    (void)arg;
    mg_write(conn, answer, sizeof(answer) - 1);
    return 200;
}

int main(int argc, char **argv)
{
    sigset_t sigs;
    int sig;

    if (argc != 2) {
        fprintf(stderr, "usage: bare_civetweb PORT (answers GET /healthz on 127.0.0.1:PORT)\n");
        return 2;
    }
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", atoi(argv[1]));
    /* the options casetrail serves with (server/http/server.c), at their defaults */
    const char *options[] = {"listening_ports", listen, "num_threads", "128",
                             "request_timeout_ms", "5000", "keep_alive_timeout_ms", "5000",
                             "enable_keep_alive", "yes", "tcp_nodelay", "1", NULL, NULL};
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* workers inherit it; main waits for the signal */
    mg_init_library(0);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    struct mg_context *ctx = mg_start(&cb, NULL, options);
    if (ctx == NULL) {
        fprintf(stderr, "bare_civetweb: could not listen on %s\n", listen);
        return 1;
    }
    mg_set_request_handler(ctx, "/healthz", healthz, NULL);
    fprintf(stderr, "bare_civetweb: listening on %s\n", listen);
    sigwait(&sigs, &sig);
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}
