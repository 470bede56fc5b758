/* loadgen.c: posts signed WhatsApp text-message webhooks to casetrail on 127.0.0.1 at a fixed
 * concurrency (libcurl multi) and prints one JSON line: rate, statuses and ack latencies. With
 * --get PATH it sends GETs instead (the HTTP floor and read benchmarks). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* One text-message webhook is about 430 bytes; this leaves room for long run ids. */
#define BODY_MAX 640
#define RUN_MAX 64
/* "X-Hub-Signature-256: sha256=" and 64 hex digits */
#define SIG_HEADER_MAX 96
#define SIG_HEX 65
/* Phone numbers are 9230 and eight digits, so contacts (with --contact-base) stay below this. */
#define CONTACTS_LIMIT 100000000L
/* Far above anything the 2-core machines reach in one round, and still a bounded allocation. */
#define COUNT_LIMIT 10000000L
#define CONCURRENCY_LIMIT 1024
/* A request still unanswered after this is counted as a transport error, so a run always ends. */
#define REQUEST_TIMEOUT_MS 30000L
#define STATUS_MAX 600

struct options {
    int port;
    long concurrency;
    long contacts;
    long contact_base;
    long count;
    double seconds;
    long rate;            /* requests started per second at most; 0: as fast as slots free up */
    const char *secret;
    const char *get_path; /* GET this path instead of posting webhooks */
    const char *header;   /* one more request header line, e.g. Authorization */
    const char *dump;     /* write the signed requests to this file instead of sending them */
    char run[RUN_MAX];
};

/* Every body and its signature, built and signed before the clock starts. The bodies sit end
 * to end in one allocation sized for the worst case: pages never written are never touched, so
 * memory stays at what the bodies need (about 0.5 KB each). */
struct hooks {
    char *bodies;
    size_t *offs, *lens;
    char *sigs; /* one hex HMAC of SIG_HEX bytes per body */
};

/* One transfer slot: C of these are in flight at all times. */
struct slot {
    CURL *easy;
    struct curl_slist *headers;
    struct timespec started;
    char errbuf[CURL_ERROR_SIZE]; /* curl's words for why this slot's last transfer failed */
    char sig_header[SIG_HEADER_MAX];
};

struct results {
    double *latency_ms; /* one per finished request, transport errors included */
    long done;
    long ok;
    long transport_errors;
    long connections; /* new TCP connections: as many as requests while keep-alive is off */
    long by_status[STATUS_MAX]; /* answers by HTTP status; other codes land in by_status[0] */
    char first_error[CURL_ERROR_SIZE];
    struct timespec start, end;
    bool stopped_by_time;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: loadgen --port P [--concurrency C] [--contacts N] [--contact-base B]\n"
            "               [--count M] [--seconds S] [--rate R] [--run ID] [--secret S]\n"
            "               [--get PATH [--header LINE]] [--dump FILE]\n"
            "Posts up to M signed text-message webhooks (unique wamids, N contacts) to\n"
            "http://127.0.0.1:P/webhooks/whatsapp, C in flight at all times, for at most S\n"
            "seconds, and prints one JSON line. The secret defaults to $WHATSAPP_APP_SECRET.\n"
            "--rate R starts request i no sooner than i/R seconds after the first (a steady\n"
            "load, C in flight at most) instead of as soon as a slot is free.\n"
            "--get PATH sends GET PATH instead (with LINE as one more header); no secret.\n"
            "--dump FILE writes the M signed requests to FILE, whole HTTP/1.1 requests each\n"
            "followed by a NUL byte, and sends nothing (bench/wrk_webhooks.lua sends them).\n");
}

static double elapsed_s(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Parses a whole decimal number in [lo, hi]; false on anything else. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* A run id goes into wamids and JSON as is, so only characters that need no escaping. */
static bool run_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= RUN_MAX)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* Returns 0, or 2 after printing why the arguments are wrong. */
static int parse_args(int argc, char **argv, struct options *o)
{
    long v;
    *o = (struct options){.concurrency = 32, .contacts = 2000, .count = 1000,
                          .seconds = 0, .secret = getenv("WHATSAPP_APP_SECRET")};
    snprintf(o->run, sizeof(o->run), "%ld-%ld", (long)time(NULL), (long)getpid());
    /* every option takes one value */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool good = val != NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--port") == 0) {
            good = good && parse_long(val, 1, 65535, &v);
            o->port = (int)v;
        } else if (strcmp(a, "--concurrency") == 0) {
            good = good && parse_long(val, 1, CONCURRENCY_LIMIT, &o->concurrency);
        } else if (strcmp(a, "--contacts") == 0) {
            good = good && parse_long(val, 1, CONTACTS_LIMIT, &o->contacts);
        } else if (strcmp(a, "--contact-base") == 0) {
            good = good && parse_long(val, 0, CONTACTS_LIMIT - 1, &o->contact_base);
        } else if (strcmp(a, "--count") == 0) {
            good = good && parse_long(val, 1, COUNT_LIMIT, &o->count);
        } else if (strcmp(a, "--seconds") == 0) {
            good = good && parse_long(val, 1, 86400, &v);
            o->seconds = (double)v;
        } else if (strcmp(a, "--rate") == 0) {
            good = good && parse_long(val, 1, 1000000, &o->rate);
        } else if (strcmp(a, "--run") == 0) {
            good = good && run_id_ok(val);
            if (good)
                snprintf(o->run, sizeof(o->run), "%s", val);
        } else if (strcmp(a, "--secret") == 0) {
            o->secret = val;
        } else if (strcmp(a, "--get") == 0) {
            good = good && val[0] == '/' && strlen(val) < 400 && strpbrk(val, " \r\n") == NULL;
            o->get_path = val;
        } else if (strcmp(a, "--dump") == 0) {
            o->dump = val;
        } else if (strcmp(a, "--header") == 0) {
            good = good && strchr(val, ':') != NULL && strpbrk(val, "\r\n") == NULL;
            o->header = val;
        } else {
            fprintf(stderr, "loadgen: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!good) {
            fprintf(stderr, "loadgen: %s needs a valid value\n", a);
            return 2;
        }
    }
    if ((o->port == 0 && o->dump == NULL) ||
        (o->get_path == NULL && (o->secret == NULL || o->secret[0] == '\0'))) {
        fprintf(stderr, "loadgen: --port and a secret (--secret or $WHATSAPP_APP_SECRET) are "
                        "required\n");
        return 2;
    }
    if (o->contact_base + o->contacts > CONTACTS_LIMIT) {
        fprintf(stderr, "loadgen: --contact-base plus --contacts must stay below %ld\n",
                CONTACTS_LIMIT);
        return 2;
    }
    return 0;
}

/* The text-message payload of bench/webhook_load.py (same fields and order), webhook i. */
static int build_body(const struct options *o, long i, char *out, size_t cap)
{
    long c = o->contact_base + i % o->contacts;
    return snprintf(out, cap,
                    "{\"object\": \"whatsapp_business_account\", \"entry\": [{\"id\": \"1\", "
                    "\"changes\": [{\"field\": \"messages\", \"value\": {\"messaging_product\": "
                    "\"whatsapp\", \"metadata\": {\"display_phone_number\": \"923211234500\", "
                    "\"phone_number_id\": \"117293845601928\"}, \"contacts\": [{\"profile\": "
                    "{\"name\": \"Bench %ld\"}, \"wa_id\": \"9230%08ld\"}], \"messages\": "
                    "[{\"from\": \"9230%08ld\", \"id\": \"wamid.bench-%s-%ld\", \"timestamp\": "
                    "\"%ld\", \"type\": \"text\", \"text\": {\"body\": \"order %ld status "
                    "please\"}}]}}]}]}",
                    c, c, c, o->run, i, 1760000000L + i, i);
}

static void hooks_free(struct hooks *h)
{
    free(h->bodies);
    free(h->offs);
    free(h->lens);
    free(h->sigs);
    *h = (struct hooks){0};
}

/* Builds and signs every body: HMAC-SHA256 of the exact bytes with the app secret, as Meta
 * signs them. Returns false (after saying why) when memory or OpenSSL fails. */
static bool hooks_build(const struct options *o, struct hooks *h)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)o->count, at = 0;

    h->bodies = malloc(n * BODY_MAX);
    h->offs = malloc(n * sizeof(*h->offs));
    h->lens = malloc(n * sizeof(*h->lens));
    h->sigs = malloc(n * SIG_HEX);
    if (h->bodies == NULL || h->offs == NULL || h->lens == NULL || h->sigs == NULL) {
        fprintf(stderr, "loadgen: out of memory for %ld bodies\n", o->count);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        /* bodies 0..i-1 took less than BODY_MAX each, so BODY_MAX bytes are free at at */
        char *body = h->bodies + at, *sig = h->sigs + i * SIG_HEX;
        int len = build_body(o, (long)i, body, BODY_MAX);
        if (len < 0 || len >= BODY_MAX) {
            fprintf(stderr, "loadgen: body %zu does not fit in %d bytes\n", i, BODY_MAX);
            goto fail;
        }
        h->offs[i] = at;
        h->lens[i] = (size_t)len;
        at += (size_t)len;
        if (HMAC(EVP_sha256(), o->secret, (int)strlen(o->secret), (const unsigned char *)body,
                 (size_t)len, mac, &maclen) == NULL) {
            fprintf(stderr, "loadgen: HMAC failed\n");
            goto fail;
        }
        for (unsigned int k = 0; k < maclen && k < SIG_HEX / 2; k++) {
            *sig++ = hex[mac[k] >> 4];
            *sig++ = hex[mac[k] & 15];
        }
        *sig = '\0';
    }
    return true;
fail:
    hooks_free(h);
    return false;
}

/* The answer's body is not needed, only its status; curl must still be told it was read. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Sets up a slot's handle once: what stays the same for every request it sends. */
static bool slot_init(struct slot *s, const char *url)
{
    s->easy = curl_easy_init();
    if (s->easy == NULL)
        return false;
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    /* loopback only: no proxy from the environment may carry the load elsewhere */
    curl_easy_setopt(s->easy, CURLOPT_PROXY, "");
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    return true;
}

/* Points the slot at webhook i and hands it to the multi handle; the clock starts here. */
static bool slot_start_get(CURLM *multi, struct slot *s, const struct options *o)
{
    if (s->headers == NULL && o->header != NULL) {
        s->headers = curl_slist_append(NULL, o->header);
        if (s->headers == NULL)
            return false;
    }
    s->errbuf[0] = '\0';
    curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    return curl_multi_add_handle(multi, s->easy) == CURLM_OK;
}

static bool slot_start(CURLM *multi, struct slot *s, const struct hooks *h, long i)
{
    struct curl_slist *list = NULL, *next;
    const char *lines[] = {"Content-Type: application/json",
                           /* the body goes with the head: no 100-continue round trip */
                           "Expect:", s->sig_header};

    snprintf(s->sig_header, sizeof(s->sig_header), "X-Hub-Signature-256: sha256=%s",
             h->sigs + (size_t)i * SIG_HEX);
    for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++) {
        next = curl_slist_append(list, lines[k]);
        if (next == NULL) {
            curl_slist_free_all(list);
            return false;
        }
        list = next;
    }
    curl_slist_free_all(s->headers);
    s->headers = list;
    s->errbuf[0] = '\0';
    /* POSTFIELDS points into the pre-built buffer: nothing is copied per request */
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)h->lens[i]);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, h->bodies + h->offs[i]);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    return curl_multi_add_handle(multi, s->easy) == CURLM_OK;
}

/* Records one finished transfer. */
static void record(struct results *r, struct slot *s, CURLcode result)
{
    struct timespec now;
    long status = 0, connects = 0;

    clock_gettime(CLOCK_MONOTONIC, &now);
    r->latency_ms[r->done++] = elapsed_s(&s->started, &now) * 1000.0;
    r->end = now;
    curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &connects);
    r->connections += connects;
    if (result != CURLE_OK) {
        r->transport_errors++;
        if (r->first_error[0] == '\0')
            snprintf(r->first_error, sizeof(r->first_error), "%s",
                     s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(result));
        return;
    }
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200)
        r->ok++;
    r->by_status[status > 0 && status < STATUS_MAX ? status : 0]++;
}

/* Whether another request may start: the count is not used up and the time is not over. */
static bool may_start(const struct options *o, long next, struct results *r)
{
    struct timespec now;
    if (next >= o->count)
        return false;
    if (o->seconds > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (elapsed_s(&r->start, &now) >= o->seconds) {
            r->stopped_by_time = true;
            return false;
        }
    }
    return true;
}

/* Seconds until request `next` is due under --rate (0 or less: due now). */
static double until_due(const struct options *o, long next, const struct results *r)
{
    struct timespec now;
    if (o->rate <= 0)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)next / (double)o->rate - elapsed_s(&r->start, &now);
}

/* Keeps C transfers in flight (started no faster than --rate) until the count or the time is
 * used up, then lets the last ones finish. Returns false when curl itself fails (not when the
 * server answers badly). */
static bool drive(const struct options *o, const struct hooks *h, struct slot *slots,
                  struct results *r)
{
    CURLM *multi = curl_multi_init();
    struct slot **idle = calloc((size_t)o->concurrency, sizeof(*idle)); /* free slots */
    long next = 0, nidle = 0;
    int running = 0, msgs;
    bool good = false, more = true;

    if (multi == NULL || idle == NULL)
        goto cleanup;
    /* keep as many idle connections as there are slots, in case the server keeps them alive */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, o->concurrency);
    for (long k = o->concurrency - 1; k >= 0; k--)
        idle[nidle++] = &slots[k];
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->end = r->start;
    do {
        while (nidle > 0 && (more = may_start(o, next, r)) && until_due(o, next, r) <= 0) {
            struct slot *s = idle[--nidle];
            if (!(o->get_path != NULL ? slot_start_get(multi, s, o)
                                      : slot_start(multi, s, h, next)))
                goto cleanup;
            next++;
        }
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            goto cleanup;
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &msgs)) != NULL) {
            char *priv = NULL;
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *easy = m->easy_handle;
            CURLcode result = m->data.result;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
            struct slot *s = (struct slot *)(void *)priv;
            record(r, s, result);
            curl_multi_remove_handle(multi, easy);
            idle[nidle++] = s;
        }
        more = more && may_start(o, next, r);
        if (running > 0 || more) {
            /* wake for an answer, or when the next paced request is due */
            double due = nidle > 0 && more ? until_due(o, next, r) : 0.1;
            int wait_ms = due <= 0 ? 0 : due >= 0.1 ? 100 : (int)(due * 1000) + 1;
            if (curl_multi_poll(multi, NULL, 0, wait_ms, NULL) != CURLM_OK)
                goto cleanup;
        }
    } while (running > 0 || more);
    good = true;
cleanup:
    if (multi != NULL) {
        for (long k = 0; k < o->concurrency; k++)
            curl_multi_remove_handle(multi, slots[k].easy);
        curl_multi_cleanup(multi);
    }
    free(idle);
    return good;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile p (1 to 100) of n sorted values: the smallest value that at least
 * p % of them do not exceed. */
static double percentile(const double *sorted, long n, long p)
{
    if (n == 0)
        return 0;
    return sorted[(p * n + 99) / 100 - 1];
}

static void report(const struct options *o, struct results *r)
{
    double secs = elapsed_s(&r->start, &r->end);
    bool first = true;

    qsort(r->latency_ms, (size_t)r->done, sizeof(double), cmp_double);
    printf("{\"run\":\"%s\",\"concurrency\":%ld,\"contacts\":%ld,\"requests\":%ld,\"ok\":%ld,"
           "\"non200\":{",
           o->run, o->concurrency, o->contacts, r->done, r->ok);
    for (int st = 0; st < STATUS_MAX; st++) {
        if (st == 200 || r->by_status[st] == 0)
            continue;
        if (st == 0) /* a status line curl could not read, or a code outside 1..599 */
            printf("%s\"other\":%ld", first ? "" : ",", r->by_status[st]);
        else
            printf("%s\"%d\":%ld", first ? "" : ",", st, r->by_status[st]);
        first = false;
    }
    printf("},\"transport_errors\":%ld,\"connections\":%ld,\"seconds\":%.3f,"
           "\"webhooks_per_s\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
           "\"stopped_by\":\"%s\"",
           r->transport_errors, r->connections, secs, secs > 0 ? (double)r->ok / secs : 0.0,
           percentile(r->latency_ms, r->done, 50), percentile(r->latency_ms, r->done, 99),
           r->done > 0 ? r->latency_ms[r->done - 1] : 0.0, r->stopped_by_time ? "time" : "count");
    if (r->first_error[0] != '\0') {
        printf(",\"first_error\":\"");
        for (const char *c = r->first_error; *c != '\0'; c++)
            if ((unsigned char)*c >= 0x20 && *c != '"' && *c != '\\')
                putchar(*c);
        putchar('"');
    }
    printf("}\n");
}

/* The requests as they go on the wire, for a client that sends prepared requests (wrk): the
 * same bodies and signatures as a run with these options, each whole request then a NUL. */
static bool dump_requests(const struct options *o, const struct hooks *h)
{
    FILE *f = fopen(o->dump, "wb");
    bool ok = f != NULL;
    for (long i = 0; ok && i < o->count; i++) {
        ok = fprintf(f,
                     "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nX-Hub-Signature-256: sha256=%s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     h->sigs + (size_t)i * SIG_HEX, h->lens[i]) > 0 &&
             fwrite(h->bodies + h->offs[i], 1, h->lens[i], f) == h->lens[i] && fputc('\0', f) == 0;
    }
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "loadgen: could not write %s: %s\n", o->dump, strerror(errno));
    return ok;
}

int main(int argc, char **argv)
{
    struct options o;
    struct hooks h = {0};
    struct results r = {0};
    struct slot *slots = NULL;
    char url[512];
    int rc = parse_args(argc, argv, &o), exit_code = 1;

    if (rc != 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "loadgen: curl_global_init failed\n");
        return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", o.port,
             o.get_path != NULL ? o.get_path : "/webhooks/whatsapp");
    if (o.get_path == NULL && !hooks_build(&o, &h))
        goto cleanup;
    if (o.dump != NULL) {
        exit_code = dump_requests(&o, &h) ? 0 : 1;
        goto cleanup;
    }
    slots = calloc((size_t)o.concurrency, sizeof(*slots));
    r.latency_ms = malloc((size_t)o.count * sizeof(double));
    if (slots == NULL || r.latency_ms == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        goto cleanup;
    }
    for (long k = 0; k < o.concurrency; k++)
        if (!slot_init(&slots[k], url)) {
            fprintf(stderr, "loadgen: curl_easy_init failed\n");
            goto cleanup;
        }
    if (!drive(&o, &h, slots, &r)) {
        fprintf(stderr, "loadgen: libcurl failed after %ld requests\n", r.done);
        goto cleanup;
    }
    report(&o, &r);
    exit_code = 0;
cleanup:
    for (long k = 0; slots != NULL && k < o.concurrency; k++) {
        curl_easy_cleanup(slots[k].easy);
        curl_slist_free_all(slots[k].headers);
    }
    free(slots);
    free(r.latency_ms);
    hooks_free(&h);
    curl_global_cleanup();
    return exit_code;
}
