/* media.c: media evidence: fetch, check against the webhook's hash, store by hash, record.
 * A file is written to a temporary name, flushed and renamed, so a stored row always names a
 * whole file; files are named by their SHA-256, so the same photo sent twice is one file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "casetrail/crew.h"
#include "casetrail/graph.h"
#include "casetrail/log.h"
#include "casetrail/media.h"
#include "casetrail/store.h"
#include "casetrail/text.h"

struct ct_media_worker {
    struct ct_pool *pool;
    struct ct_media_config cfg;
    struct ct_crew crew;
};

static const struct ct_actor whatsapp = {CT_ACTOR_SYSTEM, "whatsapp", NULL, NULL};

bool ct_media_sha_matches(const char *expected, const char *hex)
{
    unsigned char raw[32];
    unsigned char b64[48];
    if (expected == NULL || expected[0] == '\0')
        return true; /* nothing to check against: the stored hash is what the chain keeps */
    if (strlen(expected) == 64)
        return strcasecmp(expected, hex) == 0;
    if (!ct_hex_decode(hex, raw, sizeof(raw)))
        return false;
    EVP_EncodeBlock(b64, raw, sizeof(raw));
    return strcmp((const char *)b64, expected) == 0;
}

bool ct_media_path(const char *dir, const char *hex, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s", dir, hex);
    return n > 0 && (size_t)n < len;
}

/* Writes data to dir/<hex> through a temporary file, flushed before the rename. */
static bool store_file(const char *dir, const char *hex, const char *data, size_t len,
                       char *why, size_t wlen)
{
    char path[1024], tmp[1100];
    int fd;
    size_t off = 0;
    struct stat st;

    if (!ct_media_path(dir, hex, path, sizeof(path))) {
        snprintf(why, wlen, "media directory path too long");
        return false;
    }
    if (stat(path, &st) == 0 && (size_t)st.st_size == len)
        return true; /* the same bytes are already kept */
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path); /* unique: two workers may fetch one photo */
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(why, wlen, "could not create a file in the media directory: %s",
                 strerror(errno));
        return false;
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n <= 0) {
            snprintf(why, wlen, "could not write the file: %s", strerror(errno));
            close(fd);
            unlink(tmp);
            return false;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(why, wlen, "could not keep the file: %s", strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

struct outcome {
    const struct ct_media_job *job;
    bool stored, final;
    long delay_ms;
    char sha256[65];
    long long size;
    char mime[128];
    char reason[240];
};

static ct_rc record_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct outcome *o = arg;
    struct ct_event_new ev;
    cJSON *data;
    ct_rc rc;

    if (!o->stored && !o->final)
        return ct_store_media_retry(tx, o->job->id, o->delay_ms, false, o->reason, err);
    rc = o->stored ? ct_store_media_stored(tx, o->job->id, o->sha256, o->size, o->mime, err)
                   : ct_store_media_retry(tx, o->job->id, 0, true, o->reason, err);
    if (rc != CT_OK || o->job->ticket_id == 0)
        return rc;
    /* the bytes' hash goes into the chain: the file is bound to the record like the receipt */
    data = cJSON_CreateObject();
    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    cJSON_AddNumberToObject(data, "message_id", (double)o->job->message_id);
    cJSON_AddNumberToObject(data, "media_row", (double)o->job->id);
    if (o->stored) {
        cJSON_AddStringToObject(data, "sha256", o->sha256);
        cJSON_AddNumberToObject(data, "size", (double)o->size);
    }
    ct_event_begin(&ev, CT_CHAIN_TICKET, o->job->ticket_id,
                   o->stored ? CT_EV_MEDIA_STORED : CT_EV_MEDIA_FAILED, &whatsapp);
    ev.to_value = o->stored ? "stored" : "failed";
    ev.data = data;
    ct_event_text(&ev, "reason", o->stored ? NULL : o->reason, CT_SCOPE_STAFF);
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}

/* Fetches and keeps one media; fills o (stored, or the reason and whether to give up). */
static void fetch(struct ct_media_worker *w, struct ct_graph *g, const struct ct_media_job *job,
                  struct outcome *o)
{
    struct ct_graph_media m;
    struct ct_graph_result r;
    char *data = NULL;
    size_t len = 0;

    ct_graph_media_lookup(g, job->media_id, &m, &r);
    /* Graph refusing the id (gone after 30 days, or never ours) will not change; a refused
     * download is usually an expired URL, which the next attempt looks up afresh */
    o->final = r.outcome == CT_GRAPH_FAILED;
    if (r.outcome == CT_GRAPH_SENT)
        ct_graph_download(g, m.url, w->cfg.max_bytes, &data, &len, &r);
    if (r.outcome != CT_GRAPH_SENT) {
        snprintf(o->reason, sizeof(o->reason), "download failed (HTTP %ld, code %d): %.150s",
                 r.http_status, r.code, r.title);
        goto out;
    }
    ct_sha256_hex(data, len, o->sha256);
    if (!ct_media_sha_matches(job->expect_sha256, o->sha256)) {
        snprintf(o->reason, sizeof(o->reason),
                 "the downloaded bytes do not match the webhook's sha256");
        goto out;
    }
    if (!store_file(w->cfg.dir, o->sha256, data, len, o->reason, sizeof(o->reason)))
        goto out;
    o->stored = true;
    o->size = (long long)len;
    snprintf(o->mime, sizeof(o->mime), "%s", job->mime_type[0] ? job->mime_type : m.mime_type);
out:
    free(data);
}

struct claim_job {
    struct ct_media_job job;
    bool found;
};

static ct_rc claim_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct claim_job *c = arg;
    return ct_store_media_claim(tx, &c->job, &c->found, err);
}

static void *run(void *arg)
{
    struct ct_media_worker *w = arg;
    struct ct_graph_options opt = {w->cfg.graph_url, w->cfg.token, w->cfg.timeout_ms / 3,
                                   w->cfg.timeout_ms};
    struct ct_graph *g = ct_graph_new(&opt);

    if (g == NULL) {
        ct_log_error("a media worker could not start its Graph client");
        return NULL;
    }
    while (!ct_crew_stopping(&w->crew)) {
        struct claim_job c;
        struct ct_err err;
        memset(&c, 0, sizeof(c));
        if (ct_store_in_tx(w->pool, claim_tx, &c, &err) != CT_OK || !c.found) {
            ct_crew_nap(&w->crew, 250);
            continue;
        }
        struct outcome o;
        memset(&o, 0, sizeof(o));
        o.job = &c.job;
        fetch(w, g, &c.job, &o);
        o.final = !o.stored && (o.final || c.job.attempts >= w->cfg.max_attempts);
        o.delay_ms = w->cfg.backoff_ms;
        for (int i = 1; i < c.job.attempts && o.delay_ms < 600000; i++)
            o.delay_ms *= 2;
        if (!o.stored)
            ct_log_warn("media of message %lld (attempt %d): %s", c.job.message_id,
                        c.job.attempts, o.reason);
        for (int i = 0; i < 50 && ct_store_in_tx(w->pool, record_tx, &o, &err) != CT_OK; i++)
            ct_crew_nap(&w->crew, 200);
    }
    ct_graph_free(g);
    return NULL;
}

struct ct_media_worker *ct_media_start(struct ct_pool *pool, const struct ct_media_config *cfg,
                                       struct ct_err *err)
{
    struct ct_media_worker *w;
    if (mkdir(cfg->dir, 0750) != 0 && errno != EEXIST) {
        ct_err_set(err, CT_E_INTERNAL, "media_dir",
                   "could not create CASETRAIL_MEDIA_DIR %s: %s", cfg->dir, strerror(errno));
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        return NULL;
    }
    w->pool = pool;
    w->cfg = *cfg;
    if (!ct_crew_start(&w->crew, cfg->threads, run, w)) {
        free(w);
        ct_err_set(err, CT_E_INTERNAL, "internal", "could not start media workers");
        return NULL;
    }
    return w;
}

void ct_media_stop(struct ct_media_worker *w)
{
    if (w == NULL)
        return;
    ct_crew_stop(&w->crew); /* each thread finishes its current download first */
    free(w);
}
