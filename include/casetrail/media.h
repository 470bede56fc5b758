/* media.h: the worker that keeps customers' photos, voice notes and documents as evidence. It
 * fetches each through the Graph API (media id -> short-lived URL -> bytes with the bearer
 * token), checks the bytes against the webhook's sha256, and stores them in a directory named by
 * their hash. Ingestion never waits for it. */
#ifndef CASETRAIL_MEDIA_H
#define CASETRAIL_MEDIA_H

#include <stddef.h>

#include "casetrail/err.h"

struct ct_pool;
struct ct_media_worker;

struct ct_media_config {
    int threads;             /* CASETRAIL_MEDIA_WORKERS */
    const char *dir;         /* CASETRAIL_MEDIA_DIR (borrowed) */
    size_t max_bytes;        /* CASETRAIL_MEDIA_MAX */
    int max_attempts;        /* then the media is failed with its reason */
    int backoff_ms;          /* first retry delay; doubles per attempt */
    const char *graph_url;   /* borrowed */
    const char *token;       /* borrowed; never logged */
    long timeout_ms;
};

/* Creates the directory when missing and starts the threads; NULL (err filled) when it cannot. */
struct ct_media_worker *ct_media_start(struct ct_pool *pool, const struct ct_media_config *cfg,
                                       struct ct_err *err);
void ct_media_stop(struct ct_media_worker *w);

/* Whether sha256 (as WhatsApp gives it: base64 or hex) names the bytes whose hex SHA-256 is
 * hex. Pure. */
bool ct_media_sha_matches(const char *expected, const char *hex);

/* The file of a stored media: dir/<hex sha256>; false when it does not fit. */
bool ct_media_path(const char *dir, const char *hex, char *out, size_t len);

#endif
