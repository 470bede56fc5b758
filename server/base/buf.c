/* buf.c: the growable buffer behind canonical encodings, metrics text and CSV rows. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/buf.h"

void ct_buf_init(struct ct_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

/* Makes room for extra more bytes plus the NUL; false (buffer failed) when it cannot. */
static bool reserve(struct ct_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > (size_t)-1 / 2 - b->len || (b->max > 0 && b->len + extra > b->max)) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void ct_buf_add(struct ct_buf *b, const void *s, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ct_buf_adds(struct ct_buf *b, const char *s)
{
    ct_buf_add(b, s, strlen(s));
}

void ct_buf_addf(struct ct_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *ct_buf_take(struct ct_buf *b, size_t *len)
{
    char *p = NULL;
    if (!b->failed && reserve(b, 0)) {
        b->p[b->len] = '\0';
        p = b->p;
        if (len != NULL)
            *len = b->len;
        b->p = NULL;
    }
    ct_buf_free(b);
    return p;
}

void ct_buf_free(struct ct_buf *b)
{
    size_t max = b->max;
    free(b->p);
    memset(b, 0, sizeof(*b));
    b->max = max;
}
