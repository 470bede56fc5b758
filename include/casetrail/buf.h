/* buf.h: a growable NUL-terminated byte buffer (in the spirit of curl's dynbuf). Appends never
 * fail loudly: the first allocation failure or overflow of max marks the buffer failed, later
 * appends do nothing, and ct_buf_take reports it once. Fields are private to buf.c. */
#ifndef CASETRAIL_BUF_H
#define CASETRAIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct ct_buf {
    char *p;      /* owned; NUL-terminated once anything was added */
    size_t len;
    size_t cap;
    size_t max;   /* 0: no limit other than memory */
    bool failed;  /* out of memory or over max */
};

/* Starts an empty buffer that refuses to grow past max bytes (0: unlimited). */
void ct_buf_init(struct ct_buf *b, size_t max);
/* Appends n bytes of s (may hold NULs). */
void ct_buf_add(struct ct_buf *b, const void *s, size_t n);
/* Appends a NUL-terminated string. */
void ct_buf_adds(struct ct_buf *b, const char *s);
/* Appends printf-formatted text. */
void ct_buf_addf(struct ct_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents to the caller (free() them) and resets b. NULL when the buffer failed
 * (its memory is then freed here); "" (allocated) when nothing was added. */
char *ct_buf_take(struct ct_buf *b, size_t *len);
/* Frees the contents and resets b. */
void ct_buf_free(struct ct_buf *b);

#endif
